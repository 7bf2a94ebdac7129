"""``keras.layers.DepthwiseConv2D`` and ``DepthwiseConv1D`` on NumPy arrays, with a backward pass for
NumPy training loops.

``from dwconv.compat import keras`` keeps ``keras.layers.DepthwiseConv2D(...)`` (and
``DepthwiseConv1D(...)``: kernel ``(k, C, M)``, and padding "causal" beyond Keras) working, with Keras 3's arguments (positional ones too: the second is ``strides``), weight layout (kernel
``(kh, kw, C, M)``, bias ``(C*M,)``), initializers, regularizers, constraints and configs (a config
from Keras loads here, and one from here loads in Keras). ``keras.initializers``,
``keras.regularizers`` and ``keras.constraints`` hold the objects the layer accepts.

A NumPy training step::

    y = layer(x)
    layer.backward(d_loss_d_y)              # returns d_loss_d_x; fills layer.gradients
    layer.set_weights([w - lr * g for w, g in zip(layer.get_weights(), layer.gradients)])

``set_weights`` applies the constraints, as Keras's optimizers do after each update.
"""
import inspect
import itertools
import math
import sys
from types import SimpleNamespace

import numpy as np

import dwconv
from dwconv import _args, _conv1d, _names

__all__ = ["DepthwiseConv2D", "DepthwiseConv1D", "layers", "initializers", "regularizers", "constraints"]


class _Configurable:
    """Keras's get_config / from_config, from the constructor's own parameters."""

    def get_config(self):
        return {name: getattr(self, name) for name in inspect.signature(type(self)).parameters}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


# ---------------------------------------------------------------------------
# initializers: called with (shape, dtype); a seeded one gives the same values at every call


class Initializer(_Configurable):
    def __call__(self, shape, dtype=None):
        return np.asarray(self._sample(tuple(shape), np.random.default_rng(getattr(self, "seed", None))),
                          dtype=dtype or np.float32)


class Zeros(Initializer):
    def _sample(self, shape, rng):
        return np.zeros(shape)


class Ones(Initializer):
    def _sample(self, shape, rng):
        return np.ones(shape)


class Constant(Initializer):
    def __init__(self, value=0.0):
        self.value = value

    def _sample(self, shape, rng):
        return np.full(shape, self.value)


class RandomNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev, self.seed = mean, stddev, seed

    def _sample(self, shape, rng):
        return rng.normal(self.mean, self.stddev, shape)


class RandomUniform(Initializer):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        self.minval, self.maxval, self.seed = minval, maxval, seed

    def _sample(self, shape, rng):
        return rng.uniform(self.minval, self.maxval, shape)


def _truncated_normal(rng, mean, stddev, shape):
    """Normal samples, those beyond two standard deviations drawn again (as Keras does)."""
    values = rng.standard_normal(shape)
    outside = np.abs(values) > 2
    while outside.any():
        values[outside] = rng.standard_normal(np.count_nonzero(outside))
        outside = np.abs(values) > 2
    return mean + stddev * values


class TruncatedNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev, self.seed = mean, stddev, seed

    def _sample(self, shape, rng):
        return _truncated_normal(rng, self.mean, self.stddev, shape)


def _fans(shape, input_axes, output_axes):
    """Keras's fan-in and fan-out: for a kernel (kh, kw, C, M), kh*kw*C and kh*kw*M."""
    if input_axes is not None and output_axes is not None:
        return math.prod(shape[a] for a in input_axes), math.prod(shape[a] for a in output_axes)
    if len(shape) < 2:
        return (shape[0],) * 2 if shape else (1, 1)
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


class VarianceScaling(Initializer):
    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None, input_axes=None,
                 output_axes=None):
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"`mode` must be 'fan_in', 'fan_out' or 'fan_avg', got {mode!r}")
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError("`distribution` must be 'truncated_normal', 'untruncated_normal' or 'uniform', "
                             f"got {distribution!r}")
        self.scale, self.mode, self.distribution, self.seed = scale, mode, distribution, seed
        self.input_axes, self.output_axes = input_axes, output_axes

    def _sample(self, shape, rng):
        fan_in, fan_out = _fans(shape, self.input_axes, self.output_axes)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, fan)
        if self.distribution == "uniform":
            limit = math.sqrt(3 * variance)
            return rng.uniform(-limit, limit, shape)
        if self.distribution == "untruncated_normal":
            return rng.normal(0.0, math.sqrt(variance), shape)
        # the standard deviation of a unit normal truncated at +-2
        return _truncated_normal(rng, 0.0, math.sqrt(variance) / 0.87962566103423978, shape)


def _variance_scaling_preset(name, scale, mode, distribution):
    def __init__(self, seed=None, input_axes=None, output_axes=None):
        VarianceScaling.__init__(self, scale, mode, distribution, seed, input_axes, output_axes)

    doc = f"VarianceScaling(scale={scale}, mode={mode!r}, distribution={distribution!r})"
    return type(name, (VarianceScaling,), {"__init__": __init__, "__doc__": doc})


GlorotUniform = _variance_scaling_preset("GlorotUniform", 1.0, "fan_avg", "uniform")
GlorotNormal = _variance_scaling_preset("GlorotNormal", 1.0, "fan_avg", "truncated_normal")
HeUniform = _variance_scaling_preset("HeUniform", 2.0, "fan_in", "uniform")
HeNormal = _variance_scaling_preset("HeNormal", 2.0, "fan_in", "truncated_normal")
LecunUniform = _variance_scaling_preset("LecunUniform", 1.0, "fan_in", "uniform")
LecunNormal = _variance_scaling_preset("LecunNormal", 1.0, "fan_in", "truncated_normal")


# ---------------------------------------------------------------------------
# regularizers: the penalty of a weight, and its gradient for `backward`


class Regularizer(_Configurable):
    def __call__(self, x):
        return float(self._penalty(np.asarray(x, dtype=np.float64)))

    def gradient(self, x):
        """The gradient of the penalty with respect to `x`."""
        return self._gradient(np.asarray(x, dtype=np.float64))


class L1L2(Regularizer):
    def __init__(self, l1=0.0, l2=0.0):
        self.l1, self.l2 = l1, l2

    def _penalty(self, x):
        return self.l1 * np.abs(x).sum() + self.l2 * np.square(x).sum()

    def _gradient(self, x):
        return self.l1 * np.sign(x) + 2 * self.l2 * x


class L1(L1L2):
    def __init__(self, l1=0.01):
        super().__init__(l1=l1)


class L2(L1L2):
    def __init__(self, l2=0.01):
        super().__init__(l2=l2)


# ---------------------------------------------------------------------------
# constraints: the projection of a weight after it is set or updated

_EPSILON = 1e-7     # Keras's backend.epsilon(), keeping the norms' divisions finite


class Constraint(_Configurable):
    def __call__(self, w):
        w = np.asarray(w)
        return self._project(w).astype(w.dtype, copy=False)


class NonNeg(Constraint):
    def _project(self, w):
        return np.maximum(w, 0)


class _Norm(Constraint):
    def _norms(self, w):
        axis = tuple(self.axis) if isinstance(self.axis, list) else self.axis     # a list in Keras configs
        return np.sqrt(np.sum(np.square(w), axis=axis, keepdims=True))


class MaxNorm(_Norm):
    def __init__(self, max_value=2, axis=0):
        self.max_value, self.axis = max_value, axis

    def _project(self, w):
        norms = self._norms(w)
        return w * (np.clip(norms, 0, self.max_value) / (_EPSILON + norms))


class MinMaxNorm(_Norm):
    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value, self.max_value, self.rate, self.axis = min_value, max_value, rate, axis

    def _project(self, w):
        norms = self._norms(w)
        desired = self.rate * np.clip(norms, self.min_value, self.max_value) + (1 - self.rate) * norms
        return w * (desired / (_EPSILON + norms))


class UnitNorm(_Norm):
    def __init__(self, axis=0):
        self.axis = axis

    def _project(self, w):
        return w / (_EPSILON + self._norms(w))


# ---------------------------------------------------------------------------
# identifiers: None, a name, a Keras config dict, or an object


def _snake(name):
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


def _registry(*classes, **aliases):
    """Every class under its own name and its snake_case one, as Keras 3 exports them."""
    names = {cls.__name__: cls for cls in classes}
    names.update({_snake(cls.__name__): cls for cls in classes})
    names.update(aliases)
    return names


_INITIALIZERS = _registry(Zeros, Ones, Constant, RandomNormal, RandomUniform, TruncatedNormal, VarianceScaling,
                          GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform, LecunNormal)
_REGULARIZERS = _registry(L1, L2, L1L2, l1_l2=L1L2)
_CONSTRAINTS = _registry(NonNeg, MaxNorm, MinMaxNorm, UnitNorm)
# By name, "l1_l2" means Keras 2's l1_l2(): both penalties 0.01 (Keras 3 has no such name).
_NAMED_DEFAULTS = {"l1_l2": {"l1": 0.01, "l2": 0.01}}


def _get(identifier, registry, kind, name):
    """The object for a layer argument `name`: None, a registered name, a Keras config, a callable."""
    if isinstance(identifier, type) and identifier in registry.values():
        return identifier()
    if identifier is None or (callable(identifier) and not isinstance(identifier, type)):
        return identifier
    if isinstance(identifier, str) and identifier in registry:
        return registry[identifier](**_NAMED_DEFAULTS.get(identifier, {}))
    if isinstance(identifier, dict) and identifier.get("class_name") in registry:
        return registry[identifier["class_name"]].from_config(identifier.get("config") or {})
    raise ValueError(f"`{name}` must be None, a callable, a Keras config or one of the {kind} "
                     f"{', '.join(sorted(registry))}; got {identifier!r}")


def _serialize(obj, module):
    """Keras's serialized form of an initializer, regularizer or constraint (a plain callable is
    kept as it is)."""
    if not isinstance(obj, _Configurable):
        return obj
    return {"module": f"keras.{module}", "class_name": type(obj).__name__, "config": obj.get_config(),
            "registered_name": None}


initializers = SimpleNamespace(Initializer=Initializer, **_INITIALIZERS,
                               get=lambda identifier: _get(identifier, _INITIALIZERS, "initializers", "identifier"),
                               serialize=lambda obj: _serialize(obj, "initializers"))
regularizers = SimpleNamespace(Regularizer=Regularizer, **_REGULARIZERS,
                               get=lambda identifier: _get(identifier, _REGULARIZERS, "regularizers", "identifier"),
                               serialize=lambda obj: _serialize(obj, "regularizers"))
constraints = SimpleNamespace(Constraint=Constraint, **_CONSTRAINTS,
                              get=lambda identifier: _get(identifier, _CONSTRAINTS, "constraints", "identifier"),
                              serialize=lambda obj: _serialize(obj, "constraints"))


# ---------------------------------------------------------------------------
# activations: Keras's name -> dwconv's fused activation (None: linear); their derivatives are
# dwconv._names's


_KERAS_NAMES = {"hard_swish": "hard_silu"}  # dwconv's name -> Keras's, where they differ
_ACTIVATIONS = {"linear": None, **{_KERAS_NAMES.get(name, name): name for name in _names.ACTIVATIONS}}
_ACTIVATION_ALIASES = {None: "linear", "swish": "silu", **_KERAS_NAMES}


def _activation(value, custom_objects=None):
    """Keras's name of an activation, or the function: a callable is kept as it is, and a Keras
    function config is restored (see `_restored_function`)."""
    if callable(value):
        return value
    if isinstance(value, dict):
        return _restored_function(value, custom_objects or {})
    if value is None or isinstance(value, str):
        name = _ACTIVATION_ALIASES.get(value, value)
        if name in _ACTIVATIONS:
            return name
    raise ValueError(f"`activation` must be None, a callable, a Keras function config or one of "
                     f"{', '.join(map(repr, sorted(_ACTIVATIONS) + [name for name in _ACTIVATION_ALIASES if name]))}; got {value!r}")


def _imported(module, qualname):
    """The object named `qualname` in the module named `module` if the program has imported that
    module; None otherwise. (A config may come from anywhere: importing the module it names would run
    that module's code, which Keras refuses too.)"""
    found = sys.modules.get(module) if isinstance(module, str) and isinstance(qualname, str) else None
    if found is None:
        return None
    for attribute in qualname.split("."):
        found = getattr(found, attribute, None)
    return found


def _function_config(function):
    """Keras 3's config of a custom activation function, with the module that it is imported from."""
    module, qualname = getattr(function, "__module__", None), getattr(function, "__qualname__", None)
    if _imported(module, qualname) is not function:
        raise ValueError(
            f"`activation` {function!r} cannot be saved in a config: `from_config` finds a function by its "
            "module and qualified name, which a lambda, a local function or a callable object does not have. "
            "Define it at the top level of a module, or use a named activation")
    return {"module": module, "class_name": "function", "config": qualname, "registered_name": "function"}


def _restored_function(config, custom_objects):
    """The function a Keras function config names: `custom_objects`' entry for its name (Keras
    saves a custom function under its name or registered name only), else found in its module when
    that is imported."""
    name = config.get("config")
    if config.get("class_name") == "function" and isinstance(name, str):
        function = custom_objects[name] if name in custom_objects else _imported(config.get("module"), name)
        if callable(function):
            return function
    raise ValueError(f"`activation` {config!r} names no function in `custom_objects` or in an imported "
                     f"module; import its module first, or pass it, as in `layer_class.from_config(config, custom_objects={{{name!r}: "
                     "function})`, or use a named activation")


# ---------------------------------------------------------------------------
# dtype policies

_POLICIES = {"float16": ("float16", "float16"), "float32": ("float32", "float32"),
             "float64": ("float64", "float64"), "mixed_float16": ("float32", "float16")}


def _policy(dtype):
    """Keras's dtype policy name from None, a name, a NumPy dtype or a serialized DTypePolicy."""
    name = (dtype.get("config") or {}).get("name") if isinstance(dtype, dict) else dtype
    if name is None:
        return "float32"
    if not isinstance(name, str):
        try:
            name = np.dtype(name).name
        except TypeError:
            pass
    if name not in _POLICIES:
        raise ValueError(f"`dtype` must be one of {', '.join(map(repr, _POLICIES))} (NumPy has no bfloat16), "
                         f"got {dtype!r}")
    return name


_layer_numbers = itertools.count()


class DepthwiseConv2D:
    """2-D depthwise convolution layer, as ``keras.layers.DepthwiseConv2D`` (Keras 3).

    ``activation(depthwise_conv2d(inputs, kernel) + bias)``, bias and named activations fused into
    dwconv's kernel. Built on the first call: ``kernel`` ``(kh, kw, C, depth_multiplier)`` and
    ``bias`` ``(C * depth_multiplier,)`` are NumPy arrays of the policy's variable dtype.

    Beyond Keras: ``backward(grad)`` returns the gradient with respect to the last call's input
    and stores the gradients of ``kernel`` and ``bias`` in ``gradients`` (in ``get_weights()``
    order). They are the gradients of the loss plus ``sum(layer.losses)``, the objective Keras's
    ``fit`` minimizes. Named activations ("relu", "relu6", "sigmoid", "tanh", "gelu", "silu" /
    "swish", "hard_silu" / "hard_swish", "linear") can be differentiated, and regularizers that have
    a ``gradient`` method (``L1``, ``L2``, ``L1L2``).
    """

    # what differs between the 2-D layer and the 1-D one: the layer's default name, the convolution
    # and its gradients, how the spatial arguments and the padding read, and the output's shape
    _default_name = "depthwise_conv2d"
    _forward = staticmethod(dwconv.depthwise_conv2d)
    _gradients = staticmethod(dwconv.depthwise_conv2d_grad)

    @staticmethod
    def _spatial(value, name, layout):
        return _args.spatial_pair(value, name, layout)

    @staticmethod
    def _check_padding(padding, layout):
        _args.padding_spec(padding, layout)

    def _output_shape(self, input_shape, kernel_shape):
        return dwconv.output_shape(input_shape, kernel_shape, **self._conv_args())

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, depthwise_constraint=None, bias_constraint=None, *, name=None,
                 dtype=None, trainable=True):
        if name is not None and not isinstance(name, str):
            raise ValueError(f"`name` must be None or a str, got {name!r}")
        if not isinstance(trainable, bool):
            raise ValueError(f"`trainable` must be a bool, got {trainable!r}")
        layout = _args.check_data_format(data_format)
        self.data_format = "channels_last" if layout == "NHWC" else "channels_first"
        self.kernel_size = self._spatial(kernel_size, "kernel_size", layout)
        self.strides = self._spatial(strides, "strides", layout)
        self.dilation_rate = self._spatial(dilation_rate, "dilation_rate", layout)
        self._check_padding(padding, layout)
        self.padding = padding.lower() if isinstance(padding, str) else padding
        if not _args.is_int(depth_multiplier) or depth_multiplier < 1:
            raise ValueError(f"`depth_multiplier` must be a positive int, got {depth_multiplier!r}")
        self.depth_multiplier = int(depth_multiplier)
        self.activation = _activation(activation)
        self.use_bias = bool(use_bias)
        self.depthwise_initializer = _get(depthwise_initializer or "glorot_uniform", _INITIALIZERS, "initializers",
                                          "depthwise_initializer")
        self.bias_initializer = _get(bias_initializer or "zeros", _INITIALIZERS, "initializers", "bias_initializer")
        self.depthwise_regularizer = _get(depthwise_regularizer, _REGULARIZERS, "regularizers",
                                          "depthwise_regularizer")
        self.bias_regularizer = _get(bias_regularizer, _REGULARIZERS, "regularizers", "bias_regularizer")
        self.activity_regularizer = _get(activity_regularizer, _REGULARIZERS, "regularizers",
                                         "activity_regularizer")
        self.depthwise_constraint = _get(depthwise_constraint, _CONSTRAINTS, "constraints", "depthwise_constraint")
        self.bias_constraint = _get(bias_constraint, _CONSTRAINTS, "constraints", "bias_constraint")
        number = next(_layer_numbers)
        self.name = name or (self._default_name + (f"_{number}" if number else ""))
        self.trainable = trainable
        self.dtype_policy = _policy(dtype)
        self.dtype, self.compute_dtype = _POLICIES[self.dtype_policy]
        self.built = False
        self.kernel = self.bias = None
        self.gradients = None
        self._last_call = None          # (input, output) of the last call, for `backward`
        self._activity_losses = []

    # -- weights ---------------------------------------------------------------

    def build(self, input_shape):
        """Create ``kernel`` and ``bias`` for inputs of this shape (channels from ``data_format``)."""
        channels = input_shape[-1] if self.data_format == "channels_last" else input_shape[1]
        kernel_shape = (*self.kernel_size, channels, self.depth_multiplier)
        self.kernel = self._constrained(self.depthwise_initializer(kernel_shape, self.dtype),
                                        self.depthwise_constraint)
        if self.use_bias:
            self.bias = self._constrained(self.bias_initializer((channels * self.depth_multiplier,), self.dtype),
                                          self.bias_constraint)
        self.built = True

    @property
    def weights(self):
        return [w for w in (self.kernel, self.bias) if w is not None]

    trainable_weights = weights

    def get_weights(self):
        """Copies of ``[kernel, bias]`` (``[kernel]`` without a bias), in Keras's layout."""
        return [np.array(w) for w in self.weights]

    def set_weights(self, weights):
        """Set ``[kernel, bias]`` as ``get_weights`` returns them, then apply the constraints."""
        weights = list(weights)
        current = self.weights
        if not self.built:
            raise ValueError(f"`weights`: layer {self.name!r} has no weights before it is built (call it once, "
                             "or call `build(input_shape)`)")
        if len(weights) != len(current):
            raise ValueError(f"`weights` must hold {len(current)} arrays for layer {self.name!r}, got {len(weights)}")
        for new, old in zip(weights, current):
            if np.shape(new) != old.shape:
                raise ValueError(f"`weights`: layer {self.name!r} weight shape {old.shape} is not compatible "
                                 f"with provided weight shape {np.shape(new)}")
        self.kernel = self._constrained(np.array(weights[0], dtype=self.dtype), self.depthwise_constraint)
        if self.use_bias:
            self.bias = self._constrained(np.array(weights[1], dtype=self.dtype), self.bias_constraint)

    def _constrained(self, weight, constraint):
        return weight if constraint is None else np.asarray(constraint(weight), dtype=self.dtype)

    def count_params(self):
        return sum(w.size for w in self.weights)

    # -- forward and backward --------------------------------------------------

    def _conv_args(self):
        return dict(strides=self.strides, padding=self.padding, data_format=self.data_format,
                    dilations=self.dilation_rate, filter_format="tf")

    def __call__(self, inputs):
        x = np.asarray(inputs)
        if not self.built:
            self.build(x.shape)
        activation = self.activation if callable(self.activation) else _ACTIVATIONS[self.activation]
        y = self._forward(x, self.kernel, bias=self.bias, activation=activation, dtype=self.compute_dtype,
                          **self._conv_args())
        self._last_call = (x, y)
        # Keras divides the activity penalty by the batch size
        self._activity_losses = [] if self.activity_regularizer is None else [
            self.activity_regularizer(y) / max(y.shape[0], 1)]
        return y

    call = __call__

    @property
    def losses(self):
        """The activity penalty of the last call, then the kernel's and the bias's, as Keras lists them."""
        weight_losses = [regularizer(w) for regularizer, w in ((self.depthwise_regularizer, self.kernel),
                                                               (self.bias_regularizer, self.bias))
                         if regularizer is not None and w is not None]
        return self._activity_losses + weight_losses

    def backward(self, grad):
        """The gradient with respect to the last call's input, given ``grad`` with respect to its
        output; the kernel's and bias's gradients go to ``gradients``."""
        if self._last_call is None:
            raise ValueError(f"`grad`: layer {self.name!r} has not been called; backward follows a call")
        x, y = self._last_call
        grad = np.asarray(grad, dtype=np.float64 if y.dtype == np.float64 else np.float32)
        if grad.shape != y.shape:
            raise ValueError(f"`grad` has shape {grad.shape}, but the last call's output has shape {y.shape}")
        if self.activity_regularizer is not None:
            grad = grad + self._penalty_gradient(self.activity_regularizer, y, "activity_regularizer") / max(
                y.shape[0], 1)
        if callable(self.activation):
            raise TypeError(f"`activation` {self.activation!r} is a callable, which `backward` cannot "
                            "differentiate; use a named activation")
        fused = _names.ACTIVATIONS.get(_ACTIVATIONS[self.activation])
        if fused is not None:
            z = None if fused.of_output else self._forward(x, self.kernel, bias=self.bias, dtype=y.dtype,
                                                           **self._conv_args())
            grad = grad * fused.derivative(z, y)
        grads = self._gradients(x, self.kernel, grad, **self._conv_args())
        kernel_grad = grads.filters + self._penalty_gradient(self.depthwise_regularizer, self.kernel,
                                                             "depthwise_regularizer")
        self.gradients = [kernel_grad.astype(self.dtype)]
        if self.use_bias:
            bias_grad = grads.bias + self._penalty_gradient(self.bias_regularizer, self.bias, "bias_regularizer")
            self.gradients.append(bias_grad.astype(self.dtype))
        return grads.input

    @staticmethod
    def _penalty_gradient(regularizer, value, name):
        if regularizer is None:
            return 0.0
        if not hasattr(regularizer, "gradient"):
            raise TypeError(f"`{name}` {regularizer!r} has no `gradient` method, so `backward` cannot include "
                            "its penalty; use keras.regularizers.L1, L2 or L1L2")
        return regularizer.gradient(value)

    def compute_output_shape(self, input_shape):
        """The output shape for ``input_shape`` (whose batch size may be None)."""
        batch = input_shape[0]
        channels = input_shape[-1] if self.data_format == "channels_last" else input_shape[1]
        shape = self._output_shape((batch or 0, *input_shape[1:]), (*self.kernel_size, channels, self.depth_multiplier))
        return (batch, *shape[1:])

    # -- configs ---------------------------------------------------------------

    def get_config(self):
        """Keras's config of this layer: ``from_config`` (here or in Keras) rebuilds it.

        A custom activation function is saved with its module and qualified name, so that
        ``from_config`` here imports it (Keras finds it only when registered or in its custom
        objects); a lambda or a local function cannot be saved."""
        activation = self.activation if isinstance(self.activation, str) else _function_config(self.activation)
        return {
            "name": self.name, "trainable": self.trainable,
            "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": self.dtype_policy},
                      "registered_name": None},
            "depth_multiplier": self.depth_multiplier, "kernel_size": self.kernel_size, "strides": self.strides,
            "padding": self.padding, "data_format": self.data_format, "dilation_rate": self.dilation_rate,
            "activation": activation, "use_bias": self.use_bias,
            "depthwise_initializer": _serialize(self.depthwise_initializer, "initializers"),
            "bias_initializer": _serialize(self.bias_initializer, "initializers"),
            "depthwise_regularizer": _serialize(self.depthwise_regularizer, "regularizers"),
            "bias_regularizer": _serialize(self.bias_regularizer, "regularizers"),
            "activity_regularizer": _serialize(self.activity_regularizer, "regularizers"),
            "depthwise_constraint": _serialize(self.depthwise_constraint, "constraints"),
            "bias_constraint": _serialize(self.bias_constraint, "constraints"),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """The layer ``config`` describes. ``custom_objects`` (as Keras's ``Model.from_config`` takes
        it) maps names to functions: Keras saves a custom activation by its name or registered name
        alone, and such a config loads with the function given here."""
        return cls(**{**config, "activation": _activation(config.get("activation"), custom_objects)})

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


class DepthwiseConv1D(DepthwiseConv2D):
    """1-D depthwise convolution layer, as ``keras.layers.DepthwiseConv1D`` (Keras 3): inputs
    ``(N, L, C)`` (channels_last) or ``(N, C, L)``, kernel ``(k, C, depth_multiplier)``, padding
    "valid" or "same", on ``dwconv.depthwise_conv1d``. Everything else as ``DepthwiseConv2D``.

    Beyond Keras 3 (whose Conv1D has it, but not its DepthwiseConv1D): padding "causal",
    ``(k-1)*dilation_rate`` zeros on the left; a config with it does not load in Keras."""

    _default_name = "depthwise_conv1d"
    _forward = staticmethod(dwconv.depthwise_conv1d)
    _gradients = staticmethod(dwconv.depthwise_conv1d_grad)

    @staticmethod
    def _spatial(value, name, layout):
        return (_conv1d._positive(value, name),)     # (a 1-tuple, as Keras keeps it)

    @staticmethod
    def _check_padding(padding, layout):
        _conv1d._padding(padding, 1, 1, 1, 1)     # (its form only: the amounts wait for the input)

    def _output_shape(self, input_shape, kernel_shape):
        arguments = self._conv_args()
        return _conv1d._geometry(input_shape, kernel_shape, arguments["strides"], arguments["padding"],
                                 arguments["data_format"], arguments["dilations"], "tf", "input_shape",
                                 "kernel_size").output_shape

    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, depthwise_constraint=None, bias_constraint=None, *, name=None,
                 dtype=None, trainable=True):
        super().__init__(kernel_size, strides, padding, depth_multiplier, data_format, dilation_rate, activation,
                         use_bias, depthwise_initializer, bias_initializer, depthwise_regularizer, bias_regularizer,
                         activity_regularizer, depthwise_constraint, bias_constraint, name=name, dtype=dtype,
                         trainable=trainable)


layers = SimpleNamespace(DepthwiseConv2D=DepthwiseConv2D, DepthwiseConv1D=DepthwiseConv1D)
