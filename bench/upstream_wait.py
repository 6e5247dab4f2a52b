#!/usr/bin/python3
"""How long a live source's thread is held up in ssddetect (Debian's python3-gi).

A live 30 fps videotestsrc feeds ssddetect and a synchronised fakesink; an identity in front of
ssddetect records when each frame reaches it. A source that is never held up delivers a frame
every 33.3 ms; a frame that comes later shows a push into ssddetect that waited (a camera or
screen capture that captures on demand would have dropped or delayed frames there). Prints, per
property set, the largest gap between frames, the number of gaps over 40 ms, and the frames.

    GST_PLUGIN_PATH=$PWD/build/gst-plugin /usr/bin/python3 bench/upstream_wait.py \\
        --frames 300 "" "batch-size=4" "batch-size=8"
"""
import argparse
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402


def measure(props, frames, size):
    width, height = size.split("x")
    pipeline = Gst.parse_launch(
        f"videotestsrc is-live=true num-buffers={frames} ! "
        f"video/x-raw,format=RGB,width={width},height={height},framerate=30/1 ! identity name=arrive ! "
        f"ssddetect device=cpu {props} ! fakesink sync=true")
    arrivals = []

    def arrived(_pad, _info):
        arrivals.append(time.monotonic())
        return Gst.PadProbeReturn.OK

    pipeline.get_by_name("arrive").get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, arrived)
    pipeline.set_state(Gst.State.PLAYING)
    msg = pipeline.get_bus().timed_pop_filtered(
        (frames // 30 + 60) * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    if msg is None or msg.type != Gst.MessageType.EOS:
        raise SystemExit(f"[{props}]: the pipeline did not reach EOS")
    gaps = [(b - a) * 1000 for a, b in zip(arrivals, arrivals[1:])]
    return max(gaps), sum(g > 40 for g in gaps), len(arrivals)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("props", nargs="+", help="ssddetect properties, one set per argument")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--size", default="640x480")
    args = parser.parse_args()
    Gst.init(None)
    for props in args.props:
        largest, late, n = measure(props, args.frames, args.size)
        print(f"[{props}] largest gap {largest:.1f} ms, gaps over 40 ms: {late}, frames: {n}", flush=True)


if __name__ == "__main__":
    main()
