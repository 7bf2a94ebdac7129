"""``ivy.depthwise_conv2d`` on NumPy arrays, nestable like ivy's ``Container``.

``from dwconv.compat import ivy`` keeps ``ivy.depthwise_conv2d(x, filters, strides, padding)``
working. Any argument may be a dict (an ``ivy.Container`` is one) of arrays or of further dicts;
inside a dict, a list or tuple of arrays is mapped over as well. The call is made for every leaf,
with the other arguments' leaves at the same place (or their plain value, shared by all), and the
results come back in the same structure. ``out`` is then a structure of arrays like the result's.
"""
from collections.abc import Mapping

import dwconv

__all__ = ["depthwise_conv2d"]

# The arguments whose lists, inside a nest, are nests themselves: for the others (strides,
# padding, dilations) a list is a value.
_ARRAYS = ("x", "filters", "out")


def depthwise_conv2d(x, filters, strides, padding, /, *, data_format="NHWC", dilations=1, out=None):
    """Depthwise 2-D convolution of ``x`` (``[batch, h, w, d_in]`` or ``[batch, d_in, h, w]``) with
    ``filters`` ``[fh, fw, d_in]`` (one filter per channel); ``padding`` is "SAME", "VALID" or
    ``[(low, high), (low, high)]``. Returns ``out`` when given."""
    args = {"x": x, "filters": filters, "strides": strides, "padding": padding, "data_format": data_format,
            "dilations": dilations, "out": out}
    return _map(args, nested=False)


def _is_nest(name, value, nested):
    return isinstance(value, Mapping) or (nested and name in _ARRAYS and isinstance(value, (list, tuple)))


def _map(args, nested):
    """Call dwconv on the leaves of the nests among `args`, returning their structure."""
    driver = next((name for name, value in args.items() if _is_nest(name, value, nested)), None)
    if driver is None:
        return dwconv.depthwise_conv2d(args["x"], args["filters"], args["strides"], args["padding"],
                                       data_format=args["data_format"], dilations=args["dilations"],
                                       out=args["out"])
    node = args[driver]
    keys = list(node) if isinstance(node, Mapping) else range(len(node))
    for name, value in args.items():
        if _is_nest(name, value, nested):
            if isinstance(value, Mapping) != isinstance(node, Mapping) or list(
                    value if isinstance(value, Mapping) else range(len(value))) != list(keys):
                raise ValueError(f"`{name}` and `{driver}` are nested differently: {_outline(value)} "
                                 f"against {_outline(node)}")
        elif name == "out" and value is not None:
            raise ValueError(f"`out` must be nested like `{driver}` ({_outline(node)}), got one "
                             f"{type(value).__name__}")
    results = [_map({name: value[key] if _is_nest(name, value, nested) else value
                     for name, value in args.items()}, nested=True) for key in keys]
    if isinstance(node, Mapping):
        return dict(zip(keys, results))
    return type(node)(results)


def _outline(nest):
    """The keys of a dict, or the length of a list, for error messages."""
    if isinstance(nest, Mapping):
        return f"keys {list(nest)}"
    return f"a {type(nest).__name__} of {len(nest)}"
