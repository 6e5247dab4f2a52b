#!/usr/bin/env python3
"""Reads ssddetect's detections from Python (PyGObject) with a pad probe.

    GST_PLUGIN_PATH=build/gst-plugin python3 examples/read_detections.py IMAGE_OR_VIDEO
    GST_PLUGIN_PATH=build/gst-plugin python3 examples/read_detections.py \
        --pipeline "videotestsrc num-buffers=10 ! ssddetect name=detect ! fakesink"

Each detection is a GstVideo.VideoRegionOfInterestMeta with a `detection` Gst.Structure
(label_id, label, confidence, x_min, y_min, x_max, y_max). PyGObject (3.42, GStreamer 1.22)
has no Gst.Buffer.iterate_meta() and Buffer.get_meta() returns an uncast Gst.Meta, so the
regions are fetched by id with GstVideo.buffer_get_video_region_of_interest_meta_id():
ssddetect numbers the regions of a frame 0, 1, ... (after the ids of regions already there, such
as another detector's), and Buffer.get_n_meta() gives how many to look for.

Exit status: 0 on success, 1 on a pipeline error, 2 when fewer than --min-detections
detections were seen.
"""
import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import GLib, Gst, GstVideo  # noqa: E402


def detections_of(buffer):
    """The (label, confidence, (x, y, w, h), (x_min, y_min, x_max, y_max)) of a buffer."""
    out = []
    roi_api = GstVideo.VideoRegionOfInterestMeta.get_info().api  # after Gst.init()
    count = buffer.get_n_meta(roi_api)
    roi_id = 0
    # Ids are small and unique per frame, but need not be consecutive (regions of several
    # detectors, or removed ones): look until every region is found.
    while len(out) < count and roi_id < count + 65536:
        roi = GstVideo.buffer_get_video_region_of_interest_meta_id(buffer, roi_id)
        roi_id += 1
        if roi is None:
            continue
        label = GLib.quark_to_string(roi.roi_type)
        confidence = None
        norm = None
        s = roi.get_param("detection")
        if s is not None:
            label = s.get_string("label") or label
            ok, confidence = s.get_double("confidence")
            confidence = confidence if ok else None
            norm = tuple(s.get_double(k)[1] for k in ("x_min", "y_min", "x_max", "y_max"))
        out.append((label, confidence, (roi.x, roi.y, roi.w, roi.h), norm))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", help="video or image file")
    parser.add_argument("--pipeline", help="gst-launch description with an ssddetect named 'detect'")
    parser.add_argument("--model", help="weights file (default: the shipped model)")
    parser.add_argument("--min-detections", type=int, default=0)
    args = parser.parse_args()

    Gst.init(None)
    if args.pipeline:
        description = args.pipeline
    elif args.file:
        uri = Gst.filename_to_uri(args.file)
        description = f'uridecodebin uri="{uri}" ! videoconvert ! ssddetect name=detect ! fakesink'
    else:
        parser.error("give a FILE or --pipeline")
    try:
        pipeline = Gst.parse_launch(description)
    except GLib.Error as e:   # e.g. no element "ssddetect"
        print(f"cannot build the pipeline: {e.message} (is GST_PLUGIN_PATH set?)", file=sys.stderr)
        return 1
    detect = pipeline.get_by_name("detect")
    if detect is None:
        print("the pipeline has no element named 'detect' (is GST_PLUGIN_PATH set?)", file=sys.stderr)
        return 1
    if args.model:
        detect.set_property("model", args.model)

    counts = {"frames": 0, "detections": 0}

    def on_buffer(pad, info):
        buffer = info.get_buffer()
        dets = detections_of(buffer)
        t = buffer.pts / Gst.SECOND if buffer.pts != Gst.CLOCK_TIME_NONE else -1
        # Regions of other producers (or ssddetect's after videoscale, which drops the
        # `detection` structure) have no confidence: "?".
        text = ", ".join(f"{label} {'?' if conf is None else f'{conf:.2f}'} [x={b[0]} y={b[1]} w={b[2]} h={b[3]}]"
                         for label, conf, b, _ in dets) or "nothing"
        print(f"frame {counts['frames']} (t={t:.3f} s): {text}", flush=True)
        counts["frames"] += 1
        counts["detections"] += len(dets)
        return Gst.PadProbeReturn.OK

    detect.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, on_buffer)

    bus = pipeline.get_bus()
    error = None
    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        # The reason (e.g. an unreadable model) is in the error message on the bus.
        error = bus.pop_filtered(Gst.MessageType.ERROR) or "state change failed"
    else:
        msg = bus.timed_pop_filtered(Gst.CLOCK_TIME_NONE, Gst.MessageType.ERROR | Gst.MessageType.EOS)
        if msg.type == Gst.MessageType.ERROR:
            error = msg
    if isinstance(error, Gst.Message):
        err, debug = error.parse_error()
        print(f"error from {error.src.get_name()}: {err.message}\n{debug}", file=sys.stderr)
    elif error:
        print(error, file=sys.stderr)
    pipeline.set_state(Gst.State.NULL)
    print(f"{counts['frames']} frames, {counts['detections']} detections")
    if error:
        return 1
    return 2 if counts["detections"] < args.min_detections else 0


if __name__ == "__main__":
    sys.exit(main())
