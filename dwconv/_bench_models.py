"""The PyTorch model pieces that ``python -m dwconv bench``'s models section times, stock and after
``dwconv.torch.convert()``: imported by the bench only when that section runs, since it needs torch."""
import torch
from torch import nn


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expansion, depthwise kernel x kernel, 1x1 projection, residual."""

    def __init__(self, channels, expansion, kernel):
        super().__init__()
        hidden = channels * expansion
        self.layers = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
            nn.Conv2d(hidden, hidden, kernel, 1, kernel // 2, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, channels, 1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x):
        return x + self.layers(x)


class ConvNeXtBlock(nn.Module):
    """Depthwise kernel x kernel, LayerNorm over channels, MLP of 4x, layer scale, residual."""

    def __init__(self, dim, kernel):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        # ConvNeXt initializes the layer scale at 1e-6, which leaves the block's output all residual: the
        # bench's check of the outputs would not see the branch.  Trained models hold values near 1.
        self.gamma = nn.Parameter(torch.ones(dim))

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


def convnext_stack(blocks, dim, kernel):
    return nn.Sequential(*[ConvNeXtBlock(dim, kernel) for _ in range(blocks)])


def mobilenetv2_stack(blocks, channels, expansion, kernel):
    return nn.Sequential(*[InvertedResidual(channels, expansion, kernel) for _ in range(blocks)])


def causal_conv1d(channels, kernel):
    return CausalConv1d(channels, kernel)
