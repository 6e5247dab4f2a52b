#!/usr/bin/env python3
"""Exports a gst-ssd weights file to ONNX, whole: preprocessing, network, box decoding, per-class
NMS, top-k, in one graph that GStreamer's own ONNX elements run as they run TensorFlow's SSD
models (gst-plugins-bad's `onnxinference` + `ssdobjectdetector`; checked with GStreamer 1.26):

    .venv/bin/python scripts/export-onnx.py models/ssd-default.safetensors ssd-640x480.onnx \\
        --frame 640x480
    gst-launch-1.0 videotestsrc ! video/x-raw,width=640,height=480 ! videoconvert ! \\
        video/x-raw,format=RGB ! onnxinference model-file=ssd-640x480.onnx ! \\
        ssdobjectdetector label-file=ssd-640x480.labels score-threshold=0.3 ! \\
        objectdetectionoverlay ! videoconvert ! autovideosink

Input `image`: uint8 (1, H, W, 3), the frame's pixels as GStreamer's video/x-raw RGB (or BGR
with --bgr) at the --frame size the graph was made for (onnxinference's default hwc layout, no
offset or scale). Inside: the resize of ssddetect (integer-factor average pooling, then
bilinear; boxes scaled to the part of the frame the pooling does not leave out), the weights
file's normalisation, the network, the lesson's tanh box decoding, sigmoid scores, per-class NMS and the best --max-detections above --threshold, as
`ssd::Detector` computes them. Outputs as TensorFlow's object detection API writes them:
`detection_boxes` (1, N, 4) float normalised y_min, x_min, y_max, x_max; `detection_scores`
(1, N); `detection_classes` (1, N) float label index; `num_detections` (1) float. The model's
metadata maps each output name to the tensor id GStreamer's decoder looks for
(Gst.Model.ObjectDetector.Boxes, ...), and the labels file beside it (OUT with .labels) lists
the labels one a line in index order, for ssdobjectdetector's label-file.

The network is rebuilt in PyTorch by bench/reference_ssd.py (torchvision's ResNet, the lesson's
head), which the `bench` test suite checks against the C++ detector; the `bench` suite also
checks this export against ssd::Detector, run by onnxruntime.
"""
import argparse
import os
import sys
import warnings

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
import reference_ssd as ref  # noqa: E402

# The tensor ids of gst-plugins-bad's ssdobjectdetector (gstssdobjectdetector.c).
TENSOR_IDS = {
    "detection_boxes": "Gst.Model.ObjectDetector.Boxes",
    "detection_scores": "Gst.Model.ObjectDetector.Scores",
    "detection_classes": "Gst.Model.ObjectDetector.Classes",
    "num_detections": "Gst.Model.ObjectDetector.NumDetections",
}


class Exported(torch.nn.Module):
    def __init__(self, model, cfg, bgr, threshold, nms_iou, max_det, frame_h, frame_w):
        super().__init__()
        self.model, self.size, self.bgr = model, cfg["input_size"], bgr
        self.threshold, self.nms_iou, self.max_det = threshold, nms_iou, max_det
        centers, grid_sizes = ref.make_anchors(cfg)
        self.register_buffer("centers", centers)
        self.register_buffer("grid_sizes", grid_sizes)
        self.register_buffer("mean", torch.tensor(cfg["mean"]).view(1, 3, 1, 1))
        self.register_buffer("inv_std", 1.0 / torch.tensor(cfg["std"]).view(1, 3, 1, 1))
        # Boxes of the part of the frame the pooling does not leave out, in [0, 1] of the frame.
        self.register_buffer("seen", ref.seen_scale(frame_h, frame_w, cfg["input_size"]))

    def forward(self, image):
        x = image.permute(0, 3, 1, 2).float()
        if self.bgr:
            x = x.flip(1)
        x = (ref.resize_square(x, self.size) / 255.0 - self.mean) * self.inv_std
        cls, box = self.model(x)
        (boxes, scores, labels), = ref.postprocess(cls, box, self.centers, self.grid_sizes,
                                                   self.threshold, self.nms_iou, self.max_det)
        count = torch.ones_like(scores).sum(0, keepdim=True)
        boxes = boxes * self.seen
        return (boxes[:, [1, 0, 3, 2]].unsqueeze(0), scores.unsqueeze(0),
                labels.float().unsqueeze(0), count)


def varint(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def metadata_props(entries):
    """ONNX ModelProto.metadata_props (field 14, StringStringEntryProto key = 1, value = 2) in
    protobuf's wire format: appended to a serialised ModelProto, repeated fields add up."""
    out = bytearray()
    for key, value in entries.items():
        k, v = key.encode(), value.encode()
        entry = b"\x0a" + varint(len(k)) + k + b"\x12" + varint(len(v)) + v
        out += b"\x72" + varint(len(entry)) + entry
    return bytes(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__[__doc__.index("\n\n") + 2:])
    ap.add_argument("weights", help="gst-ssd weights file (.safetensors)")
    ap.add_argument("out", help="ONNX file to write (labels go to the same name with .labels)")
    ap.add_argument("--frame", help="WxH of the frames the graph takes (default: the model's "
                    "input size, frames scaled to it in front)")
    ap.add_argument("--bgr", action="store_true", help="frames in BGR order instead of RGB")
    ap.add_argument("--threshold", type=float, default=0.3, help="score threshold (0.3)")
    ap.add_argument("--nms-iou", type=float, default=0.45, help="NMS IoU (0.45)")
    ap.add_argument("--max-detections", type=int, default=100, help="top-k after NMS (100)")
    ap.add_argument("--opset", type=int, default=13)
    a = ap.parse_args()

    if not os.path.isfile(a.weights):
        sys.exit(f"{a.weights}: no such weights file")
    out_dir = os.path.dirname(os.path.abspath(a.out))
    if not os.path.isdir(out_dir):
        sys.exit(f"{a.out}: no folder {out_dir}")
    try:
        model, cfg = ref.load_model(a.weights)
    except Exception as e:  # noqa: BLE001 (a corrupt or foreign file: its reason in one line)
        sys.exit(f"{a.weights}: cannot read it as a gst-ssd weights file: {e}")
    w, h = (cfg["input_size"],) * 2
    if a.frame:
        try:
            w, h = (int(v) for v in a.frame.lower().split("x"))
        except ValueError:
            sys.exit(f"--frame: expected WxH such as 640x480, got '{a.frame}'")
    if min(w, h) < 1:
        sys.exit(f"--frame: {w}x{h} is empty")
    net = Exported(model, cfg, a.bgr, a.threshold, a.nms_iou, a.max_detections, h, w).eval()
    image = torch.randint(0, 256, (1, h, w, 3), dtype=torch.uint8)
    outputs = list(TENSOR_IDS)
    # The tracer's warnings are about shapes it records as constants: they are (the frame size).
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kwargs = {"dynamo": False} if "dynamo" in torch.onnx.export.__code__.co_varnames else {}
        torch.onnx.export(net, (image,), a.out, input_names=["image"], output_names=outputs,
                          dynamic_axes={n: {1: "detections"} for n in outputs[:3]},
                          opset_version=a.opset, do_constant_folding=True, **kwargs)
    with open(a.out, "ab") as f:
        f.write(metadata_props(TENSOR_IDS))
    labels = os.path.splitext(a.out)[0] + ".labels"
    with open(labels, "w") as f:
        f.write("".join(label + "\n" for label in cfg["labels"]))
    print(f"{a.out}: {cfg['body']} {cfg['input_size']} px, {len(cfg['labels'])} labels, "
          f"frames {w}x{h} {'BGR' if a.bgr else 'RGB'}; labels in {labels}")


if __name__ == "__main__":
    main()
