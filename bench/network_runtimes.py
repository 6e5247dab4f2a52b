#!/usr/bin/env python3
"""A weights file's network on the CPU, batch 1, in other runtimes beside ours.

What sets the CPU speed of ssddetect against GStreamer's own ONNX elements (onnxinference runs
its graph with ONNX Runtime): the same network, the same input, in one process, in alternating
rounds. Rows:
  ours         build/bench/bench_model's `model` row (LibTorch as ssd::Detector runs the network:
               the body's BatchNorms folded, each grid's output convolutions fused,
               channels-last), run as a subprocess in each round
  eager        PyTorch eager: bench/reference_ssd.py's network (torchvision ResNet body, the
               lesson's head), the body's BatchNorms folded (torch.nn.utils.fusion), channels-last
  torchscript  the same traced and frozen (no Python between operators)
  onednn       torch.jit.optimize_for_inference: oneDNN (MKLDNN) convolutions on its blocked
               layout with prepacked weights, as TorchScript inference gets them
  bf16         eager in bfloat16, channels-last (oneDNN's bf16 kernels: AVX-512 BF16 / AMX where
               the CPU has them); its largest output difference to fp32 is printed
  int8         FX static quantization (torch.ao.quantization, default qconfig of the `onednn`
               quantized engine, calibrated on 32 random inputs: a speed figure; its output
               difference is printed but says little), traced and frozen
  onnxruntime  the network exported by torch.onnx.export, onnxruntime's CPU execution provider
               (skipped when onnxruntime is not installed)
Each cell: ms per forward on a ready (1, 3, S, S) input, median over --rounds (range), each
round timing about --seconds. `--profile ROW` (a PyTorch row) instead prints torch.profiler's
operators for that row, one thread, microseconds of own CPU time per forward, by input shapes.

    .venv/bin/python bench/network_runtimes.py --model models/ssd-default.safetensors \\
        --threads 1,2 --rounds 3 --bench-model build/bench/bench_model
"""
import argparse
import copy
import os
import re
import statistics
import subprocess
import sys
import tempfile
import warnings

import torch
import torch.nn as nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_ssd as ref  # noqa: E402


def fold_body_batchnorms(model):
    """Each BatchNorm of the torchvision body folded into the convolution before it."""
    body = model.body
    body.conv1 = fuse_conv_bn_eval(body.conv1, body.bn1)
    body.bn1 = nn.Identity()
    for name, block in body.named_modules():
        if not name or not hasattr(block, "conv2"):
            continue
        for i in (1, 2, 3):
            conv, bn = getattr(block, f"conv{i}", None), getattr(block, f"bn{i}", None)
            if conv is not None:
                setattr(block, f"conv{i}", fuse_conv_bn_eval(conv, bn))
                setattr(block, f"bn{i}", nn.Identity())
        if block.downsample is not None:
            block.downsample = fuse_conv_bn_eval(block.downsample[0], block.downsample[1])
    return model


def time_ms(fn, seconds):
    """ms per call over about `seconds`, after a warm-up (reference_ssd.median_rate, one round)."""
    rate, _ = ref.median_rate(fn, torch.device("cpu"), seconds, 1, 1)
    return 1e3 / rate


def ours_ms(exe, model, threads, seconds):
    out = subprocess.run([exe, "--bodies", "", "--model", model, "--batches", "1", "--devices",
                          "cpu", "--threads", str(threads), "--seconds", str(seconds),
                          "--frame", "640x480", "--in-flight", "1"],
                         check=True, capture_output=True, text=True).stdout
    m = re.search(r"^\| model \| file \| cpu \| fp32 \| 1 \| [0-9.]+ \| ([0-9.]+) \|", out, re.M)
    if not m:
        sys.exit(f"{exe}: no model row in its output:\n{out}")
    return float(m.group(1))


def profile(fn, name, forwards=200):
    from torch.profiler import ProfilerActivity
    torch.set_num_threads(1)
    with torch.no_grad():
        for _ in range(50):
            fn()
        with torch.profiler.profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            for _ in range(forwards):
                fn()
    events = [e for e in prof.key_averages(group_by_input_shape=True) if e.self_cpu_time_total > 0]
    events.sort(key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events) / forwards
    kernels = ("aten::_slow_conv2d_forward", "aten::mkldnn_convolution")
    convs = sum(e.self_cpu_time_total for e in events if e.key in kernels) / forwards
    print(f"{name}, one thread: {total:.0f} us of operators' own CPU time a forward, "
          f"{convs:.0f} us in the convolution kernels ({', '.join(kernels)})")
    print()
    print("| operator | input shapes | calls a forward | own CPU us a forward |")
    print("|---|---|---:|---:|")
    for e in events[:20]:
        print(f"| {e.key} | {e.input_shapes} | {e.count / forwards:g} | "
              f"{e.self_cpu_time_total / forwards:.1f} |")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="models/ssd-default.safetensors")
    p.add_argument("--threads", default="1,2", help="comma-separated intra-op thread counts")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--bench-model", default="", help="bench_model executable for the `ours` row")
    p.add_argument("--profile", default="", help="profile this PyTorch row instead (one thread)")
    a = p.parse_args()
    warnings.filterwarnings("ignore")
    threads = [int(t) for t in a.threads.split(",")]

    model, cfg = ref.load_model(a.model)
    S = cfg["input_size"]
    x = torch.randn(1, 3, S, S)
    with torch.no_grad():
        plain = model(x)
        eager = fold_body_batchnorms(copy.deepcopy(model)).to(memory_format=torch.channels_last)
        xcl = x.contiguous(memory_format=torch.channels_last)
        xbf = xcl.to(torch.bfloat16)

        def torchscript():
            s = torch.jit.freeze(torch.jit.trace(eager, xcl))
            return lambda: s(xcl)

        def onednn():
            s = torch.jit.optimize_for_inference(torch.jit.trace(copy.deepcopy(model), x))
            return lambda: s(x)

        def bf16():
            m = copy.deepcopy(eager).to(torch.bfloat16)
            return lambda: m(xbf)

        def int8():
            from torch.ao.quantization import get_default_qconfig_mapping
            from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
            torch.backends.quantized.engine = "onednn"
            lesson_flatten = ref.flatten_conv   # its tuple unpacking of x.size() does not trace
            ref.flatten_conv = lambda t, k: t.permute(0, 2, 3, 1).reshape(t.size(0), -1, t.size(1) // k)
            try:
                prepared = prepare_fx(copy.deepcopy(model), get_default_qconfig_mapping("onednn"),
                                      example_inputs=(x,))
            finally:
                ref.flatten_conv = lesson_flatten
            gen = torch.Generator().manual_seed(0)
            for _ in range(32):
                prepared(torch.randn(1, 3, S, S, generator=gen))
            s = torch.jit.freeze(torch.jit.trace(convert_fx(prepared), x))
            return lambda: s(x)

        # name -> (make the runner, tolerance of its outputs against the plain model's)
        builders = {"eager": (lambda: lambda: eager(xcl), 1e-3), "torchscript": (torchscript, 1e-3),
                    "onednn": (onednn, 1e-3), "bf16": (bf16, None), "int8": (int8, None)}
        rows, failed, diffs = {}, {}, {}
        for name, (make, tolerance) in builders.items():
            try:   # a runtime this PyTorch build cannot run is reported, not fatal
                fn = make()
                out = fn()
            except Exception as e:  # noqa: BLE001
                lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()] or [type(e).__name__]
                failed[name] = next((ln for ln in lines if "Error" in ln or "ASSERT" in ln), lines[0])[:240]
                continue
            diff = max((o.float() - r).abs().max().item() for o, r in zip(out, plain))
            if tolerance is None:
                diffs[name] = diff
            elif diff > tolerance:
                sys.exit(f"{name}: outputs differ from the plain model's by {diff}")
            rows[name] = fn

    if a.profile:
        if a.profile not in rows:
            sys.exit(f"--profile: one of {', '.join(rows)}"
                     + "".join(f"; {n} failed: {w}" for n, w in failed.items()))
        profile(rows[a.profile], a.profile)
        return

    sessions = {}
    try:
        import onnxruntime as ort
        tmp = tempfile.NamedTemporaryFile(suffix=".onnx", delete=False)
        tmp.close()
        torch.onnx.export(model, x, tmp.name, input_names=["x"], opset_version=13)
        xn = x.numpy()
        for t in threads:
            so = ort.SessionOptions()
            so.intra_op_num_threads = t
            sessions[t] = ort.InferenceSession(tmp.name, so, providers=["CPUExecutionProvider"])
            diff = max(abs(o - r.numpy()).max() for o, r in zip(sessions[t].run(None, {"x": xn}), plain))
            if diff > 1e-3:
                sys.exit(f"onnxruntime: outputs differ from PyTorch's by {diff}")
        os.unlink(tmp.name)
        ort_version = ort.__version__
    except ImportError:
        ort_version = None

    names = (["ours"] if a.bench_model else []) + list(rows) + (["onnxruntime"] if sessions else [])
    samples = {(n, t): [] for n in names for t in threads}
    for r in range(a.rounds):
        for t in threads:
            if a.bench_model:
                samples[("ours", t)].append(ours_ms(a.bench_model, a.model, t, a.seconds))
            torch.set_num_threads(t)
            with torch.no_grad():
                for name, fn in rows.items():
                    samples[(name, t)].append(time_ms(fn, a.seconds))
            if sessions:
                s = sessions[t]
                samples[("onnxruntime", t)].append(time_ms(lambda: s.run(None, {"x": xn}), a.seconds))
        print(f"round {r + 1} of {a.rounds} done", file=sys.stderr)

    print(f"{a.model}: body {cfg['body']}, {S} px, grids {cfg['grids']}; PyTorch {torch.__version__}"
          + (f", onnxruntime {ort_version}" if ort_version else "")
          + "".join(f"; {n} outputs differ from fp32 by up to {d:.3g}" for n, d in diffs.items()))
    for name, why in failed.items():
        print(f"{name}: failed with this PyTorch ({why})")
    print()
    print("| runtime | " + " | ".join(f"{t} thread{'s' if t > 1 else ''}, ms" for t in threads) + " |")
    print("|---|" + "---:|" * len(threads))
    for n in names:
        cells = []
        for t in threads:
            v = samples[(n, t)]
            cells.append(f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})")
        print(f"| {n} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
