"""``dwconv.compat``: the seed APIs' examples, and each drop-in against the NumPy reference.

The seed documents' examples (their data defined once, in ``tests/seeds.py``) run here, once each, with
only the import changed, except where they build inputs with
the original framework's own array functions (``ivy.random_normal``, ``mge.tensor``, ``.numpy()``):
there the NumPy equivalent stands in, and the calls to the compat function are verbatim. Where the
original framework is installed (TensorFlow, Keras, PyTorch), it is compared with as well.
"""
import contextlib
import functools
import io
import math
import sys

import numpy as np
import pytest

import dwconv
from dwconv._names import ACTIVATIONS
from dwconv.compat import chainer as F
from dwconv.compat import ivy, keras
from dwconv.compat import megengine as M
from dwconv.compat import tensorflow as tf
from reference import (activate, conv2d_backprop_filter, conv2d_backprop_input, conv2d_forward,
                       normalize_pair, resolve_padding)
from checks import assert_close, reference_forward
from seeds import (IVY_A, IVY_B, IVY_LAPLACE, IVY_MEAN, IVY_SEED_EXAMPLES, IVY_X, TF_EXPLICIT_Y, TF_KERNEL, TF_VALID_Y,
                   TF_X)


def printed(fn):
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        fn()
    return buffer.getvalue().strip()


def real(name):
    """The original framework, or a skip."""
    return pytest.importorskip(name)


# ---------------------------------------------------------------------------
# TensorFlow

def test_tensorflow_seed_examples():
    x, kernel = TF_X, TF_KERNEL
    valid = tf.nn.depthwise_conv2d(x, kernel, strides=[1, 1, 1, 1],
                                   padding='VALID')
    explicit = tf.nn.depthwise_conv2d(x, kernel, strides=[1, 1, 1, 1],
                                      padding=[[0, 0], [1, 0], [1, 0], [0, 0]])
    assert valid.dtype == explicit.dtype == np.float32
    np.testing.assert_array_equal(valid, TF_VALID_Y)
    np.testing.assert_array_equal(explicit, TF_EXPLICIT_Y)
    # small integers: the reference's sums are exact
    np.testing.assert_array_equal(valid, conv2d_forward(x, kernel, (1, 1), ((0, 0), (0, 0)), "NHWC", (1, 1)))
    np.testing.assert_array_equal(explicit, conv2d_forward(x, kernel, (1, 1), ((1, 0), (1, 0)), "NHWC", (1, 1)))


TF_CASES = [  # (data_format, strides, padding, dilations)
    ("NHWC", [1, 2, 2, 1], "SAME", None),
    ("NHWC", [1, 1, 1, 1], "VALID", [2, 1]),
    ("NCHW", [1, 1, 2, 1], [[0, 0], [0, 0], [1, 2], [0, 1]], None),
    (None, [1, 1, 1, 1], "SAME", [2, 2]),
]


def _tf_case(rng, data_format):
    shape = (2, 3, 8, 7) if data_format == "NCHW" else (2, 8, 7, 3)
    return rng.standard_normal(shape).astype(np.float32), rng.standard_normal((3, 2, 3, 2)).astype(np.float32)


@pytest.mark.parametrize("data_format, strides, padding, dilations", TF_CASES)
def test_tensorflow_against_reference(data_format, strides, padding, dilations):
    rng = np.random.default_rng(1)
    x, w = _tf_case(rng, data_format)
    fmt = data_format or "NHWC"
    hw = x.shape[1:3] if fmt == "NHWC" else x.shape[2:]
    sp, dp = normalize_pair(strides, fmt), normalize_pair(dilations or 1, fmt)
    pad = resolve_padding(padding, hw, w.shape[:2], sp, dp, fmt)
    y = tf.depthwise_conv2d(x, w, strides, padding, data_format=data_format, dilations=dilations, name="op")
    ref = conv2d_forward(x, w, sp, pad, fmt, dp)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(y, dwconv.depthwise_conv2d(x, w, strides, padding, data_format=fmt,
                                                             dilations=dilations or 1))
    g = rng.standard_normal(y.shape).astype(np.float32)
    gx = tf.nn.depthwise_conv2d_backprop_input(np.array(x.shape), w, g, strides, padding, data_format, dilations)
    gw = tf.nn.depthwise_conv2d_backprop_filter(x, w.shape, g, strides, padding, data_format, dilations)
    np.testing.assert_allclose(gx, conv2d_backprop_input(x.shape, w, g, sp, pad, fmt, dp), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gw, conv2d_backprop_filter(x, w.shape, g, sp, pad, fmt, dp), rtol=1e-4, atol=1e-4)


def test_tensorflow_against_tensorflow():
    real_tf = real("tensorflow")
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 9, 8, 3)).astype(np.float32), rng.standard_normal((3, 3, 3, 2)).astype(np.float32)
    for strides, padding, dilations in [([1, 2, 2, 1], "SAME", None), ([1, 1, 1, 1], "VALID", [2, 1]),
                                        ([1, 1, 1, 1], [[0, 0], [1, 2], [0, 1], [0, 0]], None)]:
        want = real_tf.nn.depthwise_conv2d(x, w, strides, padding, dilations=dilations).numpy()
        np.testing.assert_allclose(tf.nn.depthwise_conv2d(x, w, strides, padding, dilations=dilations), want,
                                   rtol=1e-5, atol=1e-5)
        g = rng.standard_normal(want.shape).astype(np.float32)
        if dilations is None:      # TensorFlow's backprop ops take no dilations on CPU
            args = (strides, padding)
            np.testing.assert_allclose(
                tf.nn.depthwise_conv2d_backprop_input(x.shape, w, g, *args),
                real_tf.nn.depthwise_conv2d_backprop_input(x.shape, w, g, *args).numpy(), rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(
                tf.nn.depthwise_conv2d_backprop_filter(x, w.shape, g, *args),
                real_tf.nn.depthwise_conv2d_backprop_filter(x, w.shape, g, *args).numpy(), rtol=1e-4, atol=1e-4)


def test_tensorflow_errors_name_the_parameter():
    with pytest.raises(ValueError, match="`strides`"):
        tf.nn.depthwise_conv2d(TF_X, TF_KERNEL, [2, 1, 1, 1], "VALID")
    with pytest.raises(ValueError, match="`padding`"):
        tf.nn.depthwise_conv2d(TF_X, TF_KERNEL, 1, "FULL")
    with pytest.raises(ValueError, match="`data_format`"):
        tf.nn.depthwise_conv2d(TF_X, TF_KERNEL, 1, "VALID", data_format="NWHC")
    with pytest.raises(ValueError, match="`input_shape`"):
        tf.nn.depthwise_conv2d_backprop_input([1, 3, 2], TF_KERNEL, np.zeros((1, 2, 2, 2)), 1, "VALID")


# ---------------------------------------------------------------------------
# Keras

def test_keras_seed_example():
    x = np.random.rand(4, 10, 10, 12)
    y = keras.layers.DepthwiseConv2D(3, 3, activation='relu')(x)
    # The document prints (4, 8, 8, 36), but Keras 3 itself gives (4, 3, 3, 12): the second
    # positional argument is `strides` (the example meant depth_multiplier=3).
    assert printed(lambda: print(y.shape)) == "(4, 3, 3, 12)"
    assert keras.layers.DepthwiseConv2D(3, depth_multiplier=3, activation='relu')(x).shape == (4, 8, 8, 36)
    # and its numbers, in both layouts, against the reference
    for data_format, fmt in (("channels_last", "NHWC"), ("channels_first", "NCHW")):
        layer = keras.layers.DepthwiseConv2D(3, depth_multiplier=3, activation='relu', data_format=data_format,
                                             bias_initializer="random_normal")
        xf = x if fmt == "NHWC" else x.transpose(0, 3, 1, 2)
        y = layer(xf)
        assert y.shape == ((4, 8, 8, 36) if fmt == "NHWC" else (4, 36, 8, 8))
        ref, scale = reference_forward(xf, layer.kernel, (1, 1), ((0, 0), (0, 0)), fmt, (1, 1), bias=layer.bias,
                                       activation="relu")
        assert_close(y, ref, scale, y.dtype, 9)


def test_keras_seed_example_in_keras():
    real_keras = real("keras")
    x = np.random.rand(4, 10, 10, 12)
    assert tuple(real_keras.layers.DepthwiseConv2D(3, 3, activation='relu')(x).shape) == (4, 3, 3, 12)


def _keras_reference(layer, x, activation):
    kernel, *bias = layer.get_weights()
    fmt = "NHWC" if layer.data_format == "channels_last" else "NCHW"
    hw = x.shape[1:3] if fmt == "NHWC" else x.shape[2:]
    pad = resolve_padding(layer.padding.upper(), hw, kernel.shape[:2], layer.strides, layer.dilation_rate)
    args = (layer.strides, pad, fmt, layer.dilation_rate)
    z = conv2d_forward(x, kernel, *args, bias=bias[0] if bias else None)
    return z, activate(z, activation), args


KERAS_ACTIVATIONS = [(None, None), ("linear", None), ("relu", "relu"), ("relu6", "relu6"),
                     ("sigmoid", "sigmoid"), ("tanh", "tanh"), ("gelu", "gelu"), ("silu", "silu"),
                     ("swish", "silu"), ("hard_silu", "hard_swish"), ("hard_swish", "hard_swish")]


@pytest.mark.parametrize("keras_name, name", KERAS_ACTIVATIONS)
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_keras_forward_and_backward_against_reference(keras_name, name, data_format):
    """Forward, input gradient and weight gradients, through each activation: the activation's
    derivative is taken by central differences of the reference's float64 activation."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 7, 6, 3) if data_format == "channels_last" else (2, 3, 7, 6))
    layer = keras.layers.DepthwiseConv2D((3, 2), (2, 1), "same", 2, data_format, (1, 1), keras_name,
                                         bias_initializer=keras.initializers.RandomNormal(stddev=1.0, seed=4))
    y = layer(x)
    assert y.dtype == np.float32      # the float32 policy, as Keras
    z, want, args = _keras_reference(layer, x, name)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    grad = rng.standard_normal(y.shape)
    gx = layer.backward(grad)
    h = 1e-6
    derivative = 1 if name is None else (activate(z + h, name) - activate(z - h, name)) / (2 * h)
    dz = grad * derivative
    np.testing.assert_allclose(gx, conv2d_backprop_input(x.shape, layer.kernel, dz, *args), rtol=1e-4, atol=1e-4)
    kernel_grad, bias_grad = layer.gradients
    assert kernel_grad.shape == layer.kernel.shape and bias_grad.shape == layer.bias.shape
    np.testing.assert_allclose(kernel_grad, conv2d_backprop_filter(x, layer.kernel.shape, dz, *args),
                               rtol=1e-4, atol=1e-4)
    axes = (0, 1, 2) if data_format == "channels_last" else (0, 2, 3)
    np.testing.assert_allclose(bias_grad, dz.sum(axis=axes), rtol=1e-4, atol=1e-4)


def test_keras_activation_names_cover_the_fused_ones():
    assert {name for _, name in KERAS_ACTIVATIONS if name} == set(ACTIVATIONS)


def test_keras_gelu_derivative_near_zero():
    """gelu's derivative where the pre-activation is at or near 0 (where y / z cannot be used)."""
    layer = keras.layers.DepthwiseConv2D(1, activation="gelu", use_bias=False, dtype="float64")
    x = np.array([0.0, 1e-9, -1e-5, 2e-3, -4.0, 9.0]).reshape(1, 1, 6, 1)
    layer(x)
    layer.set_weights([np.ones((1, 1, 1, 1))])
    layer(x)
    gx = layer.backward(np.ones((1, 1, 6, 1)))
    h = 1e-6
    want = (activate(x + h, "gelu") - activate(x - h, "gelu")) / (2 * h)
    np.testing.assert_allclose(gx, want, rtol=1e-7, atol=1e-9)


def test_keras_weights_in_keras_layout_and_config_round_trip_with_keras():
    real_keras = real("keras")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 9, 9, 4)).astype(np.float32)
    theirs = real_keras.layers.DepthwiseConv2D(3, 2, "same", 2, dilation_rate=1, activation="swish",
                                               depthwise_initializer=real_keras.initializers.HeNormal(seed=1),
                                               bias_initializer=real_keras.initializers.Constant(0.5),
                                               depthwise_regularizer=real_keras.regularizers.L1L2(0.01, 0.02),
                                               bias_constraint="non_neg")   # holds already: Keras applies
    # constraints after optimizer steps only, dwconv also after set_weights
    want = np.asarray(theirs(x))
    ours = keras.layers.DepthwiseConv2D.from_config(theirs.get_config())
    ours(x)
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(ours(x), want, rtol=1e-5, atol=1e-5)
    assert ours.losses[0] == pytest.approx(float(theirs.losses[0]), rel=1e-5)
    # and our config builds the same layer in Keras
    again = real_keras.layers.DepthwiseConv2D.from_config(ours.get_config())
    again(x)
    again.set_weights(ours.get_weights())
    np.testing.assert_allclose(np.asarray(again(x)), want, rtol=1e-5, atol=1e-5)
    assert again.get_config() == {**theirs.get_config(), "name": again.name}


def test_keras_config_round_trip():
    layer = keras.layers.DepthwiseConv2D(
        (3, 5), strides=(1, 2), padding="SAME", depth_multiplier=2, data_format="channels_first",
        dilation_rate=1, activation="hard_swish", use_bias=True,
        depthwise_initializer=keras.initializers.VarianceScaling(2.0, "fan_out", "uniform", seed=3),
        bias_initializer=keras.initializers.Constant(0.5), depthwise_regularizer="l1",
        bias_regularizer=keras.regularizers.l1_l2(l1=0.1, l2=0.2), activity_regularizer="l2",
        depthwise_constraint=keras.constraints.MinMaxNorm(0.1, 0.9, 0.5, axis=[0, 1]),
        bias_constraint="max_norm", name="dw", dtype="float64", trainable=False)
    config = layer.get_config()
    assert config["padding"] == "same" and config["activation"] == "hard_silu" and config["kernel_size"] == (3, 5)
    clone = keras.layers.DepthwiseConv2D.from_config(config)
    assert clone.get_config() == config
    x = np.random.default_rng(6).standard_normal((2, 3, 8, 8))
    np.testing.assert_array_equal(clone(x), layer(x))     # seeded initializers: the same weights
    assert layer(x).dtype == np.float64


def scaled_tanh(x):
    """A custom activation function (no Keras activation has its name), importable from this module."""
    return 1.7159 * np.tanh(2 * x / 3)


# How Keras 3 saves a custom activation function: by its name alone.
KERAS_SCALED_TANH_CONFIG = {"module": "builtins", "class_name": "function", "config": "scaled_tanh",
                         "registered_name": "function"}


def test_keras_config_round_trip_with_a_custom_activation_function():
    layer = keras.layers.DepthwiseConv2D(3, activation=scaled_tanh, bias_initializer="random_normal")
    config = layer.get_config()
    assert config["activation"] == {**KERAS_SCALED_TANH_CONFIG, "module": __name__}
    clone = keras.layers.DepthwiseConv2D.from_config(config)
    assert clone.activation is scaled_tanh and clone.get_config() == config
    x = np.random.default_rng(7).standard_normal((2, 6, 6, 3))
    layer(x)
    clone(x)
    clone.set_weights(layer.get_weights())
    z, _, _ = _keras_reference(clone, x, None)
    np.testing.assert_allclose(clone(x), scaled_tanh(z), rtol=1e-5, atol=1e-6)


def test_keras_config_naming_a_custom_activation_loads_with_custom_objects():
    config = {"kernel_size": 3, "activation": KERAS_SCALED_TANH_CONFIG}
    with pytest.raises(ValueError, match=r"`activation` \{.*'scaled_tanh'.*\} names no function.*"
                                         r"custom_objects=\{'scaled_tanh': function\}"):
        keras.layers.DepthwiseConv2D.from_config(config)
    assert keras.layers.DepthwiseConv2D.from_config(config, custom_objects={"scaled_tanh": scaled_tanh}).activation is scaled_tanh


def test_keras_config_never_imports_the_module_it_names():
    """A config may come from anywhere: the module it names is looked in only if already imported
    (`this` prints on import)."""
    if "this" in sys.modules:
        pytest.skip("`this` is imported already")
    config = {"kernel_size": 3, "activation": {**KERAS_SCALED_TANH_CONFIG, "module": "this", "config": "s"}}
    with pytest.raises(ValueError, match=r"names no function in `custom_objects` or in an imported module"):
        keras.layers.DepthwiseConv2D.from_config(config)
    assert "this" not in sys.modules


def test_keras_custom_activation_configs_load_in_keras_and_from_keras():
    real_keras = real("keras")
    theirs = real_keras.layers.DepthwiseConv2D(3, activation=scaled_tanh, bias_initializer="random_normal")
    assert theirs.get_config()["activation"] == KERAS_SCALED_TANH_CONFIG
    ours = keras.layers.DepthwiseConv2D.from_config(theirs.get_config(), custom_objects={"scaled_tanh": scaled_tanh})
    with real_keras.saving.custom_object_scope({"scaled_tanh": scaled_tanh}):
        again = real_keras.layers.DepthwiseConv2D.from_config(ours.get_config())
    x = np.random.default_rng(8).standard_normal((2, 6, 6, 3)).astype(np.float32)
    for layer in (theirs, ours, again):
        layer(x)
        layer.set_weights(theirs.get_weights())
    want = scaled_tanh(_keras_reference(ours, x, None)[0])
    np.testing.assert_allclose(ours(x), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(again(x)), want, rtol=1e-5, atol=1e-6)


def test_keras_config_refuses_an_activation_it_cannot_restore():
    def local_scaled_tanh(x):
        return scaled_tanh(x)

    for activation in (lambda x: scaled_tanh(x), local_scaled_tanh, functools.partial(scaled_tanh)):
        layer = keras.layers.DepthwiseConv2D(3, activation=activation)
        with pytest.raises(ValueError, match="`activation` .* cannot be saved in a config.*finds a function by its "
                                             "module.*top level of a module, or use a named activation"):
            layer.get_config()


def test_keras_positional_arguments_as_keras_3():
    layer = keras.layers.DepthwiseConv2D(3, 2, "same", 3, "channels_last", 1, "relu", False)
    assert (layer.kernel_size, layer.strides, layer.padding, layer.depth_multiplier) == ((3, 3), (2, 2), "same", 3)
    assert layer.data_format == "channels_last" and layer.activation == "relu" and layer.use_bias is False
    assert layer(np.ones((1, 8, 8, 2))).shape == (1, 4, 4, 6)
    assert layer.get_weights()[0].shape == (3, 3, 2, 3) and len(layer.get_weights()) == 1


@pytest.mark.parametrize("name, fan, limit_or_std", [
    ("glorot_uniform", "avg", lambda n: math.sqrt(3 / n)), ("he_uniform", "in", lambda n: math.sqrt(6 / n)),
    ("lecun_uniform", "in", lambda n: math.sqrt(3 / n)),
    ("glorot_normal", "avg", lambda n: math.sqrt(1 / n)), ("he_normal", "in", lambda n: math.sqrt(2 / n)),
    ("lecun_normal", "in", lambda n: math.sqrt(1 / n)),
])
def test_keras_variance_scaling_initializers(name, fan, limit_or_std):
    """Keras's fans for a depthwise kernel (kh, kw, C, M): kh*kw*C in, kh*kw*M out."""
    shape = (5, 5, 64, 8)
    fan_in, fan_out = 5 * 5 * 64, 5 * 5 * 8
    n = fan_in if fan == "in" else (fan_in + fan_out) / 2
    w = keras.initializers.get(name)(shape)
    assert w.shape == shape and w.dtype == np.float32
    if name.endswith("uniform"):
        limit = limit_or_std(n)
        assert np.abs(w).max() <= limit and np.abs(w).max() > 0.99 * limit
        assert np.std(w) == pytest.approx(limit / math.sqrt(3), rel=0.03)
    else:           # truncated at two standard deviations, rescaled to the wanted standard deviation
        std = limit_or_std(n)
        assert np.std(w) == pytest.approx(std, rel=0.03)
        assert np.abs(w).max() <= 2 * std / 0.87962566103423978


def test_keras_plain_initializers_and_seeds():
    shape = (3, 3, 200, 4)
    assert not keras.initializers.get("zeros")(shape).any()
    assert (keras.initializers.get("ones")(shape) == 1).all()
    assert (keras.initializers.Constant(0.25)(shape, "float64") == 0.25).all()
    normal = keras.initializers.get("random_normal")(shape)
    assert np.std(normal) == pytest.approx(0.05, rel=0.05)
    uniform = keras.initializers.get("random_uniform")(shape)
    assert np.abs(uniform).max() <= 0.05 and np.std(uniform) == pytest.approx(0.05 / math.sqrt(3), rel=0.05)
    truncated = keras.initializers.get("truncated_normal")(shape)
    assert np.abs(truncated).max() <= 0.1
    for make in (keras.initializers.GlorotUniform, keras.initializers.HeNormal, keras.initializers.RandomNormal):
        np.testing.assert_array_equal(make(seed=7)(shape), make(seed=7)(shape))
        assert not np.array_equal(make(seed=7)(shape), make(seed=8)(shape))
        assert not np.array_equal(make()(shape), make()(shape))
    layer = keras.layers.DepthwiseConv2D(3, depthwise_initializer={"class_name": "HeUniform", "config": {"seed": 2}})
    layer.build((1, 5, 5, 200))
    np.testing.assert_array_equal(layer.kernel, keras.initializers.HeUniform(seed=2)((3, 3, 200, 1)))


def test_keras_regularizers_in_losses_and_gradients():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 6, 6, 2))
    layer = keras.layers.DepthwiseConv2D(3, depthwise_regularizer="l2", bias_regularizer=keras.regularizers.L1(0.5),
                                         activity_regularizer=keras.regularizers.L1L2(0.01, 0.02),
                                         bias_initializer="random_normal", dtype="float64")
    y = layer(x)
    kernel, bias = layer.get_weights()
    activity = (0.01 * np.abs(y).sum() + 0.02 * np.square(y).sum()) / 3
    np.testing.assert_allclose(layer.losses, [activity, 0.01 * np.square(kernel).sum(), 0.5 * np.abs(bias).sum()],
                               rtol=1e-12)
    # backward differentiates loss + sum(losses): with loss = sum(y * g)
    g = rng.standard_normal(y.shape)
    gx = layer.backward(g)
    dy = g + (0.01 * np.sign(y) + 0.04 * y) / 3
    args = ((1, 1), ((0, 0), (0, 0)), "NHWC", (1, 1))
    np.testing.assert_allclose(gx, conv2d_backprop_input(x.shape, kernel, dy, *args), rtol=1e-10)
    np.testing.assert_allclose(layer.gradients[0],
                               conv2d_backprop_filter(x, kernel.shape, dy, *args) + 0.02 * kernel, rtol=1e-10)
    np.testing.assert_allclose(layer.gradients[1], dy.sum(axis=(0, 1, 2)) + 0.5 * np.sign(bias), rtol=1e-10)


def test_keras_l1_l2_by_name_is_keras_2s():
    assert keras.regularizers.get("l1_l2").get_config() == {"l1": 0.01, "l2": 0.01}
    assert keras.regularizers.l1_l2().get_config() == {"l1": 0.0, "l2": 0.0}     # Keras 3's class


def test_keras_constraints_applied_after_set_and_build():
    rng = np.random.default_rng(9)
    w = rng.standard_normal((3, 3, 4, 2)).astype(np.float32) * 3
    b = rng.standard_normal(8).astype(np.float32)
    eps = 1e-7
    cases = {
        "max_norm": lambda v: v * np.clip(np.linalg.norm(v, axis=0, keepdims=True), 0, 2)
        / (eps + np.linalg.norm(v, axis=0, keepdims=True)),
        "unit_norm": lambda v: v / (eps + np.linalg.norm(v, axis=0, keepdims=True)),
        "non_neg": lambda v: np.maximum(v, 0),
        "min_max_norm": lambda v: v * np.clip(np.linalg.norm(v, axis=0, keepdims=True), 0, 1)
        / (eps + np.linalg.norm(v, axis=0, keepdims=True)),
    }
    for name, project in cases.items():
        # (seeded: a column of tiny initial weights would make the eps above matter, and the test flaky)
        layer = keras.layers.DepthwiseConv2D(3, 1, "valid", 2, depthwise_constraint=name, bias_constraint="non_neg",
                                             depthwise_initializer=keras.initializers.GlorotUniform(seed=3))
        layer.build((1, 5, 5, 4))
        np.testing.assert_allclose(layer.kernel, project(layer.kernel), rtol=1e-5, atol=1e-6)
        layer.set_weights([w, b])
        np.testing.assert_allclose(layer.kernel, project(w.astype(np.float64)), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(layer.bias, np.maximum(b, 0))
    axes = keras.constraints.MaxNorm(1.0, axis=[0, 1, 2])(w)
    np.testing.assert_allclose(np.sqrt((axes.astype(np.float64) ** 2).sum(axis=(0, 1, 2))), 1.0, rtol=1e-5)


def test_keras_constraints_against_keras():
    real_keras = real("keras")
    w = np.random.default_rng(10).standard_normal((3, 3, 4, 2)).astype(np.float32)
    for name in ("max_norm", "unit_norm", "non_neg", "min_max_norm"):
        np.testing.assert_allclose(keras.constraints.get(name)(w), np.asarray(real_keras.constraints.get(name)(w)),
                                   rtol=1e-5, atol=1e-6)


def test_keras_training_loop_lowers_the_loss():
    """Fit a layer to a target depthwise convolution by plain SGD on the mean squared error."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((8, 12, 12, 3)).astype(np.float32)
    target = conv2d_forward(x, rng.standard_normal((3, 3, 3, 2)) * 0.5, (1, 1), ((1, 1), (1, 1)), "NHWC", (1, 1),
                            bias=rng.standard_normal(6))
    layer = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="linear",
                                         depthwise_initializer=keras.initializers.GlorotUniform(seed=0),
                                         depthwise_regularizer=keras.regularizers.L2(1e-4))
    losses = []
    for _ in range(60):
        y = layer(x)
        losses.append(np.mean((y - target) ** 2) + sum(layer.losses))
        layer.backward(2 * (y - target) / y.size)
        layer.set_weights([w - 0.5 * g for w, g in zip(layer.get_weights(), layer.gradients)])
    assert losses[-1] < 0.02 * losses[0]
    assert all(b <= a * 1.0001 for a, b in zip(losses, losses[1:]))


def test_keras_mixed_float16_policy():
    x = np.random.default_rng(12).standard_normal((1, 6, 6, 3))
    layer = keras.layers.DepthwiseConv2D(3, dtype="mixed_float16")
    y = layer(x)
    assert y.dtype == np.float16 and layer.kernel.dtype == np.float32
    ref = conv2d_forward(x.astype(np.float32), layer.kernel, (1, 1), ((0, 0), (0, 0)), "NHWC", (1, 1))
    np.testing.assert_allclose(y, ref, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"kernel_size": 0}, ValueError, "`kernel_size`"),
    ({"kernel_size": 3, "padding": "full"}, ValueError, "`padding`"),
    ({"kernel_size": 3, "depth_multiplier": 0}, ValueError, "`depth_multiplier`"),
    ({"kernel_size": 3, "data_format": "channels_middle"}, ValueError, "`data_format`"),
    ({"kernel_size": 3, "activation": "softmax"}, ValueError, "`activation`.*'softmax'"),
    ({"kernel_size": 3, "activation": ["relu"]}, ValueError, r"`activation`.*\['relu'\]"),
    ({"kernel_size": 3, "activation": {"module": "numpy", "class_name": "function", "config": "no_such"}},
     ValueError, "`activation`.*'no_such'.*names no function"),
    ({"kernel_size": 3, "depthwise_initializer": "glorot"}, ValueError, "`depthwise_initializer`.*'glorot'"),
    ({"kernel_size": 3, "bias_regularizer": "l3"}, ValueError, "`bias_regularizer`"),
    ({"kernel_size": 3, "depthwise_constraint": {"class_name": "Clip"}}, ValueError, "`depthwise_constraint`"),
    ({"kernel_size": 3, "dtype": "bfloat16"}, ValueError, "`dtype`.*bfloat16"),
    ({"kernel_size": 3, "groups": 2}, TypeError, "groups"),
])
def test_keras_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        keras.layers.DepthwiseConv2D(**kwargs)


def test_keras_bad_use():
    layer = keras.layers.DepthwiseConv2D(3)
    with pytest.raises(ValueError, match="`grad`.*has not been called"):
        layer.backward(np.ones((1, 1, 1, 1)))
    with pytest.raises(ValueError, match="`weights`.*built"):
        layer.set_weights([np.ones((3, 3, 2, 1)), np.ones(2)])
    y = layer(np.ones((1, 5, 5, 2)))
    with pytest.raises(ValueError, match=r"`weights`.*\(3, 3, 2, 1\).*\(3, 3, 2, 2\)"):
        layer.set_weights([np.ones((3, 3, 2, 2)), np.ones(2)])
    with pytest.raises(ValueError, match="`weights` must hold 2 arrays"):
        layer.set_weights([np.ones((3, 3, 2, 1))])
    with pytest.raises(ValueError, match=r"`grad` has shape \(1, 2, 2, 2\)"):
        layer.backward(np.ones((1, 2, 2, 2)))
    assert layer.backward(np.ones_like(y)).shape == (1, 5, 5, 2)
    custom = keras.layers.DepthwiseConv2D(3, activation=np.exp)
    custom(np.ones((1, 5, 5, 2)))
    with pytest.raises(TypeError, match="`activation`.*callable"):
        custom.backward(np.ones((1, 3, 3, 2)))


# ---------------------------------------------------------------------------
# ivy

@pytest.mark.parametrize("x_shape, k, strides, padding, y_shape, use_out", IVY_SEED_EXAMPLES)
def test_ivy_seed_array_examples(x_shape, k, strides, padding, y_shape, use_out):
    rng = np.random.default_rng(13)
    x = rng.normal(0, 1, x_shape).astype(np.float32)          # ivy.random_normal(mean=0, std=1, shape=...)
    filters = rng.normal(0, 1, (k, k, x_shape[-1])).astype(np.float32)
    if use_out:
        y = np.zeros(y_shape, dtype=np.float32)              # ivy.zeros(...)
        assert ivy.depthwise_conv2d(x, filters, strides, padding, out=y) is y
    else:
        y = ivy.depthwise_conv2d(x, filters, strides, padding)
    assert y.shape == y_shape
    sp = normalize_pair(strides)
    pad = resolve_padding(padding, x_shape[1:3], (k, k), sp, (1, 1))
    assert_close(y, *reference_forward(x, filters, sp, pad, "NHWC", (1, 1)), np.float32, k * k)


def test_ivy_seed_container_examples():
    x = IVY_X  # NHWC
    filters = dict(a=IVY_A, b=IVY_B)                           # ivy.Container(a=a, b=b)
    y = ivy.depthwise_conv2d(x, filters, 1, 'VALID', dilations=2)
    assert list(y) == ["a", "b"]
    np.testing.assert_array_equal(y["a"], IVY_LAPLACE)
    np.testing.assert_allclose(y["b"], IVY_MEAN, rtol=1e-7)
    assert_close(y["b"], *reference_forward(x, IVY_B, (1, 1), ((0, 0), (0, 0)), "NHWC", (2, 2)), np.float64, 9)
    inp = dict(x=x, y=np.eye(6, 6).reshape((1, 6, 6, 1)))     # ivy.Container(x=x, y=y)
    y = ivy.depthwise_conv2d(inp, IVY_A, 1, 'VALID', dilations=2)
    assert list(y) == ["x", "y"]
    np.testing.assert_array_equal(y["x"], IVY_LAPLACE)
    np.testing.assert_array_equal(y["y"], IVY_LAPLACE)


def test_ivy_seed_method_examples_shapes():
    rng = np.random.default_rng(14)
    x = rng.integers(0, 255, (1, 128, 128, 3)).astype(np.float32) / 255.0
    filters = rng.normal(0, 1, (3, 3, 3))
    assert ivy.depthwise_conv2d(x, filters, 2, 'SAME').shape == (1, 64, 64, 3)
    inp = dict(a=x, b=x[:, ::-1])
    y = ivy.depthwise_conv2d(inp, filters, 2, 'SAME')
    assert {k: v.shape for k, v in y.items()} == {"a": (1, 64, 64, 3), "b": (1, 64, 64, 3)}


def test_ivy_nests_map_every_argument():
    rng = np.random.default_rng(15)
    x1, x2, x3 = (rng.standard_normal((1, 8, 7, 2)) for _ in range(3))
    w = rng.standard_normal((3, 3, 2))
    x = {"p": [x1, x2], "q": {"r": x3}}
    strides = {"p": 2, "q": {"r": (1, 2)}}
    padding = {"p": ((1, 0), (0, 1)), "q": "SAME"}    # a list here is a value: shared by p[0] and p[1]
    out = {"p": [np.empty((1, 4, 3, 2)), np.empty((1, 4, 3, 2))], "q": {"r": np.empty((1, 8, 4, 2))}}
    y = ivy.depthwise_conv2d(x, w, strides, padding, data_format="NHWC", dilations={"p": 1, "q": 1}, out=out)
    assert isinstance(y["p"], list) and y["p"][0] is out["p"][0] and y["q"]["r"] is out["q"]["r"]
    for got, xi, sp, pad in [(y["p"][0], x1, (2, 2), ((1, 0), (0, 1))), (y["p"][1], x2, (2, 2), ((1, 0), (0, 1))),
                             (y["q"]["r"], x3, (1, 2), resolve_padding("SAME", (8, 7), (3, 3), (1, 2), (1, 1)))]:
        np.testing.assert_allclose(got, conv2d_forward(xi, w, sp, pad, "NHWC", (1, 1)), rtol=1e-12)


def test_ivy_nchw_and_plain_lists():
    rng = np.random.default_rng(16)
    x = rng.standard_normal((2, 3, 6, 5))
    w = rng.standard_normal((2, 2, 3))
    got = ivy.depthwise_conv2d(x.tolist(), w, [1, 1], [(0, 1), (1, 0)], data_format="NCHW", dilations=(2, 1))
    np.testing.assert_allclose(got, conv2d_forward(x, w, (1, 1), ((0, 1), (1, 0)), "NCHW", (2, 1)), rtol=1e-12)


def test_ivy_nest_errors():
    x = np.ones((1, 5, 5, 1))
    with pytest.raises(ValueError, match=r"`filters` and `x` are nested differently: keys \['a'\] against keys"):
        ivy.depthwise_conv2d({"x": x, "y": x}, {"a": IVY_A}, 1, "VALID")
    with pytest.raises(ValueError, match="`out` must be nested like `x`"):
        ivy.depthwise_conv2d({"x": x, "y": x}, IVY_A, 1, "VALID", out=np.zeros((1, 3, 3, 1)))
    with pytest.raises(ValueError, match="nested differently: a list of 1 against a list of 2"):
        ivy.depthwise_conv2d({"x": [x, x]}, {"x": [IVY_A]}, 1, "VALID")
    with pytest.raises(ValueError, match="`padding`"):
        ivy.depthwise_conv2d({"x": x}, IVY_A, 1, {"x": "FULL"})


# ---------------------------------------------------------------------------
# Chainer

def chainer_reference(x, W, b, stride, pad):
    """From Chainer's algorithm: output channel c * c_M + m is input channel c correlated with W[m, c]."""
    c_M, c_I, kh, kw = W.shape
    sy, sx = normalize_pair(stride)
    ph, pw = normalize_pair(pad)
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh, ow = (xp.shape[2] - kh) // sy + 1, (xp.shape[3] - kw) // sx + 1
    y = np.zeros((x.shape[0], c_I * c_M, oh, ow))
    for c in range(c_I):
        for m in range(c_M):
            for i in range(kh):
                for j in range(kw):
                    y[:, c * c_M + m] += W[m, c, i, j] * xp[:, c, i:i + sy * oh:sy, j:j + sx * ow:sx]
    return y if b is None else y + np.asarray(b)[None, :, None, None]


def test_chainer_seed_example():
    x = np.random.uniform(0, 1, (2, 3, 4, 7))
    W = np.random.uniform(0, 1, (2, 3, 3, 3))
    b = np.random.uniform(0, 1, (6,))
    y = F.depthwise_convolution_2d(x, W, b)
    assert y.shape == (2, 6, 2, 5)
    np.testing.assert_allclose(y, chainer_reference(x, W, b, 1, 0), rtol=1e-12)


@pytest.mark.parametrize("stride, pad, bias", [(1, 0, False), (2, 1, True), ((1, 2), (2, 0), True)])
def test_chainer_against_reference(stride, pad, bias):
    rng = np.random.default_rng(17)
    x = rng.standard_normal((2, 4, 9, 8)).astype(np.float32)
    W = rng.standard_normal((3, 4, 3, 2)).astype(np.float32)
    b = rng.standard_normal(12).astype(np.float32) if bias else None
    y = F.depthwise_convolution_2d(x, W, b, stride, pad)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, chainer_reference(x, W, b, stride, pad), rtol=1e-5, atol=1e-5)
    # the reference has Chainer's channel order, and the result is within float32 rounding of it
    sp, (ph, pw) = normalize_pair(stride), normalize_pair(pad)
    ref, scale = reference_forward(x, W.transpose(2, 3, 1, 0), sp, ((ph, ph), (pw, pw)), "NCHW", (1, 1), bias=b)
    np.testing.assert_allclose(ref, chainer_reference(x, W, b, stride, pad), rtol=1e-12, atol=1e-12)
    assert_close(y, ref, scale, np.float32, W.shape[2] * W.shape[3])
    np.testing.assert_array_equal(y, dwconv.depthwise_conv2d(x, dwconv.convert_filters(W, "chainer", "tf"), stride,
                                                             pad, data_format="NCHW", bias=b))


def test_chainer_errors():
    x = np.ones((1, 3, 5, 5))
    with pytest.raises(ValueError, match=r"`w` must have shape \(M, C, kh, kw\)"):
        F.depthwise_convolution_2d(x, np.ones((3, 3, 3)))
    with pytest.raises(ValueError, match="`filters` has 2 input channels"):
        F.depthwise_convolution_2d(x, np.ones((1, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"`bias` must have shape \(6,\)"):
        F.depthwise_convolution_2d(x, np.ones((2, 3, 3, 3)), np.ones(3))
    with pytest.raises(ValueError, match="`padding`"):
        F.depthwise_convolution_2d(x, np.ones((2, 3, 3, 3)), pad=-1)


# ---------------------------------------------------------------------------
# MegEngine

def megengine_reference(inp, weight, bias, stride, padding, dilation, mode="zeros", flip=False):
    """The seed's formula, groups == C: out[g*K + k] = bias + weight[g, k, 0] (x) inp[g], padded as `mode`."""
    G, K, _, kh, kw = weight.shape
    sh, sw = normalize_pair(stride)
    ph, pw = normalize_pair(padding)
    dh, dw = normalize_pair(dilation)
    np_mode = {"zeros": "constant", "reflect": "reflect", "replicate": "edge"}[mode]
    xp = np.pad(inp.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)), mode=np_mode)
    OH = (inp.shape[2] + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    OW = (inp.shape[3] + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    w = weight[:, :, 0, ::-1, ::-1] if flip else weight[:, :, 0]
    out = np.zeros((inp.shape[0], G * K, OH, OW))
    for g in range(G):
        for k in range(K):
            for i in range(kh):
                for j in range(kw):
                    out[:, g * K + k] += w[g, k, i, j] * xp[:, g, i * dh:i * dh + sh * OH:sh, j * dw:j * dw + sw * OW:sw]
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)


def test_megengine_seed_example_is_refused_as_dense():
    with pytest.raises(ValueError, match=r"dwconv is a depthwise convolution library.*Set `groups` to "
                                         r"in_channels \(3\) and `out_channels` to a multiple of it"):
        M.Conv2d(in_channels=3, out_channels=1, kernel_size=3)


def test_megengine_seed_example_depthwise():
    m = M.Conv2d(in_channels=3, out_channels=3, kernel_size=3, groups=3)
    inp = np.arange(0, 96).astype("float32").reshape(2, 3, 4, 4)     # mge.tensor(...)
    oup = m(inp)
    assert oup.shape == (2, 3, 2, 2)
    # the weights are drawn unseeded, as in MegEngine: bound the error by float32 rounding of the
    # 9 products and the bias (an output near 0 can be a sum of terms near 100, so no rtol holds)
    scale = megengine_reference(inp, np.abs(m.weight), np.abs(m.bias), 1, 0, 1)
    error = np.abs(oup - megengine_reference(inp, m.weight, m.bias, 1, 0, 1))
    assert (error <= 11 * np.finfo(np.float32).eps * scale).all(), (error.max(), scale.max())


@pytest.mark.parametrize("stride, padding, dilation, mode, conv_mode", [
    (1, 0, 1, "zeros", "cross_correlation"), (2, 1, 1, "reflect", "cross_correlation"),
    (1, (2, 1), 2, "replicate", "convolution"), ((2, 1), 1, (1, 2), "zeros", "CONVOLUTION"),
])
def test_megengine_against_reference(stride, padding, dilation, mode, conv_mode):
    rng = np.random.default_rng(18)
    m = M.Conv2d(4, 8, (3, 2), stride, padding, dilation, groups=4, conv_mode=conv_mode, padding_mode=mode)
    assert m.weight.shape == (4, 2, 1, 3, 2) and m.bias.shape == (1, 8, 1, 1)
    m.bias[...] = rng.standard_normal((1, 8, 1, 1))              # assignable in place
    inp = rng.standard_normal((2, 4, 9, 8)).astype(np.float32)
    flip = conv_mode.lower() == "convolution"

    def check(got):
        """The seed's formula, the reference agreeing with it, and `got` within float32 rounding."""
        want = megengine_reference(inp, m.weight, m.bias, stride, padding, dilation, mode, flip=flip)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        kernel = m.weight[:, :, 0, ::-1, ::-1] if flip else m.weight[:, :, 0]    # (C, M, kh, kw)
        (ph, pw), sp, dp = normalize_pair(padding), normalize_pair(stride), normalize_pair(dilation)
        ref, scale = reference_forward(inp, kernel.transpose(2, 3, 0, 1), sp, ((ph, ph), (pw, pw)), "NCHW", dp,
                                       bias=m.bias.ravel(), mode=mode)
        np.testing.assert_allclose(ref, want, rtol=1e-12, atol=1e-12)
        assert_close(got, ref, scale, np.float32, kernel.shape[2] * kernel.shape[3])

    check(m(inp))
    m.weight = rng.standard_normal(m.weight.shape).astype(np.float32)   # or replaced
    check(m.forward(inp))


@pytest.mark.parametrize("compute_mode", ["default", "float32"])
def test_megengine_float16(compute_mode):
    rng = np.random.default_rng(19)
    m = M.Conv2d(3, 6, 5, padding=2, groups=3, compute_mode=compute_mode)
    inp = rng.standard_normal((1, 3, 12, 12)).astype(np.float16)
    out = m(inp)
    assert out.dtype == np.float16
    want = megengine_reference(inp, m.weight, m.bias, 1, 2, 1)
    scale = megengine_reference(np.abs(inp), np.abs(m.weight), None, 1, 2, 1)
    # float32 accumulation: the only error left is the rounding of the result to float16
    assert (np.abs(out - want) <= 1e-5 * scale + np.abs(want) * 2.0 ** -11 + 1e-7).all()


def test_megengine_one_input_channel_keeps_the_dense_weight_layout():
    m = M.Conv2d(1, 3, 3, bias=False)
    assert m.weight.shape == (3, 1, 3, 3) and m.bias is None
    inp = np.random.default_rng(20).standard_normal((2, 1, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(m(inp), megengine_reference(inp, m.weight[None], None, 1, 0, 1), rtol=1e-5, atol=1e-6)


def test_megengine_initialization():
    m = M.Conv2d(64, 128, 3, groups=64)
    assert m.weight.dtype == np.float32 and not m.bias.any()
    # (1152 unseeded draws: their std is within 12% of the law's, 5.7 standard errors, all but never;
    # within 5% failed about one run in 60)
    assert np.std(m.weight) == pytest.approx(1 / math.sqrt(9 * 64), rel=0.12)


@pytest.mark.parametrize("kwargs, match", [
    (dict(in_channels=4, out_channels=8, kernel_size=3, groups=2), r"depthwise.*groups=2.*Set `groups` to in_ch"),
    (dict(in_channels=4, out_channels=6, kernel_size=3, groups=4), r"depthwise.*out_channels=6"),
    (dict(in_channels=0, out_channels=6, kernel_size=3, groups=4), "`in_channels` must be a positive int"),
    (dict(in_channels=3, out_channels=3, kernel_size=3, groups=3, conv_mode="xcorr"), "`conv_mode`.*'xcorr'"),
    (dict(in_channels=3, out_channels=3, kernel_size=3, groups=3, compute_mode="half"), "`compute_mode`"),
    (dict(in_channels=3, out_channels=3, kernel_size=3, groups=3, padding_mode="mirror"), "`padding_mode`"),
    (dict(in_channels=3, out_channels=3, kernel_size=(3, 0), groups=3), "`kernel_size`"),
    (dict(in_channels=3, out_channels=3, kernel_size=3, groups=3, stride=0), "`stride`"),
    (dict(in_channels=3, out_channels=3, kernel_size=3, groups=3, padding=-1), "`padding`"),
])
def test_megengine_refuses_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        M.Conv2d(**kwargs)


def test_megengine_wrong_weight_shape():
    m = M.Conv2d(3, 3, 3, groups=3)
    m.weight = np.ones((3, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"`weight` must have shape \(3, 1, 1, 3, 3\)"):
        m(np.ones((1, 3, 5, 5), np.float32))
