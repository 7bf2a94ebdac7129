"""Benchmark dwconv against the peer frameworks: ``python -m dwconv bench``.

Design: for every shape of the suite the same float32 data goes to dwconv (NHWC and NCHW) and to
each installed peer (PyTorch NCHW and channels_last, ONNX Runtime NCHW, TensorFlow NHWC), every
one given the same number of threads.  The contestants of a shape are timed round-robin: one timed
batch of repetitions each per round, in an order shuffled anew each round, several rounds,
median of the per-call times.  Noise from the shared machine then hits everyone alike, so the
*ratios* printed are trustworthy even when absolute times drift between runs.  Before timing, every contestant's result is compared with
dwconv's, so a table never compares different computations.

Peers are imported lazily and only when installed; a missing or broken peer is reported in the
header and never stops the run.

The header also gives the machine's limits, measured at the start (FMA peak and copy bandwidth, for
1 thread and for the run's threads; dwconv/_machine.pxi), and every dwconv row its GFLOP/s and GB/s
as a percentage of them: how far a kernel is from being bound by arithmetic or by memory.
"""

import argparse
import collections
import contextlib
import functools
import importlib
import io
import json
import os
import platform
import random
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

import dwconv
from dwconv import _kernels

Shape = collections.namedtuple("Shape", "name H W C k stride pad")

# The suite: depthwise layers of MobileNetV2, EfficientNet and ConvNeXt at 224x224, RepLKNet-31B's
# 31x31 layer of its first stage, and a per-channel 5x5 blur of a 1080p RGB frame.
SUITE = (
    Shape("mnv2-112x32-s1", 112, 112, 32, 3, 1, 1),
    Shape("mnv2-112x96-s2", 112, 112, 96, 3, 2, 1),
    Shape("mnv2-56x144-s1", 56, 56, 144, 3, 1, 1),
    Shape("mnv2-28x192-s1", 28, 28, 192, 3, 1, 1),
    Shape("mnv2-14x576-s1", 14, 14, 576, 3, 1, 1),
    Shape("mnv2-7x960-s1", 7, 7, 960, 3, 1, 1),
    Shape("effnet-28x240-k5", 28, 28, 240, 5, 1, 2),
    Shape("convnext-56x96-k7", 56, 56, 96, 7, 1, 3),
    Shape("replknet-56x128-k31", 56, 56, 128, 31, 1, 15),
    Shape("blur-1080p-rgb-k5", 1080, 1920, 3, 5, 1, 2),
)
# An image-pipeline blur is never trained, and it would dominate the backward run time.
FORWARD_ONLY = frozenset({"blur-1080p-rgb-k5"})

# The image section: one kernel on every channel of an (H, W, C) image, reflected borders (OpenCV's
# default), the result in the image's dtype, as image pipelines filter frames. Each size with 3x3,
# 5x5 and 7x7 kernels in uint8 and float32; then large kernels, and separable 11- and 31-tap Gaussians
# (uint8 and float32).
ImageCase = collections.namedtuple("ImageCase", "name H W C k dtype separable")
IMAGE_SIZES = (("1080p-rgb", 1080, 1920, 3), ("4k-rgb", 2160, 3840, 3), ("1080p-rgba", 1080, 1920, 4),
               ("512-gray", 512, 512, 1))
IMAGE_DTYPES = {"u8": np.uint8, "f32": np.float32}
IMAGE_SUITE = tuple(
    ImageCase(f"{name}-k{k}-{dtype}", H, W, C, k, dtype, False)
    for name, H, W, C in IMAGE_SIZES for k in (3, 5, 7) for dtype in IMAGE_DTYPES
) + (
    ImageCase("1080p-rgb-k11-f32", 1080, 1920, 3, 11, "f32", False),
    ImageCase("1080p-rgb-k21-f32", 1080, 1920, 3, 21, "f32", False),
    ImageCase("1080p-rgb-gauss11-u8", 1080, 1920, 3, 11, "u8", True),
    ImageCase("1080p-rgb-gauss31-u8", 1080, 1920, 3, 31, "u8", True),
    ImageCase("1080p-rgb-gauss11-f32", 1080, 1920, 3, 11, "f32", True),
    ImageCase("1080p-rgb-gauss31-f32", 1080, 1920, 3, 31, "f32", True),
)
# scipy.ndimage runs one thread at 14-20x OpenCV's time: timed where a call takes at most ~0.5 s.
SCIPY_MAX_TAPS_PIXELS = 7 * 7 * 1080 * 1920 * 4
# After the image section: one image larger than a frame, in chunks, filtered by dwconv.dask and by
# dask-image (scipy.ndimage on each chunk and its halo), with one in-memory call on the whole image
# for scale. 8000x8000x3 float32 is 768 MB; the run holds ~5 of those (image, results, cross-check).
# A few single calls per contestant: dask-image takes seconds a call.
ChunkedCase = collections.namedtuple("ChunkedCase", "H W C chunk k")
CHUNKED_CASE = ChunkedCase(8000, 8000, 3, 2000, 5)
CHUNKED_ROUNDS = 3
# The models section (issue 18): pieces of PyTorch models (dwconv/_bench_models.py, built by the
# function `build` of that module with `options`) timed as stock PyTorch runs them and after
# dwconv.torch.convert(), per batch, memory format and pass: "forward" (inference: no_grad, eval
# mode), "backward" (the backward alone of a forward run before the timing) and "fwd+bwd" (a training
# step: forward, then the input and parameter gradients of the output's sum).  `targets`: the passes
# timed, each with the speedup (stock time / converted time) the issue asks for, None for none.
# Batch norm stays in eval mode in every pass: the same arithmetic in both models, and no running
# statistics that the timed calls would keep changing.
ModelCase = collections.namedtuple("ModelCase", "name build options input_shape batches memory_formats targets")
MODEL_CASES = (
    ModelCase("ConvNeXt 4x(96, 7x7) 56x56", "convnext_stack", {"blocks": 4, "dim": 96, "kernel": 7},
              (96, 56, 56), (1, 16), ("NCHW", "channels_last"), {"forward": 1.1, "fwd+bwd": 1.5}),
    ModelCase("MobileNetV2 3x(24*6, 3x3) 56x56", "mobilenetv2_stack",
              {"blocks": 3, "channels": 24, "expansion": 6, "kernel": 3},
              (24, 56, 56), (1, 16), ("NCHW", "channels_last"), {"forward": 1.1, "fwd+bwd": None}),
    # (batch, length, channels) in, as Mamba's block holds it: "NLC"
    ModelCase("Mamba causal conv1d 4096x1536 k4", "causal_conv1d", {"channels": 1536, "kernel": 4},
              (4096, 1536), (8,), ("NLC",), {"forward": 2.0, "backward": 2.0, "fwd+bwd": None}),
)
LAYOUTS = ("NHWC", "NCHW")

# Rounds and timed-batch length: full run, then --quick.  Batches of 20-50 ms are long enough
# for perf_counter and call overhead to vanish, short enough for many rounds.
ROUNDS, QUICK_ROUNDS = 7, 3
BATCH_SECONDS, QUICK_BATCH_SECONDS = 0.03, 0.02
# A contestant's timed batches of one shape last about this long in all at most: one whose calls
# take longer than this over the rounds is timed in fewer rounds (one at least), so that a peer
# taking seconds a call (PyTorch's depthwise backward of a 31x31 kernel: 2-4 s) costs seconds, not
# minutes.
CONTESTANT_SECONDS = 3.0
# A cross-check call this long is the contestant's warm-up and its estimate of one call a batch: a
# wake-up after a pause costs milliseconds, and calls this slow would otherwise run 4 more times.
# One longer than CONTESTANT_SECONDS is its one sample (TensorFlow's backward there: ~10 s a call).
SLOW_CALL_SECONDS = 1.0
# Pause after each timed batch while the contestant's idle worker threads still spin: on a
# 2-core machine they would steal a core from the next contestant, whose own threads then wait
# at every barrier for a time slice (measured: 10x slower and worse).  libgomp (dwconv, PyTorch)
# spins ~10 ms after its last parallel region, ONNX Runtime's pool ~100 ms after its last run.
SPIN_DOWN_SECONDS = 0.02
ORT_SPIN_DOWN_SECONDS = 0.15
# Results agree when max |a - b| <= TOLERANCE * max |b|: float32 sums in any order agree far
# better; a wrong padding, stride or layout disagrees at order 1.
TOLERANCE = 1e-3
SEED = 20240601
# Other processes using more than this many CPUs on average make a run or a shape worth a
# warning: OpenMP teams then wait at every barrier for a preempted thread, 10x slower and more.
BUSY_WARNING_CPUS = 0.25
# The machine's limits in the header (dwconv/_machine.pxi): copies of a buffer far larger than any
# cache (DRAM), and of one whose copy (source and destination: 8 MB) outgrows every core's L2 but
# stays in the L3, even in the share of it a VM gets (on 2 vCPUs of a 32 MB L3, 14 MB copies ran at
# DRAM speed, 4 MB ones at 3x that); the short L3 copy gets more tries.  The FMA peak is measured
# for PEAK_SECONDS per thread count (full run, then --quick).
DRAM_COPY_BYTES = 256 << 20
L3_COPY_BYTES, L3_COPY_TRIES = 4 << 20, 10
PEAK_SECONDS, QUICK_PEAK_SECONDS = 0.3, 0.1


@dataclass(frozen=True)
class Problem:
    """The data of one benchmark case: input, filter and (backward) upstream gradient."""

    shape: Shape
    x: np.ndarray  # (N, H, W, C)
    w: np.ndarray  # (k, k, C, 1): TensorFlow's depthwise filter layout, which dwconv takes
    dy: Optional[np.ndarray]  # (N, Ho, Wo, C), only for backward

    @property
    def y_shape(self):
        return _y_shape(self.shape, len(self.x))


@dataclass
class Contestant:
    """One way of computing a case, called exactly as a user would call it."""

    label: str
    run: Callable[[], object]
    # Maps run()'s result to NumPy arrays in dwconv's NHWC / (k, k, C, 1) layouts for the
    # cross-check; None for a helper timing that computes something else.
    as_nhwc: Optional[Callable[[object], tuple]]
    spin_down: float = SPIN_DOWN_SECONDS
    # A gradient timed alone gives one array: the reference's array at this index (0: dx, 1: dW).
    part: Optional[int] = None


# forward(problem), backward(problem) and gradient(problem, which): a peer's Contestant (None: not
# offered); `which` is one of GRADIENTS, the gradient the contestant computes alone.
# images(problem): a Contestant for an ImageProblem, or None where the peer cannot take it.
Peer = collections.namedtuple("Peer", "name layout package version forward backward gradient images",
                              defaults=(None,))
GRADIENTS = ("dx", "dW")
Section = collections.namedtuple("Section", "kind batch")


# ----------------------------------------------------------------------------- data


def _out_size(n, k, stride, pad):
    return (n + 2 * pad - k) // stride + 1


def _nchw(a):
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def _in_layout(a, layout):
    """An NHWC array in dwconv's `layout`."""
    return a if layout == "NHWC" else _nchw(a)


def _to_nhwc(a, layout):
    return a if layout == "NHWC" else a.transpose(0, 2, 3, 1)


def _oihw(w):
    """(k, k, C, 1) -> (C, 1, k, k), the filter layout of PyTorch and ONNX."""
    return np.ascontiguousarray(w.transpose(2, 3, 0, 1))


def _y_shape(shape, batch):
    """NHWC output shape."""
    return (batch, _out_size(shape.H, shape.k, shape.stride, shape.pad),
            _out_size(shape.W, shape.k, shape.stride, shape.pad), shape.C)


def _make_problem(shape, batch, kind, rng):
    x = rng.standard_normal((batch, shape.H, shape.W, shape.C), dtype=np.float32)
    w = rng.standard_normal((shape.k, shape.k, shape.C, 1), dtype=np.float32)
    if kind == "forward":
        return Problem(shape, x, w, None)
    return Problem(shape, x, w, rng.standard_normal(_y_shape(shape, batch), dtype=np.float32))


def _bytes_moved(problem, kind):
    """Least memory traffic: x read and y written; backward reads x and dy, writes dx."""
    x_bytes, y_bytes = problem.x.nbytes, 4 * int(np.prod(problem.y_shape))
    return x_bytes + y_bytes if kind == "forward" else 2 * x_bytes + y_bytes


def _flops(problem, kind):
    """2 flops per multiply-add: k*k for each of the N*OH*OW*C outputs (multiplier 1).  Backward: as
    many for the input gradient and again for the filter gradient (the bias gradient's sums of dy
    are negligible beside them)."""
    forward = 2 * int(np.prod(problem.y_shape)) * problem.shape.k ** 2
    return forward if kind == "forward" else 2 * forward


# ----------------------------------------------------------------------------- contestants


def _explicit_padding(shape):
    return ((shape.pad, shape.pad), (shape.pad, shape.pad))


def _dwconv_forward(problem, layout, threads):
    x, w, s = _in_layout(problem.x, layout), problem.w, problem.shape
    padding = _explicit_padding(s)

    def run():
        return dwconv.depthwise_conv2d(
            x, w, s.stride, padding, data_format=layout, num_threads=threads
        )

    return Contestant(f"dwconv {layout}", run, lambda y: (_to_nhwc(y, layout),))


def _dwconv_backward(problem, layout, threads):
    x, dy = _in_layout(problem.x, layout), _in_layout(problem.dy, layout)
    w, s = problem.w, problem.shape
    padding = _explicit_padding(s)

    def run():
        return dwconv.depthwise_conv2d_grad(
            x, w, dy, s.stride, padding, data_format=layout, num_threads=threads
        )

    return Contestant(
        f"dwconv {layout}", run, lambda grads: (_to_nhwc(grads.input, layout), grads.filters)
    )


def _dwconv_forward_helper(problem, layout, threads):
    """dwconv's forward on a backward case, timed alongside to print backward / forward."""
    forward = _dwconv_forward(problem, layout, threads)
    return Contestant(f"dwconv fwd {layout}", forward.run, None)


def _dwconv_input_grad_helper(problem, layout, threads):
    """dwconv's input gradient alone on a backward case, timed alongside to print its share."""
    dy, w, s = _in_layout(problem.dy, layout), problem.w, problem.shape
    input_shape = _in_layout(problem.x, layout).shape
    padding = _explicit_padding(s)

    def run():
        return dwconv.depthwise_conv2d_backprop_input(
            input_shape, w, dy, s.stride, padding, data_format=layout, num_threads=threads
        )

    return Contestant(f"dwconv dx {layout}", run, lambda dx: (_to_nhwc(dx, layout),), part=0)


def _dwconv_filter_grad_helper(problem, layout, threads):
    """dwconv's filter gradient alone on a backward case, timed alongside to print its share."""
    x, dy = _in_layout(problem.x, layout), _in_layout(problem.dy, layout)
    w_shape, s = problem.w.shape, problem.shape
    padding = _explicit_padding(s)

    def run():
        return dwconv.depthwise_conv2d_backprop_filter(
            x, w_shape, dy, s.stride, padding, data_format=layout, num_threads=threads
        )

    return Contestant(f"dwconv dW {layout}", run, lambda dfilters: (dfilters,), part=1)


def _torch_tensors(arrays, channels_last):
    import torch

    tensors = [torch.from_numpy(a) for a in arrays]
    if channels_last:
        tensors = [t.contiguous(memory_format=torch.channels_last) for t in tensors]
    return tensors


def _torch_forward(problem, channels_last, label):
    import torch
    import torch.nn.functional as F

    x, w = _torch_tensors([_nchw(problem.x), _oihw(problem.w)], channels_last)
    s = problem.shape

    def run():
        with torch.no_grad():
            return F.conv2d(x, w, None, s.stride, s.pad, 1, s.C)

    return Contestant(label, run, lambda y: (y.numpy().transpose(0, 2, 3, 1),))


def _torch_backward(problem, channels_last, label):
    import torch

    x, w, dy = _torch_tensors([_nchw(problem.x), _oihw(problem.w), _nchw(problem.dy)], channels_last)
    s = problem.shape
    stride, pad = [s.stride] * 2, [s.pad] * 2

    # The backward kernel alone, as autograd calls it: timing y.backward() would add a forward.
    def run():
        return torch.ops.aten.convolution_backward(
            dy, x, w, None, stride, pad, [1, 1], False, [0, 0], s.C, [True, True, False]
        )

    def as_nhwc(grads):
        return grads[0].numpy().transpose(0, 2, 3, 1), grads[1].numpy().transpose(2, 3, 0, 1)

    return Contestant(label, run, as_nhwc)


def _torch_gradient(problem, which, channels_last, label):
    """One gradient alone: convolution_backward asked for dx or dW only, as autograd asks when only
    the input or only the weight requires a gradient."""
    import torch

    x, w, dy = _torch_tensors([_nchw(problem.x), _oihw(problem.w), _nchw(problem.dy)], channels_last)
    s = problem.shape
    stride, pad = [s.stride] * 2, [s.pad] * 2
    mask = [which == "dx", which == "dW", False]

    def run():
        return torch.ops.aten.convolution_backward(
            dy, x, w, None, stride, pad, [1, 1], False, [0, 0], s.C, mask
        )

    def as_nhwc(grads):
        return ((grads[0].numpy().transpose(0, 2, 3, 1),) if which == "dx"
                else (grads[1].numpy().transpose(2, 3, 0, 1),))

    return Contestant(f"{label} {which}", run, as_nhwc, part=GRADIENTS.index(which))


def _onnx_depthwise_model(problem):
    """A one-node ONNX graph: grouped Conv (group = C) with the filter as an initializer."""
    from onnx import TensorProto, helper, numpy_helper

    s = problem.shape
    n, ho, wo, c = problem.y_shape
    conv = helper.make_node(
        "Conv", ["x", "w"], ["y"], group=c, kernel_shape=[s.k, s.k],
        pads=[s.pad] * 4, strides=[s.stride] * 2,
    )
    graph = helper.make_graph(
        [conv], "depthwise",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, c, s.H, s.W])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, c, ho, wo])],
        initializer=[numpy_helper.from_array(_oihw(problem.w), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # the IR version opset 17 needs, so older runtimes load it too
    return model


def _ort_forward(problem, threads):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(
        _onnx_depthwise_model(problem).SerializeToString(), options,
        providers=["CPUExecutionProvider"],
    )
    feed = {"x": _nchw(problem.x)}
    return Contestant(
        "ort", lambda: session.run(None, feed), lambda ys: (ys[0].transpose(0, 2, 3, 1),),
        spin_down=ORT_SPIN_DOWN_SECONDS,
    )


# The TF contestants build one tf.function per shape with strides and padding closed over:
# passing them as Python arguments costs ~1 ms a call in tf.function's argument handling.


def _tf_forward(problem):
    import tensorflow as tf

    s = problem.shape
    strides, padding = [1, s.stride, s.stride, 1], [[0, 0], [s.pad, s.pad], [s.pad, s.pad], [0, 0]]
    conv = tf.function(
        lambda x, w: tf.nn.depthwise_conv2d(x, w, strides, padding), jit_compile=False
    )
    x, w = tf.constant(problem.x), tf.constant(problem.w)
    return Contestant("tf", lambda: conv(x, w), lambda y: (y.numpy(),))


def _tf_gradient_options(s):
    """The stride and padding arguments of TensorFlow's raw gradient kernels for shape s."""
    return dict(strides=[1, s.stride, s.stride, 1], padding="EXPLICIT",
                explicit_paddings=[0, 0, s.pad, s.pad, s.pad, s.pad, 0, 0])


def _tf_backward(problem):
    import tensorflow as tf

    options = _tf_gradient_options(problem.shape)

    @tf.function(jit_compile=False)
    def gradients(x, w, dy):
        """Input and filter gradients: the two kernels of TF's registered gradient."""
        dx = tf.raw_ops.DepthwiseConv2dNativeBackpropInput(
            input_sizes=tf.shape(x), filter=w, out_backprop=dy, **options
        )
        dfilters = tf.raw_ops.DepthwiseConv2dNativeBackpropFilter(
            input=x, filter_sizes=tf.shape(w), out_backprop=dy, **options
        )
        return dx, dfilters

    x, w, dy = tf.constant(problem.x), tf.constant(problem.w), tf.constant(problem.dy)
    return Contestant(
        "tf", lambda: gradients(x, w, dy), lambda grads: (grads[0].numpy(), grads[1].numpy())
    )


def _tf_gradient(problem, which):
    """One of the two kernels of _tf_backward alone."""
    import tensorflow as tf

    options = _tf_gradient_options(problem.shape)
    if which == "dx":
        kernel = tf.function(lambda x, w, dy: tf.raw_ops.DepthwiseConv2dNativeBackpropInput(
            input_sizes=tf.shape(x), filter=w, out_backprop=dy, **options), jit_compile=False)
    else:
        kernel = tf.function(lambda x, w, dy: tf.raw_ops.DepthwiseConv2dNativeBackpropFilter(
            input=x, filter_sizes=tf.shape(w), out_backprop=dy, **options), jit_compile=False)
    x, w, dy = tf.constant(problem.x), tf.constant(problem.w), tf.constant(problem.dy)
    return Contestant(f"tf {which}", lambda: kernel(x, w, dy), lambda grad: (grad.numpy(),),
                      part=GRADIENTS.index(which))


# ----------------------------------------------------------------------------- image filtering


@dataclass(frozen=True)
class ImageProblem:
    """An image section case's data: the (H, W, C) image and its kernel, (k, k) or, for a separable
    case, the (k,) filter of rows and of columns alike."""

    shape: ImageCase
    image: np.ndarray
    kernel: np.ndarray


def _make_image_problem(case, rng):
    dtype = IMAGE_DTYPES[case.dtype]
    if dtype == np.uint8:
        image = rng.integers(0, 256, (case.H, case.W, case.C), dtype=np.uint8)
    else:
        image = rng.random((case.H, case.W, case.C), dtype=np.float32)
    if case.separable:  # a Gaussian of sigma k / 6, as cv2.getGaussianKernel chooses near this size
        taps = np.exp(-0.5 * ((np.arange(case.k) - case.k // 2) / (case.k / 6)) ** 2)
        kernel = (taps / taps.sum()).astype(np.float32)
    else:  # positive weights summing to 1, so that 8-bit results stay in range (a blur)
        kernel = rng.random((case.k, case.k), dtype=np.float32)
        kernel /= kernel.sum()
    return ImageProblem(case, image, kernel)


def _image_result(y):
    return (np.asarray(y, np.float64).reshape(-1),)


def _dwconv_image(problem, threads):
    image, kernel = problem.image, problem.kernel
    if problem.shape.separable:
        run = functools.partial(dwconv.sep_filter2d, image, kernel, kernel, num_threads=threads)
    else:
        run = functools.partial(dwconv.filter2d, image, kernel, num_threads=threads)
    return Contestant("dwconv HWC", run, _image_result)


def _cv2_image(problem):
    import cv2

    image, kernel = problem.image, problem.kernel
    if problem.shape.separable:
        run = functools.partial(cv2.sepFilter2D, image, -1, kernel, kernel, borderType=cv2.BORDER_REFLECT_101)
    else:
        run = functools.partial(cv2.filter2D, image, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
    return Contestant("cv2", run, _image_result)


def _scipy_image(problem):
    from scipy import ndimage

    case, image, kernel = problem.shape, problem.image, problem.kernel
    if case.k * case.k * case.H * case.W * case.C > SCIPY_MAX_TAPS_PIXELS and not case.separable:
        return None
    # mode "mirror" is OpenCV's BORDER_REFLECT_101; a float32 result, rounded below as OpenCV and
    # dwconv round (ndimage truncates to an integer output)
    output = np.float32 if image.dtype == np.uint8 else None

    def run():
        if case.separable:
            rows = ndimage.correlate1d(image, kernel, axis=0, mode="mirror", output=np.float32)
            y = ndimage.correlate1d(rows, kernel, axis=1, mode="mirror", output=output)
        else:
            y = ndimage.correlate(image, kernel[:, :, None], mode="mirror", output=output)
        return y if output is None else np.clip(np.rint(y), 0, 255).astype(np.uint8)

    return Contestant("scipy", run, _image_result)


def _torch_image(problem):
    """PyTorch's depthwise conv2d on the image as a float32 NCHW batch of one, converted beforehand
    (not timed), reflect-padded in the call; None for 8-bit images, which its convolutions refuse."""
    import torch
    import torch.nn.functional as F

    case = problem.shape
    if problem.image.dtype != np.float32:
        return None
    x = torch.from_numpy(np.ascontiguousarray(problem.image.transpose(2, 0, 1)[None]))
    pad = (case.k // 2,) * 4

    def weights(shape):
        return torch.from_numpy(np.broadcast_to(problem.kernel.reshape(shape[2:]), shape).copy())

    if case.separable:  # the column filter, then the row filter, as sepFilter2D (2k taps a pixel, not k*k)
        columns, rows = weights((case.C, 1, case.k, 1)), weights((case.C, 1, 1, case.k))

        def run():
            with torch.no_grad():
                return F.conv2d(F.conv2d(F.pad(x, pad, mode="reflect"), columns, groups=case.C), rows, groups=case.C)
    else:
        w = weights((case.C, 1, case.k, case.k))

        def run():
            with torch.no_grad():
                return F.conv2d(F.pad(x, pad, mode="reflect"), w, groups=case.C)

    return Contestant("torch", run, lambda y: _image_result(y.numpy()[0].transpose(1, 2, 0)))


def _image_bytes_and_flops(problem):
    """The image read and the result written; 2 flops per multiply-add, k*k a pixel (2k when
    separable) on each of H*W*C pixels."""
    case, image = problem.shape, problem.image
    taps = 2 * case.k if case.separable else case.k * case.k
    return 2 * image.nbytes, 2 * taps * image.size


def _images_agree(result, reference, dtype):
    """Integer images may differ by 1 where float sums in another order round the other way."""
    if np.dtype(dtype).kind in "iu":
        return np.abs(result[0] - reference[0]).max(initial=0) <= 1
    return _max_relative_error(result, reference) <= TOLERANCE


def _chunked_contestants(image, kernel, chunk, threads):
    """dwconv.dask and dask-image on `image` in (chunk, chunk, C) chunks, each computed by dask's
    threaded scheduler with `threads` workers (dwconv.dask's result by `.compute()`, and into an
    array of the caller's, `out=`, allocated once as a caller reusing it would), and dwconv's one
    in-memory call on the whole image; reflected borders (scipy's "mirror")."""
    import dask
    import dask.array as da
    from dask_image import ndfilters

    import dwconv.dask

    chunked = da.from_array(image, chunks=(chunk, chunk, image.shape[2]))
    filters = np.repeat(kernel[:, :, None], image.shape[2], axis=2)
    out = np.empty((1,) + image.shape, np.float32)

    def dwconv_dask():
        y = dwconv.dask.depthwise_conv2d(chunked[None], filters, padding="SAME", padding_mode="reflect")
        return y.compute(scheduler="threads", num_workers=threads)[0]

    def dwconv_dask_into():
        with dask.config.set(scheduler="threads", num_workers=threads):
            return dwconv.dask.depthwise_conv2d(chunked[None], filters, padding="SAME", padding_mode="reflect",
                                                out=out)[0]

    def dask_image():
        y = ndfilters.correlate(chunked, kernel[:, :, None], mode="mirror")
        return y.compute(scheduler="threads", num_workers=threads)

    in_memory = functools.partial(dwconv.filter2d, image, kernel, num_threads=threads)
    return [Contestant("dwconv.dask", dwconv_dask, _float32_result),
            Contestant("dwconv.dask out=", dwconv_dask_into, _float32_result),
            Contestant("dask-image", dask_image, _float32_result),
            Contestant("in memory", in_memory, _float32_result)]


def _float32_result(y):
    """A result for the cross-check as it is, float32 (in float64, the chunked image's is 1.5 GB)."""
    return (np.asarray(y).reshape(-1),)


# ----------------------------------------------------------------------------- peers


def _load_torch(threads):
    import torch

    torch.set_num_threads(threads)
    return [
        Peer(name, layout, "torch", torch.__version__,
             functools.partial(_torch_forward, channels_last=cl, label=name),
             functools.partial(_torch_backward, channels_last=cl, label=name),
             functools.partial(_torch_gradient, channels_last=cl, label=name),
             None if cl else _torch_image)
        for name, layout, cl in (("torch", "NCHW", False), ("torch_cl", "channels_last", True))
    ]


def _load_ort(threads):
    import onnx  # builds the model ORT runs
    import onnxruntime

    version = f"{onnxruntime.__version__} (onnx {onnx.__version__})"
    forward = functools.partial(_ort_forward, threads=threads)
    return [Peer("ort", "NCHW", "onnxruntime", version, forward, None, None)]


@contextlib.contextmanager
def _stderr_silenced():
    """Send file descriptor 2 to /dev/null: C++ libraries log there, below Python's sys.stderr."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _load_tf(threads):
    # TF's import logs info lines to stderr that no TF_CPP_MIN_LOG_LEVEL hides; an import error
    # still surfaces as the exception that load_peers reports.
    with _stderr_silenced():
        import tensorflow as tf

    # Must happen before TF's runtime starts.  One op at a time, as ORT: the backward graph's
    # two independent ops would otherwise run concurrently on twice the threads.
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    return [Peer("tf", "NHWC", "tensorflow", tf.__version__, _tf_forward, _tf_backward, _tf_gradient)]


def _load_cv2(threads):
    import cv2

    cv2.setNumThreads(threads)
    return [Peer("cv2", "HWC", "opencv", cv2.__version__, None, None, None, _cv2_image)]


def _load_scipy(threads):
    import scipy
    from scipy import ndimage  # noqa: F401 (what the contestants use; it fails here if broken)

    return [Peer("scipy", "HWC (1 thread)", "scipy", scipy.__version__, None, None, None, _scipy_image)]


# What each peer package's loader returns, the section kinds its peers time, and the pip names that
# install it: when the package is missing, its peers' columns say "n/a" in those sections and the
# header says what to install.
PeerPackage = collections.namedtuple("PeerPackage", "load peer_names kinds pip_names")
PEER_PACKAGES = {
    "torch": PeerPackage(_load_torch, ("torch", "torch_cl"), ("forward", "backward", "images"), ("torch",)),
    "onnxruntime": PeerPackage(_load_ort, ("ort",), ("forward",), ("onnxruntime", "onnx")),
    "tensorflow": PeerPackage(_load_tf, ("tf",), ("forward", "backward"), ("tensorflow-cpu",)),
    "opencv": PeerPackage(_load_cv2, ("cv2",), ("images",), ("opencv-python-headless",)),
    "scipy": PeerPackage(_load_scipy, ("scipy",), ("images",), ("scipy",)),
}


def _pip_names(packages):
    return " ".join(name for package in packages for name in PEER_PACKAGES[package].pip_names)


def load_peers(threads):
    """Import every installed peer and set its threads: (peers, {package: why not loaded})."""
    peers, missing = [], {}
    for package, peer_package in PEER_PACKAGES.items():
        try:
            peers += peer_package.load(threads)
        except Exception as exc:  # a broken install is as unusable as a missing one
            missing[package] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return peers, missing


def _unmeasured_peer_names(missing, kind=None):
    """The names of the peers of the packages that did not load (that time sections of `kind`, if
    given): their columns say n/a."""
    return [name for package in missing for name in PEER_PACKAGES[package].peer_names
            if kind is None or kind in PEER_PACKAGES[package].kinds]


# ----------------------------------------------------------------------------- timing


def _cpu_snapshot():
    """(CPU seconds used by all processes, by this one, wall time); None without /proc/stat."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    own = os.times()
    busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle, iowait
    return busy, own.user + own.system, time.perf_counter()


def _other_cpus(since):
    """CPUs kept busy on average by other processes since the snapshot; None if unknown."""
    now = _cpu_snapshot()
    if since is None or now is None:
        return None
    return max(0.0, (now[0] - since[0]) - (now[1] - since[1])) / (now[2] - since[2])


def _other_cpus_while_idle(seconds=0.5):
    snapshot = _cpu_snapshot()
    time.sleep(seconds)
    return _other_cpus(snapshot)


def _time_batch(run, reps):
    """Seconds per call over reps back-to-back calls."""
    start = time.perf_counter()
    for _ in range(reps):
        run()
    return (time.perf_counter() - start) / reps


def _repetitions(run, batch_seconds):
    """(calls per timed batch so that one batch lasts about batch_seconds, seconds per call).

    The estimate is the fastest of three tries after a warm-up call: a first call after a pause can
    take milliseconds (threads woken, a virtual CPU rescheduled), and an estimate taken from it once
    set a 0.05 ms call to 4 calls per batch, each batch then timing little but that wake-up.  A
    warm-up call that alone lasts a batch is the estimate: one call a batch, whatever the tries say."""
    warm_up = _time_batch(run, 1)
    if warm_up >= batch_seconds:
        return 1, warm_up
    reps = 1
    while True:
        per_call = min(_time_batch(run, reps) for _ in range(3))
        # Estimate from at least a fifth of the target, so timer resolution does not matter.
        if per_call * reps >= batch_seconds / 5:
            return max(1, round(batch_seconds / per_call)), per_call
        reps *= 4


def _round_order(contestants, r):
    """Round r's order: a shuffle of its own, fixed by r, so that whatever one contestant's batch
    leaves behind for the next falls on a different one in each round, in the few rounds the median
    leaves out. (A rotation kept every contestant after the same one in all rounds but one: dwconv
    NHWC after TensorFlow, which measured 14x14x576 at batch 16 0.4-0.6 ms where it takes 0.33 ms
    after anything else.)"""
    return random.Random(SEED + r).sample(contestants, len(contestants))


def _rounds_within_budget(rounds, batch_seconds):
    """The rounds, at most `rounds` and one at least, whose batches of batch_seconds each last at
    most CONTESTANT_SECONDS in all."""
    return max(1, min(rounds, int(CONTESTANT_SECONDS / batch_seconds)))


def _time_round_robin(contestants, rounds, batch_seconds, report_progress=lambda done, total: None,
                      first_calls=None):
    """Per-call seconds of every round, by label; contestants alternate within each round, in an
    order shuffled anew each round (_round_order).  A contestant whose batches would last more than
    CONTESTANT_SECONDS over the rounds takes part in the first rounds only (_rounds_within_budget).
    first_calls: the seconds of each contestant's cross-check call, by label; one of
    SLOW_CALL_SECONDS or more stands for its warm-up and estimate, one over CONTESTANT_SECONDS for
    its only sample.  report_progress(done, total) is called after each step (a repetition estimate
    or a timed batch), outside the timed batches."""
    reps, per_call, samples = {}, {}, {c.label: [] for c in contestants}
    first_calls = first_calls or {}
    total = len(contestants) * (rounds + 1)
    # The cross-check has just run every contestant: let their threads stop spinning first, or the
    # first estimate meets them (measured: a 0.3 ms dwconv call estimated at ~10 ms, so 3 calls per
    # batch, each batch then timing mostly the wake-up after the pause: 0.6-4.4 ms per call).
    time.sleep(max(c.spin_down for c in contestants))
    for c in contestants:
        first_call = first_calls.get(c.label, 0)
        if first_call >= SLOW_CALL_SECONDS:
            reps[c.label], per_call[c.label] = 1, first_call
            if first_call > CONTESTANT_SECONDS:
                samples[c.label].append(first_call)
        else:
            reps[c.label], per_call[c.label] = _repetitions(c.run, batch_seconds)
            time.sleep(c.spin_down)
        report_progress(len(reps), total)
    own_rounds = {label: 0 if samples[label] else _rounds_within_budget(rounds, reps[label] * per_call[label])
                  for label in reps}
    total = len(contestants) + sum(own_rounds.values())
    done = len(contestants)
    for r in range(rounds):
        for c in _round_order(contestants, r):
            if r >= own_rounds[c.label]:
                continue
            samples[c.label].append(_time_batch(c.run, reps[c.label]))
            done += 1
            report_progress(done, total)
            time.sleep(c.spin_down)
    return samples, reps


def _max_relative_error(results, reference):
    if len(results) != len(reference):
        return np.inf
    errors = [
        np.inf if a.shape != b.shape
        else float(np.max(np.abs(a - b))) / max(float(np.max(np.abs(b))), 1e-30)
        for a, b in zip(results, reference)
    ]
    return max(errors)


def _timed_call(run):
    """(run()'s result, the seconds it took)."""
    start = time.perf_counter()
    result = run()
    return result, time.perf_counter() - start


class Disagreement(Exception):
    """A contestant's result is not the reference's: raised by _cross_check(strict=True)."""


def _cross_check(contestants, case, agree=None, strict=False):
    """Run every contestant once (also its warm-up) and warn where it disagrees with the first:
    `agree(result, reference)`, by default a relative error of at most TOLERANCE; `strict`: raise
    Disagreement instead.  Returns the seconds of each call, by label."""
    result, seconds = _timed_call(contestants[0].run)
    reference, first_calls = contestants[0].as_nhwc(result), {contestants[0].label: seconds}
    for c in contestants[1:]:
        result, first_calls[c.label] = _timed_call(c.run)
        if c.as_nhwc is None:
            continue
        expected = reference if c.part is None else (reference[c.part],)
        result = c.as_nhwc(result)
        error = _max_relative_error(result, expected)
        if not (agree(result, expected) if agree else error <= TOLERANCE):
            disagreement = (f"{c.label} disagrees with {contestants[0].label} on {case} "
                            f"(max relative error {error:.2g})")
            if strict:
                raise Disagreement(disagreement)
            print(f"  warning: {disagreement}; its time compares different work")
    return first_calls


# ----------------------------------------------------------------------------- one section


def _contestants(problem, kind, layouts, peers, threads):
    if kind == "forward":
        own = [_dwconv_forward(problem, layout, threads) for layout in layouts]
        return own + [peer.forward(problem) for peer in peers]
    own = [_dwconv_backward(problem, layout, threads) for layout in layouts]
    helpers = [
        helper(problem, layout, threads)
        for helper in (_dwconv_forward_helper, _dwconv_input_grad_helper, _dwconv_filter_grad_helper)
        for layout in layouts
    ]
    alone = [peer.gradient(problem, which) for peer in peers if peer.gradient for which in GRADIENTS]
    return own + [peer.backward(problem) for peer in peers] + helpers + alone


def _section_shapes(section, args):
    suite = IMAGE_SUITE if section.kind == "images" else SUITE
    shapes = [s for s in suite if not args.shapes or s.name in args.shapes]
    if section.kind == "backward":
        shapes = [s for s in shapes if s.name not in FORWARD_ONLY]
    if args.quick and section.batch > 1 and not args.shapes:
        shapes = [s for s in shapes if s.name not in FORWARD_ONLY]  # torch NCHW: ~2 s a call
    return shapes


def _section_peers(section, peers):
    return [p for p in peers if getattr(p, section.kind) is not None]


def _measure_shape(section, shape, args, peers, rng, report_progress):
    if section.kind == "images":
        problem = _make_image_problem(shape, rng)
        contestants = [_dwconv_image(problem, args.threads)]
        contestants += [c for c in (peer.images(problem) for peer in peers) if c is not None]
        first_calls = _cross_check(contestants, shape.name,
                                   lambda result, reference: _images_agree(result, reference, problem.image.dtype))
    else:
        problem = _make_problem(shape, section.batch, section.kind, rng)
        contestants = _contestants(problem, section.kind, args.layout, peers, args.threads)
        first_calls = _cross_check(contestants, f"{shape.name} batch {section.batch}")
    return (problem,) + _time_contestants(contestants, args, report_progress, first_calls)


def _time_contestants(contestants, args, report_progress, first_calls):
    """_time_round_robin with the run's rounds and batch length: (median seconds by label, samples,
    repetitions, the CPUs other processes kept busy meanwhile)."""
    snapshot = _cpu_snapshot()
    samples, reps = _time_round_robin(contestants, args.rounds, args.batch_seconds, report_progress,
                                      first_calls)
    medians = {label: statistics.median(times) for label, times in samples.items()}
    return medians, samples, reps, _other_cpus(snapshot)


def _best_peer(medians, peers):
    if not peers:
        return None, None
    best = min(peers, key=lambda p: medians[p.name])
    return best.name, medians[best.name]


def _gradient_peers(peers):
    return [p for p in peers if p.gradient is not None]


def _gradients_alone(medians, peers, seconds_of_dwconv):
    """Each gradient's times alone (dwconv's and the peers'), and the best peer's ratio to dwconv's:
    {which: {"peers_ms", "best_peer", "ratio"}}."""
    alone = {}
    for which in GRADIENTS:
        times = {p.name: medians[f"{p.name} {which}"] for p in _gradient_peers(peers)}
        best = min(times, key=times.get) if times else None
        alone[which] = {"peers_ms": {name: 1e3 * t for name, t in times.items()}, "best_peer": best,
                        "ratio": times[best] / seconds_of_dwconv[which] if best else None}
    return alone


def _copy_reference(nbytes):
    """Which copy bandwidth a row moving nbytes compares with: the L3 copy's when it moves no more
    than that copy did (its bytes read + written), else the DRAM copy's."""
    return "L3" if nbytes <= 2 * L3_COPY_BYTES else "DRAM"


def _shape_rows(section, shape, problem, medians, peers, layouts, other_cpus, limits):
    """One comparison row per dwconv layout; `limits` are the machine's at the run's threads."""
    if section.kind == "images":  # one layout, and only the peers that took the case
        nbytes, flops = _image_bytes_and_flops(problem)
        layouts, peers = ("HWC",), [p for p in peers if p.name in medians]
    else:
        nbytes, flops = _bytes_moved(problem, section.kind), _flops(problem, section.kind)
    gigaflops = flops / 1e9
    reference = _copy_reference(nbytes)
    backward = section.kind == "backward"
    best, best_seconds = _best_peer(medians, peers)
    rows = []
    for layout in layouts:
        seconds = medians[f"dwconv {layout}"]
        gb_per_s, gflop_per_s = nbytes / 1e9 / seconds, gigaflops / seconds
        rows.append({
            "section": section.kind, "batch": section.batch, "shape": shape.name,
            "layout": layout, "dwconv_ms": 1e3 * seconds, "gb_per_s": gb_per_s,
            "gflop_per_s": gflop_per_s,
            "pct_of_peak": 100 * gflop_per_s / limits["fma_peak_gflops"],
            "pct_of_copy_bw": 100 * gb_per_s / limits[f"{reference.lower()}_copy_gb_per_s"],
            "copy_bw_reference": reference,
            "backward_over_forward": seconds / medians[f"dwconv fwd {layout}"] if backward else None,
            "dx_ms": 1e3 * medians[f"dwconv dx {layout}"] if backward else None,
            "dw_ms": 1e3 * medians[f"dwconv dW {layout}"] if backward else None,
            "alone": _gradients_alone(medians, peers, {which: medians[f"dwconv {which} {layout}"]
                                                       for which in GRADIENTS}) if backward else None,
            "peers_ms": {p.name: 1e3 * medians[p.name] for p in peers},
            "best_peer": best,
            "ratio": best_seconds / seconds if best else None,
            "other_cpus_meanwhile": other_cpus,
        })
    return rows


def _measurement_records(kind, batch, name, samples, reps):
    return [
        {"section": kind, "batch": batch, "shape": name,
         "contestant": label, "reps_per_round": reps[label],
         "median_ms": 1e3 * statistics.median(times), "round_ms": [1e3 * t for t in times]}
        for label, times in samples.items()
    ]


# ----------------------------------------------------------------------------- text output


def _fmt_ms(ms):
    """Three decimals below 10 ms, then one decimal fewer per decade."""
    decimals = max(0, 3 - max(0, int(np.floor(np.log10(ms)))))
    return f"{ms:.{decimals}f}"


def _fmt_pct(pct):
    """One decimal below 10 %, none above."""
    return f"{pct:.1f}" if pct < 10 else f"{pct:.0f}"


def _fmt_copy_pct(row):
    """% of the copy bandwidth, and which one: "41 L3", "63 DRAM"."""
    return f"{_fmt_pct(row['pct_of_copy_bw'])} {row['copy_bw_reference']}"


NOT_MEASURED = "n/a"


def _columns(section, peers, unmeasured):
    """`unmeasured`: the names of the peers not installed, whose columns say n/a."""
    gradients = ["dx ms", "dW ms", "bwd/fwd"] if section.kind == "backward" else []
    efficiency = ["GFLOP/s", "% peak", "GB/s", "% copy bw"]
    best = ["best peer", "ratio"] if peers else []
    return (["shape", "layout", "dwconv ms"] + gradients + efficiency + [p.name for p in peers]
            + unmeasured + best)


def _row_cells(row, section, peers, unmeasured, first_of_shape):
    gradients = [
        _fmt_ms(row["dx_ms"]), _fmt_ms(row["dw_ms"]), f"{row['backward_over_forward']:.2f}"
    ] if section.kind == "backward" else []
    efficiency = [f"{row['gflop_per_s']:.1f}", _fmt_pct(row["pct_of_peak"]),
                  f"{row['gb_per_s']:.1f}", _fmt_copy_pct(row)]
    # Peer times do not depend on dwconv's layout: shown once per shape ("-": the peer cannot take it).
    peer_cells = [(_fmt_ms(row["peers_ms"][p.name]) if p.name in row["peers_ms"] else "-") if first_of_shape
                  else "" for p in peers]
    peer_cells += [NOT_MEASURED if first_of_shape else "" for _ in unmeasured]
    best = [row["best_peer"] or "-", f"{row['ratio']:.2f}" if row["ratio"] else "-"] if peers else []
    return ([row["shape"] if first_of_shape else "", row["layout"], _fmt_ms(row["dwconv_ms"])]
            + gradients + efficiency + peer_cells + best)


SHAPE_WIDTH = 1 + max(len(shape.name) for shape in SUITE + IMAGE_SUITE)


def _widths(columns):
    # One space between columns: the backward table with three peers stays within 130 columns.
    return [SHAPE_WIDTH, 7] + [max(7, len(c) + 1) for c in columns[2:]]


def _print_cells(cells, widths):
    text = "".join(
        f"{c:<{w}}" if i < 2 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(cells, widths))
    )
    print(text.rstrip(), flush=True)


def _section_title(section):
    if section.kind == "images":
        return ("Images: one kernel on every channel, reflected borders, the image's dtype out (cv2.filter2D, "
                "sepFilter2D for gauss): median ms per call")
    what = {"forward": "Forward", "backward": "Backward (input and filter gradients)"}
    return f"{what[section.kind]}, batch {section.batch}: median ms per call"


# A shape's progress shows once it has run PROGRESS_AFTER_SECONDS.  A terminal's status line is
# rewritten at most every LIVE_PROGRESS_SECONDS: redrawing takes CPU from the next timed batch on a
# small machine.  Elsewhere a plain line is added at most every PLAIN_PROGRESS_SECONDS, so that logs
# stay short.
PROGRESS_AFTER_SECONDS = 3
LIVE_PROGRESS_SECONDS = 1
PLAIN_PROGRESS_SECONDS = 10


def _takes_control_codes(stream):
    """A terminal that is not dumb, and the user has not set NO_COLOR (no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def _fmt_duration(seconds):
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


class Progress:
    """Where a run stands, on stderr (stdout keeps the tables): a line as each of `shapes` shapes
    starts, and for one that runs longer than PROGRESS_AFTER_SECONDS, the share of its steps done and
    an estimate of the time left.  On a terminal the line is rewritten in place and erased when the
    shape is done, so that the table stays whole; elsewhere (a file, a pipe, NO_COLOR set) every
    update is a line of its own, without control codes."""

    def __init__(self, shapes, stream=None, clock=time.perf_counter):
        self.shapes = shapes
        self.stream = sys.stderr if stream is None else stream
        self.clock = clock
        self.live = _takes_control_codes(self.stream)
        self.started = 0
        self.title = ""
        self.start_time, self.last_shown = 0.0, None

    def note(self, text):
        """What the run does before the first shape, until finish()."""
        self._show(text)

    def start(self, what):
        self.started += 1
        self.title = f"[{self.started}/{self.shapes}] {what}"
        self.start_time, self.last_shown = self.clock(), None
        self._show(self.title)

    def update(self, done, total):
        """`done` of the shape's `total` steps are done (0 < done <= total)."""
        now = self.clock()
        elapsed = now - self.start_time
        interval = LIVE_PROGRESS_SECONDS if self.live else PLAIN_PROGRESS_SECONDS
        if elapsed < PROGRESS_AFTER_SECONDS or (self.last_shown is not None
                                                and now - self.last_shown < interval):
            return
        self.last_shown = now
        left = elapsed * (total - done) / done
        self._show(f"{self.title}: {100 * done // total}% done, about {_fmt_duration(left)} left")

    def finish(self):
        if self.live:
            self._show("")

    def _show(self, text):
        # "\r\x1b[K": back to the line's start, erase it.
        self.stream.write("\r\x1b[K" + text if self.live else text + "\n")
        self.stream.flush()


def _cpu_model():
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _dwconv_config():
    with contextlib.redirect_stdout(io.StringIO()) as text:
        dwconv.show_config()
    return text.getvalue()


def machine_limits(threads, peak_seconds):
    """FMA peak and copy bandwidths (dwconv/_machine.pxi) of 1 thread and of `threads` threads,
    the peak at the instruction-set level the kernels use."""
    snapshot = _cpu_snapshot()
    by_threads = {}
    for n in sorted({1, threads}):
        by_threads[str(n)] = {  # str: the keys a JSON file gives back
            "fma_peak_gflops": _kernels.fma_peak_gflops(n, peak_seconds),
            "dram_copy_gb_per_s": _kernels.copy_bandwidth(DRAM_COPY_BYTES, n),
            "l3_copy_gb_per_s": _kernels.copy_bandwidth(L3_COPY_BYTES, n, L3_COPY_TRIES),
        }
    return {"isa": _kernels.active_isa(), "dram_copy_bytes": DRAM_COPY_BYTES,
            "l3_copy_bytes": L3_COPY_BYTES, "by_threads": by_threads,
            "other_cpus_meanwhile": _other_cpus(snapshot)}


def machine_info(peers, missing, threads, peak_seconds):
    versions = {"dwconv": getattr(dwconv, "__version__", "unknown"), "numpy": np.__version__,
                "python": platform.python_version()}
    versions.update({p.package: p.version for p in peers})
    return {"cpu": _cpu_model(), "logical_cpus": os.cpu_count(), "platform": platform.platform(),
            "threads": threads, "versions": versions, "peers_not_loaded": missing,
            "dwconv_config": _dwconv_config(), "other_cpus_before_run": _other_cpus_while_idle(),
            "limits": machine_limits(threads, peak_seconds)}


def _threads_text(n):
    return f"{n} thread" + ("" if int(n) == 1 else "s")


def _print_limits(limits, threads):
    print(f"machine limits, measured at the kernels' instruction set ({limits['isa']}); copies count "
          "bytes read + written:")
    for n, figures in limits["by_threads"].items():
        print(f"  {_threads_text(n):<10} FMA peak {figures['fma_peak_gflops']:6.1f} GFLOP/s   copy "
              f"{figures['dram_copy_gb_per_s']:5.1f} GB/s DRAM ({limits['dram_copy_bytes'] >> 20} MB), "
              f"{figures['l3_copy_gb_per_s']:5.1f} GB/s L3 ({limits['l3_copy_bytes'] >> 20} MB)")
    others = limits["other_cpus_meanwhile"]
    if others is not None and others > BUSY_WARNING_CPUS:
        print(f"  ^ other processes used {others:.1f} CPUs meanwhile: limits unreliable, and so the % columns")
    print("GFLOP/s counts 2 flops per multiply-add of the taps (backward: input and filter gradients); "
          f"% peak: of the FMA peak of {_threads_text(threads)}")
    print("  (kernels from 9x9 on may run as Fourier transforms along the rows, with fewer multiply-adds: "
          "past 100% there)")
    print(f"% copy bw: of the copy bandwidth of {_threads_text(threads)}, L3's for rows moving at most "
          f"{2 * limits['l3_copy_bytes'] >> 20} MB (as much as the L3 copy), else DRAM's")


def _print_header(info, peers, args):
    print(f"dwconv benchmark: float32, {_threads_text(info['threads'])} for every framework, median of "
          f"{args.rounds} interleaved rounds of ~{1e3 * args.batch_seconds:.0f} ms each")
    print(f"CPU: {info['cpu']} ({info['logical_cpus']} logical CPUs)")
    others = info["other_cpus_before_run"]
    if others is not None and others > BUSY_WARNING_CPUS:
        print(f"warning: other processes kept {others:.1f} of {info['logical_cpus']} CPUs busy "
              "just before the run: expect slow, noisy times (ratios suffer too)")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    if peers:
        print("peers: " + ", ".join(f"{p.name} ({p.layout})" for p in peers))
    missing = info["peers_not_loaded"]
    if missing:
        print(f"not measured (n/a in the tables): {', '.join(_unmeasured_peer_names(missing))}; "
              f"to add them: pip install {_pip_names(missing)}")
        for package, why in missing.items():
            print(f"  {package}: {why}")
    print("ratio = best peer time / dwconv time (> 1: dwconv is faster); GB/s counts x read and "
          "y written (backward: x, dy read and dx written)")
    _print_limits(info["limits"], info["threads"])


# ----------------------------------------------------------------------------- driver


def _run_section(section, args, peers, unmeasured, rng, limits, progress):
    """Measure and print one section; returns (comparison rows, raw measurements).  `unmeasured`:
    the names of the peers not installed; `limits` are the machine's at the run's threads
    (machine_limits); `progress` a Progress."""
    peers = _section_peers(section, peers)
    print("\n" + _section_title(section))
    columns = _columns(section, peers, unmeasured)
    widths = _widths(columns)
    _print_cells(columns, widths)
    rows, records = [], []
    for shape in _section_shapes(section, args):
        progress.start(f"{section.kind}, batch {section.batch}: {shape.name}")
        problem, medians, samples, reps, others = _measure_shape(
            section, shape, args, peers, rng, progress.update
        )
        progress.finish()
        shape_rows = _shape_rows(section, shape, problem, medians, peers, args.layout, others, limits)
        for i, row in enumerate(shape_rows):
            _print_cells(_row_cells(row, section, peers, unmeasured, first_of_shape=i == 0), widths)
        _print_if_busy(others)
        _print_fewer_rounds(samples, args.rounds)
        rows += shape_rows
        records += _measurement_records(section.kind, section.batch, shape.name, samples, reps)
    if section.kind == "backward" and _gradient_peers(peers):
        _print_gradients_alone(section, rows, _gradient_peers(peers))
    return rows, records


def _print_if_busy(other_cpus):
    """The line under a row timed while other processes kept more than BUSY_WARNING_CPUS busy."""
    if other_cpus is not None and other_cpus > BUSY_WARNING_CPUS:
        print(f"  ^ other processes used {other_cpus:.1f} CPUs meanwhile: times unreliable")


def _print_fewer_rounds(samples, rounds):
    """Name the contestants of a shape timed in fewer rounds than the others, and why."""
    fewer = [f"{label} {len(times)} ({_fmt_ms(1e3 * statistics.median(times))} ms a call)"
             for label, times in samples.items() if len(times) < rounds]
    if fewer:
        print(f"  ^ fewer rounds, to time each contestant for at most ~{CONTESTANT_SECONDS:.0f} s (a longer "
              "call: its cross-check call alone): " + ", ".join(fewer))


def _print_gradients_alone(section, rows, peers):
    """The table of each gradient timed alone, dwconv's beside the peers' (measured in the same
    rounds as the backward table's)."""
    print(f"\nBackward, batch {section.batch}, each gradient alone: median ms per call")
    columns = ["shape", "layout"]
    for which in GRADIENTS:
        columns += [f"{which} ms"] + [p.name for p in peers] + ["best peer", "ratio"]
    widths = [SHAPE_WIDTH, 7] + [max(7, len(c) + 1) for c in columns[2:]]
    _print_cells(columns, widths)
    for i, row in enumerate(rows):
        first = i == 0 or rows[i - 1]["shape"] != row["shape"]
        cells = [row["shape"] if first else "", row["layout"]]
        for which in GRADIENTS:
            alone = row["alone"][which]
            cells += [_fmt_ms(row["dx_ms" if which == "dx" else "dw_ms"])]
            cells += [_fmt_ms(alone["peers_ms"][p.name]) if first else "" for p in peers]
            cells += [alone["best_peer"], f"{alone['ratio']:.2f}"]
        _print_cells(cells, widths)


def _run_chunked_images(args, rng, case=CHUNKED_CASE):
    """Measure and print dwconv.dask against dask-image on one chunked image (CHUNKED_CASE), and
    against one in-memory call; returns the medians in ms by contestant, or None when dask or
    dask-image does not import."""
    try:
        import dask.array  # noqa: F401
        import dask_image.ndfilters  # noqa: F401
    except ImportError as exc:
        print(f"\nChunked image (dask): not measured ({exc}); pip install \"dask[array]\" dask-image adds it")
        return None
    print(f"\nChunked image (dask): {case.H}x{case.W}x{case.C} float32 in {case.chunk}x{case.chunk}x{case.C} "
          f"chunks, {case.k}x{case.k} kernel, reflected borders, dask's threaded scheduler with "
          f"{_threads_text(args.threads)}: median ms per call of {CHUNKED_ROUNDS} interleaved rounds")
    image = rng.random((case.H, case.W, case.C), dtype=np.float32)
    kernel = rng.random((case.k, case.k), dtype=np.float32)
    kernel /= kernel.sum()
    contestants = _chunked_contestants(image, kernel, case.chunk, args.threads)
    _cross_check(contestants, "the chunked image")
    samples = {c.label: [] for c in contestants}
    for r in range(CHUNKED_ROUNDS):
        for c in _round_order(contestants, r):
            samples[c.label].append(_time_batch(c.run, 1))
            time.sleep(c.spin_down)
    ms = {label: 1e3 * statistics.median(times) for label, times in samples.items()}
    print("ratio = its time / dwconv.dask's (> 1: dwconv.dask is faster), computed / into `out`")
    columns = ["shape", "layout"] + list(ms) + ["dask-image ratio", "in memory ratio"]
    widths = _widths(columns)
    _print_cells(columns, widths)

    def ratios(label):
        return "/".join(f"{ms[label] / ms[dask]:.2f}" for dask in ("dwconv.dask", "dwconv.dask out="))
    _print_cells([f"{case.H}x{case.W}x{case.C}-k{case.k}-f32", "HWC"] + [_fmt_ms(t) for t in ms.values()]
                 + [ratios("dask-image"), ratios("in memory")], widths)
    return ms


# ----------------------------------------------------------------------------- PyTorch models


def _model_runs(cases):
    """(case, memory format, batch, pass) of every row of the models section, in the order timed."""
    return [(case, memory_format, batch, which) for case in cases for memory_format in case.memory_formats
            for batch in case.batches for which in case.targets]


def _import_error(module):
    """Why `module` does not import (its ImportError's message), or None when it does."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        return str(exc)
    return None


def _model_pair(case, memory_format):
    """The stock model of `case`, in eval mode and `memory_format`, and a converted copy of it."""
    import copy

    import torch

    import dwconv.torch
    from dwconv import _bench_models

    stock = getattr(_bench_models, case.build)(**case.options).eval()
    if memory_format == "channels_last":
        stock = stock.to(memory_format=torch.channels_last)
    return stock, dwconv.torch.convert(copy.deepcopy(stock))


def _model_step(model, x, which):
    """A call of `model` on `x` as the pass `which` (see ModelCase) times it.  It returns what the
    check compares: the output, or the gradients of the input and of every parameter (fwd+bwd: both)."""
    import torch

    if which == "forward":
        def forward():
            with torch.no_grad():
                return (model(x),)
        return forward
    x = x.detach().requires_grad_()  # a block inside a network: its input's gradient is computed too
    inputs = [x, *model.parameters()]
    if which == "fwd+bwd":
        def training_step():
            y = model(x)
            return (y, *torch.autograd.grad(y.sum(), inputs))
        return training_step
    # The backward alone: the forward runs once, here, and every call reuses its graph.  autograd.grad
    # rather than .backward(): fresh gradients each call, not sums into .grad that add work each call.
    y = model(x)
    dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(SEED))
    return lambda: torch.autograd.grad(y, inputs, dy, retain_graph=True)


def _model_contestants(case, memory_format, batch, which):
    """The stock model and the converted one, each called as the pass `which` on the same input; and
    the stock model's modules whose work the converted one's dwconv modules do."""
    import torch

    x = torch.randn(batch, *case.input_shape)
    if memory_format == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    models = _model_pair(case, memory_format)
    contestants = [Contestant(label, _model_step(model, x, which),
                              lambda results: tuple(t.detach().numpy() for t in results))
                   for label, model in zip(("torch", "dwconv"), models)]
    return contestants, _taken_over(*models, fused=which == "forward")


def _taken_over(stock, converted, fused):
    """The modules of `stock` whose work dwconv's modules in `converted` (a converted copy) do: its
    depthwise convolutions, and with `fused` (inference) the norms and activations fused into them."""
    import dwconv.torch

    ours = (dwconv.torch.Conv1d, dwconv.torch.Conv2d) + ((dwconv.torch._FusedAway,) if fused else ())
    return [module for module, counterpart in zip(stock.modules(), converted.modules())
            if isinstance(counterpart, ours)]


def _share_of_time(modules, step, calls=5):
    """The fraction of `step`'s time spent inside `modules` (their forward calls, and the backward
    calls of those the step differentiates), over `calls` calls."""
    spent, starts = [0.0], {}

    def before(module, *_):
        starts[module] = time.perf_counter()

    def after(module, *_):
        spent[0] += time.perf_counter() - starts[module]

    hooks = [hook for m in modules for hook in (m.register_forward_pre_hook(before), m.register_forward_hook(after),
                                                m.register_full_backward_pre_hook(before),
                                                m.register_full_backward_hook(after))]
    try:
        begin = time.perf_counter()
        for _ in range(calls):
            step()
        return spent[0] / (time.perf_counter() - begin)
    finally:
        for hook in hooks:
            hook.remove()


MODEL_COLUMNS = ("model", "pass", "batch", "format", "torch ms", "dwconv ms", "speedup", "target", "met", "bound")


def _model_cells(row):
    """A models row's cells, MODEL_COLUMNS; "met": whether the speedup reaches the target."""
    target, bound = row["target"], row.get("bound")
    return [row["name"], row["pass"], str(row["batch"]), row["memory_format"], _fmt_ms(row["torch_ms"]),
            _fmt_ms(row["dwconv_ms"]), f"{row['speedup']:.2f}", f"{target:g}" if target else "-",
            ("yes" if row["speedup"] >= target else "no") if target else "-", f"{bound:.2f}" if bound else "-"]


def _run_models(runs, args, progress):
    """Time and print the models section's rows `runs` (_model_runs); returns (rows, measurements).
    A converted model whose results are not stock PyTorch's stops the section: its times would
    compare different computations."""
    import torch

    import dwconv.torch

    torch.set_num_threads(args.threads)  # dwconv.torch gives dwconv the same count
    torch.manual_seed(SEED)
    # dwconv.torch's first call sets its operators up (~1 s): not in the first row's cross-check call,
    # which would take it for a slow call of the converted model (and time that one in fewer rounds)
    dwconv.torch.conv2d(torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 1, 1))
    print(f"\nPyTorch models (torch {torch.__version__}), stock against dwconv.torch.convert(), float32, "
          f"{_threads_text(args.threads)}: median ms per call of {args.rounds} interleaved rounds")
    print("speedup = torch ms / dwconv ms; target: the speedup issue 18 asks for; bound: the speedup if the\n"
          "stock layers dwconv takes over (depthwise convolutions; in inference also the norms and activations\n"
          "fused into them) took no time at all, from the share of the stock model's time spent in them")
    widths = ([1 + max(len(case.name) for case, *_ in runs), 8, 6, 1 + len("channels_last")]
              + [max(7, len(c) + 1) for c in MODEL_COLUMNS[4:]])
    _print_cells(MODEL_COLUMNS, widths)
    rows, records = [], []
    for case, memory_format, batch, which in runs:
        what = f"{case.name} {which} batch {batch} {memory_format}"
        progress.start(f"models: {what}")
        contestants, taken_over = _model_contestants(case, memory_format, batch, which)
        try:
            first_calls = _cross_check(contestants, what, strict=True)
        except Disagreement as exc:
            progress.finish()
            print(f"  error: {exc}; the models section stops here")
            break
        medians, samples, reps, others = _time_contestants(contestants, args, progress.update, first_calls)
        progress.finish()
        torch_ms, dwconv_ms = 1e3 * medians["torch"], 1e3 * medians["dwconv"]
        # (not for a backward alone: its graph, made before the hooks, calls none of them)
        bound = 1 / (1 - _share_of_time(taken_over, contestants[0].run)) if which != "backward" else None
        row = {"name": case.name, "pass": which, "batch": batch, "memory_format": memory_format,
               "torch_ms": torch_ms, "dwconv_ms": dwconv_ms, "speedup": torch_ms / dwconv_ms,
               "target": case.targets[which], "bound": bound, "other_cpus_meanwhile": others}
        _print_cells(_model_cells(row), widths)
        _print_if_busy(others)
        _print_fewer_rounds(samples, args.rounds)
        rows.append(row)
        records += _measurement_records("models", batch, what, samples, reps)
    return rows, records


def _sections(args):
    """The sections the options ask for that have shapes to measure."""
    sections = [Section("forward", batch) for batch in args.batch]
    sections += [Section("backward", batch) for batch in args.batch] if args.backward else []
    sections += [Section("images", 1)] if args.images else []
    return [section for section in sections if _section_shapes(section, args)]


RATIO_TICKS = (0.05, 0.1, 0.2, 0.33, 0.5, 0.67, 1, 1.5, 2, 3, 5, 10, 20)


def save_plot(rows, path):
    """Bar chart of the ratio best peer / dwconv per shape, one panel per section."""
    from matplotlib.figure import Figure  # lazily: only the chart needs matplotlib

    sections = list(dict.fromkeys((r["section"], r["batch"]) for r in rows if r["ratio"]))
    figure = Figure(figsize=(11, 3.2 * len(sections)), layout="constrained")
    for ax, (kind, batch) in zip(figure.subplots(len(sections), 1, squeeze=False)[:, 0], sections):
        ours = [r for r in rows if (r["section"], r["batch"]) == (kind, batch) and r["ratio"]]
        shapes = list(dict.fromkeys(r["shape"] for r in ours))
        layouts = list(dict.fromkeys(r["layout"] for r in ours))
        width = 0.8 / len(layouts)
        for i, layout in enumerate(layouts):
            ratios = {r["shape"]: r["ratio"] for r in ours if r["layout"] == layout}
            positions = [j + i * width for j, s in enumerate(shapes) if s in ratios]
            values = [ratios[s] for s in shapes if s in ratios]
            # Bars grow from 1 (a tie) up or down, on a log scale where 2x and 1/2x look alike.
            bars = ax.bar(positions, [v - 1 for v in values], width, bottom=1,
                          label=f"dwconv {layout}")
            ax.bar_label(bars, [f"{v:.2f}" for v in values], fontsize=7)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        reach = 1.3 * max(max(r["ratio"], 1 / r["ratio"]) for r in ours)
        ax.set_ylim(1 / reach, reach)  # symmetric about a tie
        ax.minorticks_off()
        ticks = [t for t in RATIO_TICKS if 1 / reach <= t <= reach]
        ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(shapes))], shapes,
                      rotation=20, ha="right", fontsize=8)
        ax.set_ylabel("best peer / dwconv")
        ax.set_title(f"{kind}, batch {batch}  (> 1: dwconv faster)")
        ax.legend(fontsize=8)
    figure.savefig(path, dpi=120)


def _markdown_cells(row):
    """A saved row's Markdown cells by column; fields that an older file lacks give no cell."""
    peer = row["best_peer"]
    cells = {"shape": row["shape"], "layout": row["layout"], "dwconv": _fmt_ms(row["dwconv_ms"])}
    if row.get("dx_ms"):
        cells.update({"dx": _fmt_ms(row["dx_ms"]), "dW": _fmt_ms(row["dw_ms"])})
    cells.update({"best peer": peer or "-",
                  "peer ms": _fmt_ms(row["peers_ms"][peer]) if peer else "-",
                  "ratio": f"{row['ratio']:.2f}" if row["ratio"] else "-"})
    if row["backward_over_forward"]:
        cells["bwd/fwd"] = f"{row['backward_over_forward']:.2f}"
    if "gflop_per_s" in row:
        cells.update({"GFLOP/s": f"{row['gflop_per_s']:.1f}", "% peak": _fmt_pct(row["pct_of_peak"])})
    cells["GB/s"] = f"{row['gb_per_s']:.1f}"
    if "pct_of_copy_bw" in row:
        cells["% copy bw"] = _fmt_copy_pct(row)
    return cells


def _markdown_alone_cells(row):
    cells = [row["shape"], row["layout"]]
    for which, ms in (("dx", row["dx_ms"]), ("dW", row["dw_ms"])):
        alone = row["alone"][which]
        cells += [_fmt_ms(ms), alone["best_peer"], _fmt_ms(alone["peers_ms"][alone["best_peer"]]),
                  f"{alone['ratio']:.2f}"]
    return cells


def _markdown_limits(machine):
    """The sentence on the machine's limits, for a file that has them."""
    limits = machine["limits"]
    figures = limits["by_threads"][str(machine["threads"])]
    return (f"Machine limits at {_threads_text(machine['threads'])}, measured: FMA peak "
            f"{figures['fma_peak_gflops']:.0f} GFLOP/s ({limits['isa']}), copy bandwidth "
            f"{figures['dram_copy_gb_per_s']:.1f} GB/s DRAM, {figures['l3_copy_gb_per_s']:.1f} GB/s L3 "
            "(bytes read + written); % peak and % copy bw compare GFLOP/s (2 per multiply-add of the taps) "
            f"and GB/s with them, the L3 figure for rows moving at most {2 * limits['l3_copy_bytes'] >> 20} MB. "
            "Kernels from 9x9 on may run as Fourier transforms along the rows, with fewer multiply-adds "
            "than the taps: their % peak can pass 100.")


def _markdown_models(rows):
    """The models section's table, for a file that has one."""
    columns = [c.removesuffix(" ms") for c in MODEL_COLUMNS]
    return (["", "**PyTorch models**, stock against `dwconv.torch.convert()` (ms; speedup = torch / dwconv)", "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
            + ["| " + " | ".join(_model_cells(row)) + " |" for row in rows])


def markdown_tables(saved):
    """Markdown tables (one per section, and the models section's) of a results file saved by --json."""
    rows, machine = saved["comparisons"], saved["machine"]
    lines = [f"Measured with `python -m dwconv bench`: {machine['cpu']}, "
             f"{machine['threads']} threads for every framework, float32; "
             "ratio = best peer's time / dwconv's (> 1: dwconv is faster)."]
    if "limits" in machine:
        lines.append(_markdown_limits(machine))
    for section, batch in dict.fromkeys((row["section"], row["batch"]) for row in rows):
        cells = [_markdown_cells(row) for row in rows if (row["section"], row["batch"]) == (section, batch)]
        columns = list(dict.fromkeys(column for row_cells in cells for column in row_cells))
        lines += ["", f"**{section.capitalize()}, batch {batch}** (ms)", "",
                  "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(c.get(column, "-") for column in columns) + " |" for c in cells]
        alone = [row for row in rows if (row["section"], row["batch"]) == (section, batch)
                 and (row.get("alone") or {}).get("dx", {}).get("best_peer")]
        if alone:
            lines += ["", f"**{section.capitalize()}, batch {batch}, each gradient alone** (ms)", "",
                      "| shape | layout | dx | best peer | peer ms | ratio | dW | best peer | peer ms | ratio |",
                      "|" + "---|" * 10]
            lines += ["| " + " | ".join(_markdown_alone_cells(row)) + " |" for row in alone]
    if saved.get("models"):
        lines += _markdown_models(saved["models"])
    return "\n".join(lines)


RESULTS_FILE = "bench-results.json"


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m dwconv bench",
        description="Time dwconv against PyTorch, ONNX Runtime and TensorFlow on the "
                    "depthwise-convolution suite, interleaved, and print ratios.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="~20 s run: batch 1 only, fewer rounds, no backward")
    parser.add_argument("--batch", type=int, nargs="+", help="batch sizes (default: 1 16)")
    parser.add_argument("--layout", type=str.upper, nargs="+", choices=LAYOUTS,
                        default=list(LAYOUTS), help="dwconv layouts (default: both)")
    parser.add_argument("--peers", action=argparse.BooleanOptionalAction,
                        help="measure the peer frameworks (default: those installed; "
                             "--peers fails when none is)")
    parser.add_argument("--backward", action=argparse.BooleanOptionalAction,
                        help="time gradients at each batch size "
                             "(default: yes, except under --quick)")
    parser.add_argument("--threads", type=int, default=2,
                        help="threads for dwconv and every peer (default: 2)")
    parser.add_argument("--images", action=argparse.BooleanOptionalAction,
                        help="time image filtering against OpenCV, PyTorch and scipy.ndimage, and a chunked "
                             "image with dwconv.dask against dask-image "
                             "(default: yes, except under --quick)")
    parser.add_argument("--models", action=argparse.BooleanOptionalAction,
                        help="time pieces of PyTorch models (ConvNeXt, MobileNetV2, Mamba's causal conv1d) "
                             "stock and after dwconv.torch.convert(), needs torch "
                             "(default: yes, except under --quick or --shapes)")
    parser.add_argument("--shapes", nargs="+", metavar="NAME", choices=[s.name for s in SUITE + IMAGE_SUITE],
                        help="only these shapes of the suite and of the image section")
    parser.add_argument("--json", metavar="FILE",
                        help=f"where to save every measurement and the machine's description "
                             f"(default: {RESULTS_FILE})")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="where to save the bar chart of the ratios, drawn with matplotlib "
                             "(default: beside the JSON file, named as it is but .png)")
    parser.add_argument("--no-save", action="store_true", help="write neither file")
    parser.add_argument("--markdown", metavar="FILE.json",
                        help="measure nothing: print the results saved in FILE.json as Markdown tables")
    args = parser.parse_args(argv)
    if args.no_save and (args.json or args.plot):
        parser.error("--no-save contradicts --json and --plot")
    if not args.no_save:
        args.json = args.json or RESULTS_FILE
        args.plot = args.plot or os.path.splitext(args.json)[0] + ".png"
        # Checked now rather than when the run, minutes long, is over.
        for option, path in (("--json", args.json), ("--plot", args.plot)):
            if not os.path.isdir(os.path.dirname(path) or "."):
                parser.error(f"{option} {path}: no such folder")
    if args.threads < 1:
        parser.error("--threads must be a positive int")
    if args.batch is not None and min(args.batch) < 1:
        parser.error("--batch sizes must be positive ints")
    if args.batch is None:
        args.batch = [1] if args.quick else [1, 16]
    if args.backward is None:
        args.backward = not args.quick
    if args.images is None:
        args.images = not args.quick
    if args.models is None:
        args.models = not args.quick and not args.shapes
    args.rounds = QUICK_ROUNDS if args.quick else ROUNDS
    args.batch_seconds = QUICK_BATCH_SECONDS if args.quick else BATCH_SECONDS
    args.peak_seconds = QUICK_PEAK_SECONDS if args.quick else PEAK_SECONDS
    return parser, args


def main(argv=None):
    start = time.perf_counter()
    parser, args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.markdown:
        with open(args.markdown) as saved:
            print(markdown_tables(json.load(saved)))
        return 0
    sections = _sections(args)
    # torch imported now, so that the progress counts the models' rows only where they can run
    models_missing = _import_error("dwconv._bench_models") if args.models else None
    model_runs = _model_runs(MODEL_CASES) if args.models and not models_missing else []
    progress = Progress(sum(len(_section_shapes(section, args)) for section in sections) + len(model_runs))
    progress.note("importing the peer frameworks and measuring the machine's limits")
    peers, missing = load_peers(args.threads) if args.peers is not False else ([], {})
    if args.peers and not peers:
        progress.finish()
        why = "; ".join(f"{package}: {reason}" for package, reason in missing.items())
        parser.error(f"--peers: no peer framework could be imported ({why}); "
                     f"pip install {_pip_names(PEER_PACKAGES)} adds them all")
    info = machine_info(peers, missing, args.threads, args.peak_seconds)
    progress.finish()
    _print_header(info, peers, args)
    rng = np.random.default_rng(SEED)
    rows, records = [], []
    for section in sections:
        section_rows, section_records = _run_section(
            section, args, peers, _unmeasured_peer_names(missing, section.kind), rng,
            info["limits"]["by_threads"][str(args.threads)], progress
        )
        rows += section_rows
        records += section_records
    # the chunked image runs with the whole image section (not for a few --shapes)
    chunked_ms = _run_chunked_images(args, rng) if args.images and not args.shapes else None
    if models_missing:
        print(f"\nPyTorch models: not measured ({models_missing}); pip install torch adds them")
    model_rows = None
    if model_runs:
        model_rows, model_records = _run_models(model_runs, args, progress)
        records += model_records
    print(f"\ntotal run time {time.perf_counter() - start:.0f} s")
    if not args.no_save:
        print(_save_results(args, {"machine": info, "settings": vars(args),
                                   "comparisons": rows, "measurements": records,
                                   "chunked_image_ms": chunked_ms, "models": model_rows}))
    return 0


def _save_results(args, results):
    """Write the results to args.json and their chart to args.plot; returns the line that says so."""
    with open(args.json, "w") as out:
        json.dump(results, out, indent=1)
    if not any(row["ratio"] for row in results["comparisons"]):
        return f"results written to {args.json}; no chart: no peer was measured, so there is no ratio"
    try:
        save_plot(results["comparisons"], args.plot)
    except ImportError as exc:
        return (f"results written to {args.json}; chart skipped ({exc}): "
                "pip install matplotlib to get it")
    return f"results written to {args.json} and {args.plot}"
