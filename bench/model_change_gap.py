#!/usr/bin/env python3
"""How a model change while playing affects a live stream: ssddetect on a live 30 fps source
(videotestsrc is-live=true) into fakesink; in alternate rounds the `model` property is set every
second, between the shipped model and a copy of it with renamed labels (the same tensors).
Prints, per round, the frames that reached the sink, the model switches the element announced
(ssd-model-changed messages) and the gaps between consecutive frames at the sink.

Run with Debian's Python (PyGObject) and the plugin of the build tree:
  GST_PLUGIN_PATH=build/gst-plugin /usr/bin/python3 bench/model_change_gap.py [--rounds 2]
"""
import argparse
import json
import os
import struct
import tempfile
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402


def renamed_copy(src, dst):
    """The weights file `src` with every label prefixed "new-" (the header's ssd.config)."""
    with open(src, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    config = json.loads(header["__metadata__"]["ssd.config"])
    config["labels"] = ["new-" + label for label in config["labels"]]
    header["__metadata__"]["ssd.config"] = json.dumps(config)
    new_header = json.dumps(header).encode()
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(new_header)) + new_header + data[8 + n:])


def run(model, other, change, args):
    p = Gst.parse_launch(
        f"videotestsrc is-live=true pattern=ball ! video/x-raw,width={args.width},height={args.height},"
        f"framerate=30/1 ! ssddetect name=d model={model} {args.props} ! fakesink name=s sync=false "
        "signal-handoffs=true")
    d, s = p.get_by_name("d"), p.get_by_name("s")
    times = []
    s.connect("handoff", lambda sink, buf, pad: times.append(time.monotonic()))
    p.set_state(Gst.State.PLAYING)
    time.sleep(2)   # warm-up
    start = len(times)
    for i in range(args.seconds):
        if change:
            d.set_property("model", other if i % 2 == 0 else model)
        time.sleep(1)
    t = times[start:]
    switched = warnings = 0
    bus = p.get_bus()
    while (m := bus.pop()):
        if m.type == Gst.MessageType.ELEMENT and m.get_structure().get_name() == "ssd-model-changed":
            switched += 1
        elif m.type in (Gst.MessageType.WARNING, Gst.MessageType.ERROR):
            warnings += 1
    p.set_state(Gst.State.NULL)
    gaps = sorted((b - a) * 1000 for a, b in zip(t, t[1:]))
    print(f"{'changes' if change else 'no changes'}: {len(t)} frames, {switched} switches, "
          f"{warnings} warnings/errors; gap between frames: median {gaps[len(gaps) // 2]:.1f} ms, "
          f"p99 {gaps[int(len(gaps) * 0.99)]:.1f} ms, max {gaps[-1]:.1f} ms", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--model", default=os.path.join(here, "..", "models", "ssd-default.safetensors"))
    ap.add_argument("--rounds", type=int, default=2, help="rounds of each (alternating)")
    ap.add_argument("--seconds", type=int, default=20, help="seconds (model changes) a round")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--props", default="", help="further ssddetect properties")
    args = ap.parse_args()
    Gst.init(None)
    with tempfile.TemporaryDirectory() as tmp:
        other = os.path.join(tmp, "renamed.safetensors")
        renamed_copy(args.model, other)
        for _ in range(args.rounds):
            for change in (False, True):
                run(os.path.abspath(args.model), other, change, args)


if __name__ == "__main__":
    main()
