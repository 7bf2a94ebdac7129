"""dwconv's GPU path against PyTorch's CUDA depthwise convolution (cuDNN), on the benchmark suite.

    python benchmarks/gpu.py [--json FILE] [--rounds N]

Every shape of ``dwconv.bench.SUITE`` runs forward (batch 1 and BACKWARD_BATCH) and backward
(input and filter gradients, BACKWARD_BATCH), float32, in both layouts: dwconv on CuPy arrays,
PyTorch on CUDA tensors (NCHW, and channels_last for NHWC) of the same data. Results are checked
against each other before timing; times are CUDA-event medians in milliseconds per call.
"""
import argparse
import json
import statistics
import sys

import cupy
import numpy as np
import torch
import torch.nn.functional as F

import dwconv
from dwconv.bench import BACKWARD_BATCH, FORWARD_ONLY, SUITE

TOLERANCE = 1e-3  # max |a - b| <= TOLERANCE * max |b|, as in dwconv.bench


def _time(run, rounds, reps):
    """Median milliseconds per call over `rounds` batches of `reps` calls, timed by CUDA events."""
    run()
    cupy.cuda.runtime.deviceSynchronize()
    samples = []
    for _ in range(rounds):
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        for _ in range(reps):
            run()
        stop.record()
        stop.synchronize()
        samples.append(cupy.cuda.get_elapsed_time(start, stop) / reps)
    return statistics.median(samples)


def _agree(ours, theirs, what):
    ours, theirs = cupy.asnumpy(ours), theirs.detach().cpu().numpy()
    error = np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-30)
    if not error <= TOLERANCE:
        raise AssertionError(f"{what}: dwconv and PyTorch differ by {error:.3g} (relative)")


def _case(shape, batch, layout, backward, rng):
    """(dwconv's call, PyTorch's call), checked to agree."""
    x = rng.standard_normal((batch, shape.H, shape.W, shape.C), dtype=np.float32)
    w = rng.standard_normal((shape.k, shape.k, shape.C, 1), dtype=np.float32)
    memory = torch.channels_last if layout == "NHWC" else torch.contiguous_format
    tx = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=memory).cuda()
    tw = torch.from_numpy(w).permute(2, 3, 0, 1).contiguous(memory_format=memory).cuda()
    cx = cupy.asarray(x if layout == "NHWC" else x.transpose(0, 3, 1, 2).copy())
    cw = cupy.asarray(w)
    padding = ((shape.pad, shape.pad), (shape.pad, shape.pad))
    args = dict(strides=shape.stride, padding=padding, data_format=layout)
    torch_y = F.conv2d(tx, tw, None, shape.stride, shape.pad, 1, shape.C)
    to_layout = (lambda t: t.permute(0, 2, 3, 1)) if layout == "NHWC" else (lambda t: t)
    if not backward:
        _agree(dwconv.depthwise_conv2d(cx, cw, **args), to_layout(torch_y), f"{shape.name} forward")
        return (lambda: dwconv.depthwise_conv2d(cx, cw, **args),
                lambda: F.conv2d(tx, tw, None, shape.stride, shape.pad, 1, shape.C))
    dy = rng.standard_normal(torch_y.shape, dtype=np.float32)  # NCHW
    tdy = torch.from_numpy(dy).contiguous(memory_format=memory).cuda()
    cdy = cupy.asarray(dy.transpose(0, 2, 3, 1).copy() if layout == "NHWC" else dy)

    def theirs():  # the backward kernels alone, as autograd calls them
        return torch.ops.aten.convolution_backward(tdy, tx, tw, None, [shape.stride] * 2, [shape.pad] * 2, [1, 1],
                                                   False, [0, 0], shape.C, [True, True, False])

    def ours():
        return (dwconv.depthwise_conv2d_backprop_input(cx.shape, cw, cdy, **args),
                dwconv.depthwise_conv2d_backprop_filter(cx, cw.shape, cdy, **args))

    (dx, dfilters), (tdx, tdfilters, _) = ours(), theirs()
    _agree(dx, to_layout(tdx), f"{shape.name} input gradient")
    _agree(dfilters, tdfilters.permute(2, 3, 0, 1), f"{shape.name} filter gradient")
    return ours, theirs


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args(argv)
    torch.backends.cudnn.benchmark = True
    device = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"].decode()
    print(f"dwconv {dwconv.__version__} (CuPy {cupy.__version__}) vs PyTorch {torch.__version__} "
          f"(cuDNN {torch.backends.cudnn.version()}) on {device}; float32, median ms per call")
    rng = np.random.default_rng(20240601)
    rows = []
    sections = [("forward", 1), ("forward", BACKWARD_BATCH), ("backward", BACKWARD_BATCH)]
    for kind, batch in sections:
        print(f"\n{kind}, batch {batch}\n{'shape':<22}{'layout':<8}{'dwconv':>10}{'PyTorch':>10}{'ratio':>8}")
        for shape in SUITE:
            if kind == "backward" and shape.name in FORWARD_ONLY:
                continue
            for layout in ("NHWC", "NCHW"):
                ours, theirs = _case(shape, batch, layout, kind == "backward", rng)
                ms_ours, ms_theirs = (_time(run, args.rounds, args.reps) for run in (ours, theirs))
                rows.append(dict(section=kind, batch=batch, shape=shape.name, layout=layout, dwconv_ms=ms_ours,
                                 torch_ms=ms_theirs, device=device))
                print(f"{shape.name:<22}{layout:<8}{ms_ours:>10.3f}{ms_theirs:>10.3f}{ms_theirs / ms_ours:>8.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
