"""Reference computations by code nobody here wrote (torchvision), for the model tests.

  reference.py resnet OUTDIR     torchvision resnet34 with random weights and BN statistics:
                                 OUTDIR/resnet34.pt (torch.save of a plain dict),
                                 OUTDIR/resnet34_ordered.pt (of state_dict() as it is),
                                 OUTDIR/resnet34.safetensors, and OUTDIR/resnet34_io.safetensors
                                 holding an input batch and the layer4 features in eval mode.
  reference.py ops IN OUT        IN has boxes_a (N,4), boxes_b (M,4), scores (N); OUT gets
                                 torchvision.ops.box_iou(a, b) and nms(a, scores, t) for the
                                 thresholds in IN's metadata "thresholds" (comma-separated).
  reference.py output IN OUT     IN has boxes (A,4) and scores (A,C) of one image; for each
                                 "threshold iou max agnostic" of IN's metadata "cases"
                                 (separated by ";") OUT gets labels_i, scores_i, boxes_i:
                                 torchvision's batched_nms (with agnostic 1: its nms, across
                                 classes) over every (anchor, class) pair scoring above the
                                 threshold, its first max.
"""
import sys

import torch
import torchvision
from safetensors.torch import load_file, save_file, safe_open


def resnet(outdir):
    torch.manual_seed(1234)
    m = torchvision.models.resnet34()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
    m.eval()
    sd = {k: v.contiguous() for k, v in m.state_dict().items()}
    torch.save(dict(sd), f"{outdir}/resnet34.pt")
    torch.save(m.state_dict(), f"{outdir}/resnet34_ordered.pt")   # as most users save it
    save_file(sd, f"{outdir}/resnet34.safetensors")
    body = torch.nn.Sequential(*list(m.children())[:-2])
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        y = body(x)
    save_file({"input": x, "features": y.contiguous()}, f"{outdir}/resnet34_io.safetensors")


def ops(inp, out):
    t = load_file(inp)
    with safe_open(inp, "pt") as f:
        thresholds = [float(v) for v in f.metadata()["thresholds"].split(",")]
    res = {"iou": torchvision.ops.box_iou(t["boxes_a"], t["boxes_b"]).contiguous()}
    for i, th in enumerate(thresholds):
        res[f"nms_{i}"] = torchvision.ops.nms(t["boxes_a"], t["scores"], th).contiguous()
    save_file(res, out)


def output(inp, out):
    t = load_file(inp)
    with safe_open(inp, "pt") as f:
        cases = [[float(v) for v in c.split()] for c in f.metadata()["cases"].split(";")]
    A, C = t["scores"].shape
    boxes = t["boxes"].repeat_interleave(C, 0)       # pair a * C + c
    scores = t["scores"].reshape(-1)
    labels = torch.arange(C).repeat(A)
    res = {}
    for i, (threshold, iou, most, agnostic) in enumerate(cases):
        sel = scores > threshold
        b, s, l = boxes[sel], scores[sel], labels[sel]
        keep = (torchvision.ops.nms(b, s, iou) if agnostic else torchvision.ops.batched_nms(b, s, l, iou))[: int(most)]
        res[f"labels_{i}"] = l[keep].contiguous()
        res[f"scores_{i}"] = s[keep].contiguous()
        res[f"boxes_{i}"] = b[keep].contiguous()
    save_file(res, out)


if __name__ == "__main__":
    if sys.argv[1] == "resnet":
        resnet(sys.argv[2])
    elif sys.argv[1] == "ops":
        ops(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "output":
        output(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
