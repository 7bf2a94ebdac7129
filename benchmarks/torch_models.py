"""Stock PyTorch against dwconv.torch.convert() on whole model pieces, float32 on the CPU: a ConvNeXt
stage (4 blocks, dim 96, 56x56, 7x7 depthwise), a MobileNetV2 stage (3 inverted residuals, 24
channels expanded 6x, 56x56, 3x3 depthwise) and a Mamba-style causal conv1d (1536 channels,
length 4096, kernel 4, padding 3 then sliced), forward and forward+backward; median of interleaved
rounds (a slow moment of the machine hits both).

    PYTHONPATH=. python benchmarks/torch_models.py [--threads 2] [--rounds 5] [--dwconv-threads N]

--dwconv-threads pins dwconv's own thread count (default: torch.get_num_threads(), as
dwconv.torch does), to see whether the two runtimes' thread pools get in each other's way.
"""
import argparse
import copy
import statistics
import time

import torch
from torch import nn

import dwconv.torch as dt


class InvertedResidual(nn.Module):
    def __init__(self, channels, expansion=6):
        super().__init__()
        hidden = channels * expansion
        self.layers = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
            nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
            nn.Conv2d(hidden, channels, 1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x):
        return x + self.layers(x)


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))

    def forward(self, x):
        y = self.dwconv(x).permute(0, 2, 3, 1)
        return x + (self.gamma * self.mlp(self.norm(y))).permute(0, 3, 1, 2)


class CausalConv1d(nn.Module):
    """Mamba's: (B, L, D) in, the convolution over L on the transposed view, the padding's tail cut."""

    def __init__(self, channels, kernel):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, padding=kernel - 1, groups=channels)

    def forward(self, x):
        length = x.shape[1]
        return self.conv(x.transpose(1, 2))[..., :length]


def cases():
    convnext = nn.Sequential(*[ConvNeXtBlock(96) for _ in range(4)])
    mobilenet = nn.Sequential(*[InvertedResidual(24) for _ in range(3)])
    mamba = CausalConv1d(1536, 4)
    for memory_format in (torch.contiguous_format, torch.channels_last):
        tag = "channels_last" if memory_format is torch.channels_last else "NCHW"
        yield f"ConvNeXt 4x(96, 7x7) 56x56 b16 {tag}", convnext, torch.randn(16, 96, 56, 56).to(
            memory_format=memory_format)
        for batch in (1, 16):
            yield f"MobileNetV2 3x(24*6, 3x3) 56x56 b{batch} {tag}", mobilenet, torch.randn(batch, 24, 56, 56).to(
                memory_format=memory_format)
    yield "Mamba conv1d (8, 4096, 1536) k4 causal", mamba, torch.randn(8, 4096, 1536)


def step(model, x, backward):
    if backward:
        model.zero_grad(set_to_none=True)
        x.grad = None
        model(x).sum().backward()
    else:
        with torch.no_grad():
            model(x)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dwconv-threads", type=int, default=None)
    parser.add_argument("--cases", default="", help="only the cases whose name contains this")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.dwconv_threads is not None:
        # dwconv.torch asks torch.get_num_threads() on every call; PyTorch's own kernels read the
        # C++ setting made above, which this Python-level replacement leaves alone
        torch.get_num_threads = lambda: args.dwconv_threads
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.rounds} interleaved rounds (ms)")
    print(f"{'case':48} {'pass':9} {'torch':>9} {'dwconv':>9} {'speedup':>8}")
    for name, model, x in cases():
        if args.cases not in name:
            continue
        model.eval()  # (batch norm in eval mode: the same arithmetic in both, no running-stat updates)
        converted = dt.convert(copy.deepcopy(model))
        for backward in (False, True):
            x.requires_grad_(backward)
            times = {"torch": [], "dwconv": []}
            for which, m in (("torch", model), ("dwconv", converted)):
                step(m, x, backward)  # warm-up
            for _ in range(args.rounds):
                for which, m in (("torch", model), ("dwconv", converted)):
                    start = time.perf_counter()
                    step(m, x, backward)
                    times[which].append(time.perf_counter() - start)
            t, d = (statistics.median(times[k]) * 1e3 for k in ("torch", "dwconv"))
            print(f"{name:48} {'fwd+bwd' if backward else 'fwd':9} {t:9.1f} {d:9.1f} {t / d:7.2f}x", flush=True)


if __name__ == "__main__":
    main()
