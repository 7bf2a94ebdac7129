"""Thread scaling of dwconv: each suite shape at batch 16, forward and backward, on one thread and
on two, interleaved in rounds; prints the medians and their ratio (the target is >= 1.7x).

    python benchmarks/scaling.py [--rounds 5]
"""
import argparse
import statistics
import time

import numpy as np

import dwconv
from dwconv.bench import BACKWARD_BATCH, FORWARD_ONLY, SUITE


def seconds_per_call(run, seconds=0.05):
    """Mean seconds per call over back-to-back calls lasting `seconds`, after a warm-up call."""
    run()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        run()
        calls += 1
    return (time.perf_counter() - start) / calls


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"{'shape':18s} {'layout':6s} {'fwd 1t ms':>9s} {'fwd 2t ms':>9s} {'x':>5s}  "
          f"{'bwd 1t ms':>9s} {'bwd 2t ms':>9s} {'x':>5s}")
    for shape in SUITE:
        for layout in ("NHWC", "NCHW"):
            dims = (shape.H, shape.W, shape.C) if layout == "NHWC" else (shape.C, shape.H, shape.W)
            x = rng.random((BACKWARD_BATCH, *dims), np.float32)
            w = rng.random((shape.k, shape.k, shape.C), np.float32)
            conv = dict(strides=shape.stride, padding=shape.pad, data_format=layout)
            dy = np.ones_like(dwconv.depthwise_conv2d(x, w, **conv))
            work = {"fwd": lambda t: dwconv.depthwise_conv2d(x, w, **conv, num_threads=t)}
            if shape.name not in FORWARD_ONLY:
                work["bwd"] = lambda t: dwconv.depthwise_conv2d_grad(x, w, dy, **conv, num_threads=t)
            samples = {}
            for _ in range(args.rounds):
                for kind, run in work.items():
                    for threads in (1, 2):
                        samples.setdefault((kind, threads), []).append(seconds_per_call(lambda: run(threads)))
            ms = {key: statistics.median(values) * 1e3 for key, values in samples.items()}
            line = f"{shape.name:18s} {layout:6s}"
            for kind in work:
                line += f" {ms[kind, 1]:9.3f} {ms[kind, 2]:9.3f} {ms[kind, 1] / ms[kind, 2]:5.2f} "
            print(line, flush=True)


if __name__ == "__main__":
    main()
