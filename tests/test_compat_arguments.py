"""``dwconv.compat``'s keyword arguments: every entry point refuses a keyword it does not know, as
Python does (a TypeError naming it), and the keywords kept from the original framework that dwconv
has no use for refuse the values it cannot honour."""
import inspect

import numpy as np
import pytest

from dwconv.compat import chainer as F
from dwconv.compat import ivy, keras
from dwconv.compat import megengine as M
from dwconv.compat import tensorflow as tf
from reference import conv2d_forward

NHWC = np.arange(50, dtype=np.float32).reshape(1, 5, 5, 2)
NCHW = NHWC.transpose(0, 3, 1, 2)
TF_FILTER = np.ones((3, 3, 2, 1), np.float32)
OUT_BACKPROP = np.ones((1, 3, 3, 2), np.float32)


def called_keras_layer():
    layer = keras.layers.DepthwiseConv2D(3)
    layer(NHWC)
    return layer


ENTRY_POINTS = [
    pytest.param(lambda **kw: tf.nn.depthwise_conv2d(NHWC, TF_FILTER, 1, "VALID", **kw), "dilation",
                 id="tf.nn.depthwise_conv2d"),
    pytest.param(lambda **kw: tf.nn.depthwise_conv2d_backprop_input(
        NHWC.shape, TF_FILTER, OUT_BACKPROP, 1, "VALID", **kw), "data_fromat", id="tf.nn.backprop_input"),
    pytest.param(lambda **kw: tf.nn.depthwise_conv2d_backprop_filter(
        NHWC, TF_FILTER.shape, OUT_BACKPROP, 1, "VALID", **kw), "stride", id="tf.nn.backprop_filter"),
    pytest.param(lambda **kw: F.depthwise_convolution_2d(NCHW, np.ones((1, 2, 3, 3)), **kw), "padding",
                 id="chainer.depthwise_convolution_2d"),
    pytest.param(lambda **kw: ivy.depthwise_conv2d(NHWC, np.ones((3, 3, 2)), 1, "VALID", **kw), "dilation",
                 id="ivy.depthwise_conv2d"),
    pytest.param(lambda **kw: M.Conv2d(2, 2, 3, groups=2, **kw), "paddng", id="megengine.Conv2d"),
    pytest.param(lambda **kw: M.Conv2d(2, 2, 3, groups=2)(NCHW, **kw), "training", id="megengine.Conv2d()"),
    pytest.param(lambda **kw: M.Conv2d(2, 2, 3, groups=2).forward(NCHW, **kw), "training",
                 id="megengine.Conv2d.forward"),
    pytest.param(lambda **kw: keras.layers.DepthwiseConv2D(3, **kw), "paddng", id="keras.DepthwiseConv2D"),
    pytest.param(lambda **kw: keras.layers.DepthwiseConv2D.from_config({"kernel_size": 3, **kw}), "paddng",
                 id="keras.DepthwiseConv2D.from_config"),
    pytest.param(lambda **kw: keras.layers.DepthwiseConv2D(3)(NHWC, **kw), "trainng", id="keras.DepthwiseConv2D()"),
    pytest.param(lambda **kw: keras.layers.DepthwiseConv2D(3).build(NHWC.shape, **kw), "shape",
                 id="keras.DepthwiseConv2D.build"),
    pytest.param(lambda **kw: called_keras_layer().backward(OUT_BACKPROP, **kw), "gradient",
                 id="keras.DepthwiseConv2D.backward"),
    pytest.param(lambda **kw: keras.layers.DepthwiseConv1D(3, **kw), "paddng", id="keras.DepthwiseConv1D"),
    pytest.param(lambda **kw: keras.layers.DepthwiseConv1D.from_config({"kernel_size": 3, **kw}), "paddng",
                 id="keras.DepthwiseConv1D.from_config"),
    pytest.param(lambda **kw: keras.layers.DepthwiseConv1D(3)(NHWC[0], **kw), "trainng", id="keras.DepthwiseConv1D()"),
    pytest.param(lambda **kw: keras.initializers.GlorotUniform()((3, 3), **kw), "dtyp", id="keras.Initializer()"),
    pytest.param(lambda **kw: keras.regularizers.L2()(TF_FILTER, **kw), "weight", id="keras.Regularizer()"),
    pytest.param(lambda **kw: keras.regularizers.L2().gradient(TF_FILTER, **kw), "weight",
                 id="keras.Regularizer.gradient"),
    pytest.param(lambda **kw: keras.constraints.MaxNorm()(TF_FILTER, **kw), "axis", id="keras.Constraint()"),
    pytest.param(lambda **kw: keras.initializers.RandomNormal.from_config({"mean": 0.0, **kw}), "stdev",
                 id="keras.initializers.RandomNormal.from_config"),
]
# every class and function of keras.initializers, .regularizers and .constraints, but the base classes
ENTRY_POINTS += [
    pytest.param(entry_point, "sed", id=f"keras.{kind}.{name}")
    for kind in ("initializers", "regularizers", "constraints")
    for name, entry_point in vars(getattr(keras, kind)).items()
    if name not in ("Initializer", "Regularizer", "Constraint")
]


@pytest.mark.parametrize("entry_point, keyword", ENTRY_POINTS)
def test_an_unknown_keyword_is_a_type_error_naming_it(entry_point, keyword):
    # Python's message; a class without parameters (Zeros, NonNeg) says it takes none
    takes_none = isinstance(entry_point, type) and not inspect.signature(entry_point).parameters
    with pytest.raises(TypeError, match=f"{entry_point.__name__}\\(\\) takes no arguments" if takes_none
                       else f"unexpected keyword argument '{keyword}'"):
        entry_point(**{keyword: 1})


def test_the_kept_keywords_change_no_result():
    want = conv2d_forward(NHWC, TF_FILTER, (1, 1), ((0, 0), (0, 0)), "NHWC", (1, 1))
    np.testing.assert_allclose(tf.nn.depthwise_conv2d(NHWC, TF_FILTER, 1, "VALID", name="dw"), want, rtol=1e-6)
    conv = M.Conv2d(2, 2, 3, groups=2, name="dw")
    conv.weight = np.ones_like(conv.weight)
    assert conv.name == "dw"
    np.testing.assert_allclose(conv(NCHW), want.transpose(0, 3, 1, 2), rtol=1e-6)
    layer = keras.layers.DepthwiseConv2D(3, name="dw", trainable=False, dtype="float32", use_bias=False)
    layer(NHWC)
    layer.set_weights([TF_FILTER])
    assert (layer.name, layer.trainable) == ("dw", False)
    np.testing.assert_allclose(layer(NHWC), want, rtol=1e-6)


@pytest.mark.parametrize("make, match", [
    (lambda: M.Conv2d(2, 2, 3, groups=2, name=3), "`name` must be None or a non-empty str, got 3"),
    (lambda: M.Conv2d(2, 2, 3, groups=2, name=" "), "`name` must be None or a non-empty str, got ' '"),
    (lambda: keras.layers.DepthwiseConv2D(3, name=3), "`name` must be None or a str, got 3"),
    (lambda: keras.layers.DepthwiseConv2D(3, trainable="no"), "`trainable` must be a bool, got 'no'"),
], ids=["megengine name=3", "megengine name=' '", "keras name=3", "keras trainable='no'"])
def test_a_kept_keyword_refuses_a_value_it_cannot_honour(make, match):
    with pytest.raises(ValueError, match=match):
        make()
