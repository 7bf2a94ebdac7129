"""Blur and edge-filter a large multi-channel image on a dask.distributed cluster.

The image (synthetic, generated chunk by chunk on the workers) is smoothed with a 7x7 Gaussian
(reflected borders), then each channel's Sobel gradients are taken with a channel multiplier of 2
(replicated borders) and combined into an edge magnitude, written to a ``.npy`` file by the workers
region by region. Nothing is held in memory whole. ::

    python examples/dask_blur.py --size 8000 --channels 3 --chunk 2000 --out edges.npy
    python examples/dask_blur.py --size 8000 --compare   # also time one in-memory call

Prints the throughput in MB of input image per second.
"""
import argparse
import time

import dask.array as da
import numpy as np
from dask.distributed import Client, LocalCluster, progress

import dwconv
import dwconv.dask


def gaussian(size=7, sigma=1.5):
    """A normalized size x size Gaussian kernel."""
    t = np.arange(size) - (size - 1) / 2
    profile = np.exp(-t**2 / (2 * sigma**2))
    return np.outer(profile, profile) / profile.sum()**2


SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)


def edge_filters(channels):
    """Depthwise filters (3, 3, channels, 2): each channel's horizontal and vertical Sobel gradient."""
    pair = np.stack([SOBEL_X, SOBEL_X.T], axis=-1)
    return np.repeat(pair[:, :, None, :], channels, axis=2)


def blur_and_edges(image, conv2d):
    """Edge magnitude of the blurred image, per channel; `conv2d` is dwconv's in-memory or dask one."""
    channels = image.shape[-1]
    blur = np.repeat(gaussian()[:, :, None], channels, axis=2).astype(np.float32)
    blurred = conv2d(image, blur, padding="SAME", padding_mode="reflect")
    gradients = conv2d(blurred, edge_filters(channels), padding="SAME", padding_mode="replicate")
    # output channel c*2 + m: m = 0 horizontal, 1 vertical
    return np.hypot(gradients[..., 0::2], gradients[..., 1::2])


class NpyFile:
    """A ``.npy`` file that dask workers write regions of: a target for ``dask.array.store``."""

    def __init__(self, path, shape, dtype):
        np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape).flush()
        self.path = path

    def __setitem__(self, region, block):
        array = np.load(self.path, mmap_mode="r+")
        array[region] = block
        array.flush()


def synthetic_image(size, channels, chunk, seed=0):
    """A (1, size, size, channels) float32 image, random, chunked (chunk x chunk) spatially."""
    return da.random.default_rng(seed).random((1, size, size, channels), dtype=np.float32,
                                              chunks=(1, chunk, chunk, channels))


def run(client, size, channels, chunk, out):
    """Compute the edge magnitude on `client`'s cluster into the .npy file `out`; the seconds it took."""
    image = synthetic_image(size, channels, chunk)
    edges = blur_and_edges(image, dwconv.dask.depthwise_conv2d)
    start = time.perf_counter()
    stored = client.compute(da.store(edges, NpyFile(out, edges.shape, edges.dtype), lock=False, compute=False))
    progress(stored)
    stored.result()
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8000, help="image height and width (default 8000)")
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=2000, help="chunk height and width (default 2000)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes, one thread each")
    parser.add_argument("--out", default="edges.npy", help="the .npy file written (default edges.npy)")
    parser.add_argument("--compare", action="store_true", help="also time one in-memory call")
    args = parser.parse_args(argv)

    megabytes = args.size * args.size * args.channels * 4 / 1e6
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        seconds = run(client, args.size, args.channels, args.chunk, args.out)
        print(f"\ndask, {args.workers} workers: {megabytes:.0f} MB in {seconds:.2f} s, "
              f"{megabytes / seconds:.0f} MB/s -> {args.out}")
        if args.compare:
            image = synthetic_image(args.size, args.channels, args.chunk).compute()
    if args.compare:
        start = time.perf_counter()
        blur_and_edges(image, dwconv.depthwise_conv2d)
        seconds = time.perf_counter() - start
        print(f"in memory, one call per filter: {megabytes:.0f} MB in {seconds:.2f} s, "
              f"{megabytes / seconds:.0f} MB/s")


if __name__ == "__main__":
    main()
