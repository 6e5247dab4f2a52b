#!/usr/bin/env python3
"""Reads ssddetect's detections from Python (PyGObject) with a pad probe.

    GST_PLUGIN_PATH=build/gst-plugin python3 examples/read_detections.py IMAGE_OR_VIDEO
    GST_PLUGIN_PATH=build/gst-plugin python3 examples/read_detections.py \
        --pipeline "videotestsrc num-buffers=10 ! ssddetect ! ssdtrack ! fakesink"

A FILE runs `uridecodebin ! videoconvert ! ssddetect ! ssdtrack ! fakesink`. The probe sits on
the source pad of the ssdtrack behind the ssddetect when there is one (the tracker adds an `object_id`
Gst.Structure with the int `id`, printed as #ID), else on the ssddetect's (with several, the
one named `detect`). Each detection is a GstVideo.VideoRegionOfInterestMeta with a `detection`
Gst.Structure (label_id, label, confidence, x_min, y_min, x_max, y_max, carried).
PyGObject (3.42, GStreamer 1.22) has no Gst.Buffer.iterate_meta() and Buffer.get_meta()
returns an uncast Gst.Meta, so the regions are fetched by id with
GstVideo.buffer_get_video_region_of_interest_meta_id(): ssddetect numbers the regions of a
frame 0, 1, ... (after the ids of regions already there, such as another detector's), and
Buffer.get_n_meta() gives how many to look for. Regions of another producer that repeat an id
(GStreamer's default id is 0) cannot all be fetched so: the script says how many it missed.

Ctrl-C sends EOS, so that the pipeline ends as at the end of its stream (a muxer finishes its
file); a second Ctrl-C stops at once.

Exit status: 0 on success, 1 on a usage or pipeline error, 2 when fewer than --min-detections
detections were seen (as ssd-example-app).
"""
import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import GLib, Gst, GstVideo  # noqa: E402


# Ids beyond the region count looked at before giving up on the regions not found yet.
ID_SLACK = 1024


class Detection:
    """One region of interest: label, confidence (None without a `detection` structure), pixel
    box (x, y, w, h), normalised box (x_min, y_min, x_max, y_max; None without the structure),
    tracking id (None when untracked) and carried (repeated from the last analysed frame)."""

    def __init__(self, roi):
        self.label = GLib.quark_to_string(roi.roi_type)
        self.confidence = None
        self.normalised = None
        self.carried = False
        self.box = (roi.x, roi.y, roi.w, roi.h)
        s = roi.get_param("detection")
        if s is not None:
            self.label = s.get_string("label") or self.label
            ok, confidence = s.get_double("confidence")
            self.confidence = confidence if ok else None
            box = [s.get_double(k) for k in ("x_min", "y_min", "x_max", "y_max")]
            self.normalised = tuple(v for _, v in box) if all(ok for ok, _ in box) else None
            ok, carried = s.get_boolean("carried")
            self.carried = bool(ok and carried)
        self.object_id = None
        t = roi.get_param("object_id")
        if t is not None:
            ok, object_id = t.get_int("id")
            self.object_id = object_id if ok else None


def detections_of(buffer):
    """The Detections of a buffer, and how many of its regions could not be fetched by id."""
    out = []
    roi_api = GstVideo.VideoRegionOfInterestMeta.get_info().api  # after Gst.init()
    count = buffer.get_n_meta(roi_api)
    roi_id = 0
    # Ids are small and unique per frame, but need not be consecutive (regions of several
    # detectors, or removed ones): look until every region is found, or ID_SLACK ids past the
    # count (regions whose ids repeat are found once).
    while len(out) < count and roi_id < count + ID_SLACK:
        roi = GstVideo.buffer_get_video_region_of_interest_meta_id(buffer, roi_id)
        roi_id += 1
        if roi is not None:
            out.append(Detection(roi))
    return out, count - len(out)


class Parser(argparse.ArgumentParser):
    """Usage errors exit 1 (argparse's own 2 is this script's "too few detections")."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def is_detector(element):
    factory = element.get_factory()
    return factory is not None and factory.get_name() == "ssddetect"


def find_detector(pipeline):
    """The ssddetect named `detect` when there is one, else the first ssddetect (as ssd-example-app)."""
    if not isinstance(pipeline, Gst.Bin):
        return pipeline if is_detector(pipeline) else None
    named = pipeline.get_by_name("detect")
    if named is not None and is_detector(named):
        return named
    found = []
    pipeline.iterate_recurse().foreach(lambda e: found.append(e) if is_detector(e) else None)
    return found[0] if found else None


def main():
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", help="video or image file")
    parser.add_argument("--pipeline", help="gst-launch description with an ssddetect (with several: the one "
                        "named 'detect'; an ssdtrack behind it adds tracking ids)")
    parser.add_argument("--model", help="weights file (default: the shipped model)")
    parser.add_argument("--min-detections", type=int, default=0)
    args = parser.parse_args()

    Gst.init(None)
    if args.pipeline:
        description = args.pipeline
    elif args.file:
        uri = Gst.filename_to_uri(args.file)
        description = f'uridecodebin uri="{uri}" ! videoconvert ! ssddetect name=detect ! ssdtrack ! fakesink'
    else:
        parser.error("give a FILE or --pipeline")
    try:
        pipeline = Gst.parse_launch(description)
    except GLib.Error as e:   # e.g. no element "ssddetect"
        print(f"cannot build the pipeline: {e.message} (is GST_PLUGIN_PATH set?)", file=sys.stderr)
        return 1
    detect = find_detector(pipeline)
    if detect is None:
        print("the pipeline has no ssddetect", file=sys.stderr)
        return 1
    if args.model:
        detect.set_property("model", args.model)

    counts = {"frames": 0, "detections": 0, "missed": 0}

    def describe(d, mark_carried):
        # Regions of other producers (or ssddetect's after videoscale, which drops the
        # `detection` structure) have no confidence: "?".
        ident = "" if d.object_id is None else f" #{d.object_id}"
        conf = "?" if d.confidence is None else f"{d.confidence:.2f}"
        x, y, w, h = d.box
        carried = " (carried)" if mark_carried and d.carried else ""
        return f"{d.label}{ident} {conf} [x={x} y={y} w={w} h={h}]{carried}"

    def on_buffer(pad, info):
        buffer = info.get_buffer()
        dets, missed = detections_of(buffer)
        t = buffer.pts / Gst.SECOND if buffer.pts != Gst.CLOCK_TIME_NONE else -1
        # A box repeated from its detector's last analysed frame (interval=N): said once for a
        # frame whose boxes all are, else after each that is (a cascade: another ssddetect
        # analysed this frame).
        all_carried = bool(dets) and all(d.carried for d in dets)
        text = ", ".join(describe(d, not all_carried) for d in dets) or "nothing"
        if all_carried:
            text += " (carried from the last analysed frame)"
        if missed:
            text += f" ({missed} region(s) with a repeated id not read)"
        print(f"frame {counts['frames']} (t={t:.3f} s): {text}", flush=True)
        counts["frames"] += 1
        counts["detections"] += len(dets)
        counts["missed"] += missed
        return Gst.PadProbeReturn.OK

    # Read behind the tracker of detect's stream when there is one (following each element's
    # only source pad downstream): its regions carry the tracking ids.
    tracker, pad = None, detect.get_static_pad("src")
    for _ in range(64):
        peer = pad.get_peer() if pad is not None else None
        element = peer.get_parent_element() if peer is not None else None
        if element is None:
            break
        factory = element.get_factory()
        if factory is not None and factory.get_name() == "ssdtrack":
            tracker = element
            break
        pad = element.srcpads[0] if len(element.srcpads) == 1 else None
    (tracker or detect).get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, on_buffer)

    interrupted = []

    def on_sigint(signum, frame):
        if interrupted:
            raise KeyboardInterrupt
        interrupted.append(True)
        print("interrupted: sending EOS (Ctrl-C again to stop at once)", file=sys.stderr)
        pipeline.send_event(Gst.Event.new_eos())

    signal.signal(signal.SIGINT, on_sigint)

    bus = pipeline.get_bus()
    error = None
    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        # The reason (e.g. an unreadable model) is in the error message on the bus.
        error = bus.pop_filtered(Gst.MessageType.ERROR) or "state change failed"
    else:
        # A short timeout, so that Python runs the SIGINT handler between two waits.
        try:
            while True:
                msg = bus.timed_pop_filtered(100 * Gst.MSECOND, Gst.MessageType.ERROR | Gst.MessageType.EOS)
                if msg is None:
                    continue
                if msg.type == Gst.MessageType.ERROR:
                    error = msg
                break
        except KeyboardInterrupt:
            pass
    if isinstance(error, Gst.Message):
        err, debug = error.parse_error()
        print(f"error from {error.src.get_name()}: {err.message}\n{debug}", file=sys.stderr)
    elif error:
        print(error, file=sys.stderr)
    pipeline.set_state(Gst.State.NULL)
    print(f"{counts['frames']} frames, {counts['detections']} detections")
    if counts["missed"]:
        print(f"{counts['missed']} region(s) not read: another producer repeated their ids", file=sys.stderr)
    if error:
        return 1
    return 2 if counts["detections"] < args.min_detections else 0


if __name__ == "__main__":
    sys.exit(main())
