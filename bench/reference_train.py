#!/usr/bin/env python3
"""The SSD training step in eager PyTorch, timed on random data (images/s).

The same computation as one step of ssd-train (training/trainer.cpp) and bench/bench_train:
zero_grad, forward (bench/reference_ssd.py's model: torchvision body + the lesson's head; under
torch.autocast for bf16/fp16), the lesson's SSD loss in fp32 (map_to_ground_truth with forced
best anchors, L1 on the positive anchors' decoded boxes, focal BCE over the non-background
classes / C, summed over the batch), loss / B, backward, clip_grad_norm_(1.0), AdamW over three
layer groups (lr / 9, lr / 3, lr), and the loss read back with .item().

  reference_train.py [--body tiny] [--head-channels 128] [--input-size 224] [--grids 4,2,1]
                     [--classes 20] [--batch 16] [--device cpu|cuda]
                     [--precision fp32|bf16|fp16] [--loss lesson|batched] [--steps 10] [--repeats 5]
                     [--threads N] [--gt 4]

--loss lesson: the lesson's per-image loop (what a user porting the notebook writes);
--loss batched: the same maths vectorised over the batch, as model/loss.cpp does it.
--precision bf16 | fp16: the forward pass under torch.autocast with that dtype, the loss on the
outputs cast to fp32 outside it (as ssd-train --precision); fp16 (CUDA only) adds a GradScaler
(gradients unscaled before clipping). bf16 also runs on the CPU. Prints one JSON line with the
median images/s over the rounds.
"""
import argparse
import contextlib
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_ssd import Ssd, actn_to_bb, make_anchors  # noqa: E402


def hw2corners(c):
    return torch.cat([c[:, :2] - c[:, 2:] / 2, c[:, :2] + c[:, 2:] / 2], 1)


def box_iou(a, b):
    """(..., N, 4) x (M, 4) or (B, M, 4) -> (..., N, M)"""
    lo = torch.max(a[..., :, None, :2], b[..., None, :, :2])
    hi = torch.min(a[..., :, None, 2:], b[..., None, :, 2:])
    inter = (hi - lo).clamp(min=0).prod(-1)
    area = lambda x: (x[..., 2:] - x[..., :2]).clamp(min=0).prod(-1)
    return inter / (area(a)[..., :, None] + area(b)[..., None, :] - inter)


def focal_bce_sum(logits, targets, alpha=0.25, gamma=2.0):
    """The lesson's FocalLoss: BCE weighted by alpha_t * (1 - p_t)^gamma, summed."""
    p = logits.sigmoid()
    pt = p * targets + (1 - p) * (1 - targets)
    w = (alpha * targets + (1 - alpha) * (1 - targets)) * (1 - pt).pow(gamma)
    return (w * F.binary_cross_entropy_with_logits(logits, targets, reduction="none")).sum()


def map_to_ground_truth(overlaps):
    """The lesson's: overlaps (G, A) -> (A) overlap, (A) gt index; best anchors forced."""
    prior_overlap, prior_idx = overlaps.max(1)
    gt_overlap, gt_idx = overlaps.max(0)
    gt_overlap[prior_idx] = 1.99
    for i, o in enumerate(prior_idx):
        gt_idx[o] = i
    return gt_overlap, gt_idx


def ssd_loss_lesson(cls, box, gt_boxes, gt_labels, anchors, thresh=0.4):
    """The lesson's ssd_loss: a loop of ssd_1_loss over the images (no padding here)."""
    centers, gsz, corners = anchors
    C = cls.shape[-1] - 1
    loc_sum, cls_sum = 0.0, 0.0
    for b_c, b_bb, bbox, clas in zip(cls, box, gt_boxes, gt_labels):
        a_ic = actn_to_bb(b_bb.float(), centers, gsz)
        gt_overlap, gt_idx = map_to_ground_truth(box_iou(bbox, corners))
        gt_clas = clas[gt_idx]
        pos = gt_overlap > thresh
        pos_idx = torch.nonzero(pos)[:, 0]
        gt_clas[~pos] = C
        gt_bbox = bbox[gt_idx]
        loc_sum = loc_sum + (a_ic[pos_idx] - gt_bbox[pos_idx]).abs().mean()
        one_hot = torch.eye(C + 1, device=cls.device)[gt_clas][:, :C]
        cls_sum = cls_sum + focal_bce_sum(b_c[:, :C].float(), one_hot) / C
    return loc_sum, cls_sum


def ssd_loss_batched(cls, box, gt_boxes, gt_labels, anchors, thresh=0.4):
    """The same maths vectorised over the batch (every ground truth valid)."""
    centers, gsz, corners = anchors
    B, A, C1 = cls.shape
    C, G = C1 - 1, gt_boxes.shape[1]
    ov = box_iou(gt_boxes, corners)                           # (B, G, A)
    best_anchor = ov.argmax(2)                                # (B, G)
    overlap, gt_idx = ov.max(1)                               # (B, A)
    hits = best_anchor[..., None] == torch.arange(A, device=cls.device)   # (B, G, A)
    forced_g = (hits.long() * torch.arange(1, G + 1, device=cls.device).view(1, G, 1)).amax(1) - 1
    forced = forced_g >= 0
    overlap = torch.where(forced, torch.full_like(overlap, 1.99), overlap)
    gt_idx = torch.where(forced, forced_g, gt_idx)
    pos = overlap > thresh
    pred = actn_to_bb(box.float(), centers, gsz)
    gt = gt_boxes.gather(1, gt_idx[..., None].expand(B, A, 4))
    err = (pred - gt).abs().sum(-1) * pos
    loc = (err.sum(1) / (pos.sum(1) * 4).clamp(min=1)).sum()
    t = torch.where(pos, gt_labels.gather(1, gt_idx), torch.full_like(gt_idx, C))
    one_hot = F.one_hot(t, C + 1)[..., :C].float()
    return loc, focal_bce_sum(cls[..., :C].float().reshape(-1, C), one_hot.reshape(-1, C)) / C


def loss_check(inp, out):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file
    t = load_file(inp)
    with safe_open(inp, "pt") as f:
        cfg = json.loads(f.metadata()["ssd.config"])
    centers, gsz = make_anchors(cfg)
    anchors = (centers, gsz, hw2corners(centers))
    res = {}
    for name, fn in (("lesson", ssd_loss_lesson), ("batched", ssd_loss_batched)):
        loc, clas = fn(t["cls"], t["box"], t["gt_boxes"], t["gt_labels"], anchors)
        res[f"{name}_loc"] = torch.as_tensor(loc, dtype=torch.float64).reshape(1)
        res[f"{name}_cls"] = torch.as_tensor(clas, dtype=torch.float64).reshape(1)
    save_file(res, out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--body", default="tiny")
    p.add_argument("--head-channels", type=int, default=128)
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--grids", default="4,2,1", help="anchor grids, finest first")
    p.add_argument("--classes", type=int, default=20)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--gt", type=int, default=4)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--loss", default="lesson", choices=["lesson", "batched"])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--loss-check", nargs=2, metavar=("IN", "OUT"),
                   help="no timing: IN.safetensors holds cls (B, A, C+1), box (B, A, 4), "
                        "gt_boxes (B, G, 4), gt_labels (B, G) and the config JSON in metadata "
                        "'ssd.config'; OUT gets {lesson,batched}_{loc,cls}")
    a = p.parse_args()
    if a.loss_check:
        return loss_check(*a.loss_check)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    amp_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[a.precision]
    if a.precision == "fp16" and device.type != "cuda":
        sys.exit("--precision fp16 needs a CUDA device (use bf16 on the CPU)")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)

    grids = [int(g) for g in a.grids.split(",")]
    cfg = {"body": a.body, "input_size": a.input_size, "grids": grids, "zooms": [0.7, 1.0, 1.3],
           "ratios_wh": [[1.0, 1.0], [0.5, 1.0], [1.0, 0.5]],
           "labels": [f"c{i}" for i in range(a.classes)], "head_channels": a.head_channels,
           "dropout": 0.1, "class_bias": -4.0}
    model = Ssd(cfg).to(device).train()
    centers, gsz = (t.to(device) for t in make_anchors(cfg))
    anchors = (centers, gsz, hw2corners(centers))

    lr, div = 3e-3, 3.0
    body = model.body
    groups = [
        [*body.conv1.parameters(), *body.bn1.parameters(), *body.layer1.parameters(),
         *body.layer2.parameters()],
        [*body.layer3.parameters(), *body.layer4.parameters()],
        list(model.head.parameters()),
    ]
    opt = torch.optim.AdamW([{"params": g, "lr": lr * m} for g, m in
                             zip(groups, (1 / div ** 2, 1 / div, 1.0))],
                            lr=lr, betas=(0.95, 0.99), weight_decay=1e-2)
    fp16 = a.precision == "fp16"
    if hasattr(torch.amp, "GradScaler"):   # torch >= 2.3
        scaler = torch.amp.GradScaler(device.type, enabled=fp16)
    else:
        scaler = torch.cuda.amp.GradScaler(enabled=fp16)
    loss_fn = ssd_loss_lesson if a.loss == "lesson" else ssd_loss_batched
    if amp_dtype is None:
        autocast = contextlib.nullcontext
    else:
        autocast = lambda: torch.autocast(device_type=device.type, dtype=amp_dtype)  # noqa: E731

    B, G = a.batch, a.gt
    images = torch.randn(B, 3, a.input_size, a.input_size, device=device)
    ctr = torch.rand(B, G, 2, device=device) * 0.6 + 0.2
    wh = torch.rand(B, G, 2, device=device) * 0.3 + 0.1
    gt_boxes = torch.cat([ctr - wh / 2, ctr + wh / 2], -1).clamp(0, 1)
    gt_labels = torch.randint(0, a.classes, (B, G), device=device)

    def step():
        opt.zero_grad()
        with autocast():
            cls, box = model(images)
        loc, clas = loss_fn(cls.float(), box.float(), gt_boxes, gt_labels, anchors)
        total = loc + clas
        scaler.scale(total / B).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(opt)
        scaler.update()
        return total.item()

    for _ in range(3):
        step()
    rates, last = [], 0.0
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        for _ in range(a.steps):
            last = step()
        rates.append(B * a.steps / (time.perf_counter() - t0))
    print(json.dumps({
        "impl": "pytorch-eager", "loss": a.loss, "torch": torch.__version__, "body": a.body,
        "head_channels": a.head_channels, "input_size": a.input_size, "grids": grids, "batch": B,
        "device": str(device), "precision": a.precision, "threads": torch.get_num_threads(),
        "images_per_s": round(statistics.median(rates), 2),
        "rounds": [round(r, 2) for r in rates], "last_loss": last,
        **({"loss_scale": scaler.get_scale()} if fp16 else {})}))


if __name__ == "__main__":
    main()
