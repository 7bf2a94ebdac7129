"""dwconv's Python-side overhead per call (argument checks and allocation): the public call minus
the compiled kernel it ends in, at mnv2-7x960-s1, batch 1 (the target is <= 5 us).

    python benchmarks/overhead.py
"""
import timeit

import numpy as np

import dwconv
from dwconv import _args, _kernels

ROUNDS, CALLS = 7, 2000


def main():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 7, 7, 960)).astype(np.float32)
    w = rng.standard_normal((3, 3, 960)).astype(np.float32)
    y = np.empty_like(x)
    g = _args.geometry(x.shape, w.shape, 1, "SAME", "NHWC", 1)
    flat_x, flat_w, flat_y = x.reshape(-1), w.reshape(-1), y.reshape(-1)
    threads = _kernels.max_threads()
    calls = {
        "dwconv.depthwise_conv2d": lambda: dwconv.depthwise_conv2d(x, w, 1, "SAME"),
        "  with out=": lambda: dwconv.depthwise_conv2d(x, w, 1, "SAME", out=y),
        "_kernels.forward alone": lambda: _kernels.forward(flat_x, flat_w, None, flat_y, g, None, threads),
    }
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(ROUNDS):  # interleaved, so that a slow moment of the machine hits all three
        for name, call in calls.items():
            best[name] = min(best[name], min(timeit.repeat(call, number=CALLS, repeat=3)) / CALLS * 1e6)
    for name, us in best.items():
        print(f"{name:26s} {us:7.2f} us")
    kernel = best["_kernels.forward alone"]
    print(f"overhead per call: {best['dwconv.depthwise_conv2d'] - kernel:.1f} us "
          f"(with out=: {best['  with out='] - kernel:.1f} us)")


if __name__ == "__main__":
    main()
