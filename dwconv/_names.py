"""The padding modes and activations: the one list of their names, the codes the kernels (CPU and
GPU) number them by, and what the Python code needs to know of each.

A new padding mode needs, besides its entry here, its arithmetic in `padded_source` of
dwconv/_kernels.pyx and `source` of dwconv/_cuda_kernels.cu, its constant in _kernels.pyx's enum and
MODE_CODES (checked against this module on import), and its own definition in tests/reference.py;
an activation likewise in `activate` of both kernels, _kernels.pyx's enum and ACTIVATION_CODES, the
reference, and (Keras's name for it) tests/test_compat.py. The CUDA source's enums are generated
from here, and the tests take their lists from here.
"""

import math
from typing import Callable, NamedTuple

import numpy as np

# How a padded coordinate outside the input finds its value: PyTorch's names, numpy.pad's modes.
# Every mode but numpy.pad's "constant" repeats input values, so it cannot pad an empty axis.
PADDING_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap",
                 "symmetric": "symmetric"}


class Activation(NamedTuple):
    # d act(z) / dz from the pre-activation z and the output y = act(z), as float arrays; z is None
    # where `of_output` (the derivative reads y alone, so z need not be recomputed)
    derivative: Callable
    of_output: bool
    # the largest |derivative|, which bounds how much the activation can grow a rounding error
    slope: float


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _silu_derivative(z, y):
    sigmoid = _sigmoid(z)
    return sigmoid * (1 + z * (1 - sigmoid))


def _gelu_derivative(z, y):
    # d/dz z*Phi(z) = Phi(z) + z*phi(z), with Phi(z) = y / z read off the fused output; near 0,
    # where that quotient loses its digits, Phi's tangent 1/2 + z*phi(0) is exact to O(z**3).
    density = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    small = np.abs(z) < 1e-3
    cdf = np.where(small, 0.5 + z / math.sqrt(2 * math.pi), y / np.where(small, 1, z))
    return cdf + z * density


def _hard_swish_derivative(z, y):
    return np.where(z < -3, 0.0, np.where(z > 3, 1.0, (2 * z + 3) / 6))


# Codes: 0 is no activation, then this order.
ACTIVATIONS = {
    "relu": Activation(lambda z, y: y > 0, True, 1),
    "relu6": Activation(lambda z, y: (y > 0) & (y < 6), True, 1),
    "sigmoid": Activation(lambda z, y: y * (1 - y), True, 0.25),
    "tanh": Activation(lambda z, y: 1 - y * y, True, 1),
    "gelu": Activation(_gelu_derivative, False, 1.13),
    "silu": Activation(_silu_derivative, False, 1.1),
    "hard_swish": Activation(_hard_swish_derivative, False, 1.5),
}

MODE_CODES = {name: code for code, name in enumerate(PADDING_MODES)}
ACTIVATION_CODES = {name: code for code, name in enumerate((None, *ACTIVATIONS))}


def c_enums():
    """C declarations of the codes, `enum Mode` and `enum Activation`, each constant its name in
    capitals (IDENTITY: no activation)."""
    modes = ", ".join(f"{name.upper()} = {code}" for name, code in MODE_CODES.items())
    activations = ", ".join(f"{(name or 'identity').upper()} = {code}" for name, code in ACTIVATION_CODES.items())
    return f"enum Mode {{ {modes} }};\nenum Activation {{ {activations} }};\n"
