"""The padding modes and activations by name, in the order the kernels (CPU and GPU) number them."""

# How a padded coordinate outside the input finds its value: PyTorch's names, numpy.pad's modes.
PADDING_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}
ACTIVATIONS = ("relu", "relu6", "sigmoid", "tanh", "gelu", "silu", "hard_swish")
