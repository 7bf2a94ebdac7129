"""dwconv.torch: the operator's results and gradients against torch.nn.functional.conv2d
(groups=C), its first and second derivatives by finite differences (gradcheck, gradgradcheck),
memory formats, the modules against nn.Conv1d / nn.Conv2d, convert() on a MobileNetV2 and a
ConvNeXt block, torch.compile, and the errors."""
import copy
import shutil
import sys

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F
from fresh_python import fresh_python
from torch import nn

import dwconv.torch as dt

# (stride, padding, dilation, kernel): every padding form, with strides, dilations, even and
# non-square kernels
GEOMETRIES = [
    (1, 0, 1, (3, 3)),
    (2, 1, 1, (3, 3)),
    ((1, 2), (2, 1), (2, 1), (3, 5)),
    (1, "same", 1, (5, 5)),
    (1, "same", (1, 2), (2, 4)),
    (2, "valid", 1, (3, 2)),
    (1, ((2, 0), (1, 3)), 1, (3, 3)),
]
MODES = ["zeros", "reflect", "replicate", "circular"]


def geometry_id(g):
    return f"s{g[0]}-p{g[1]}-d{g[2]}-k{g[3]}".replace(" ", "")


def memory_format(channels_last):
    return torch.channels_last if channels_last else torch.contiguous_format


def reference(x, w, b, stride, padding, dilation, mode):
    """PyTorch's own depthwise convolution, padding as nn.Conv2d does for the modes besides zeros."""
    if isinstance(padding, str):
        if padding == "same":
            totals = [d * (k - 1) for k, d in zip(w.shape[2:], nn.modules.utils._pair(dilation))]
            padding = ((totals[0] // 2, totals[0] - totals[0] // 2), (totals[1] // 2, totals[1] - totals[1] // 2))
        else:
            padding = 0
    if isinstance(padding, int):
        padding = (padding, padding)
    if not isinstance(padding[0], tuple):
        padding = ((padding[0], padding[0]), (padding[1], padding[1]))
    (top, bottom), (left, right) = padding
    x = F.pad(x, (left, right, top, bottom), mode="constant" if mode == "zeros" else mode)
    return F.conv2d(x, w, b, stride, 0, dilation, x.shape[1])


def case(channels_last, kernel, M=2, N=2, C=3, H=7, W=8, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, C, H, W, dtype=dtype, generator=g).to(memory_format=memory_format(channels_last))
    w = torch.randn(C * M, 1, *kernel, dtype=dtype, generator=g)
    b = torch.randn(C * M, dtype=dtype, generator=g)
    return x.requires_grad_(), w.requires_grad_(), b.requires_grad_()


@pytest.mark.parametrize("channels_last", [False, True], ids=["NCHW", "channels_last"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=geometry_id)
def test_gradcheck(geometry, mode, channels_last):
    """First and second derivatives in float64 by finite differences, bias or not, M = 2 and 1
    (small: the checks call the operators once per element and derivative)."""
    stride, padding, dilation, kernel = geometry
    for M, with_bias in ((2, True), (1, False)):
        x, w, b = case(channels_last, kernel, M=M, N=1, C=2, H=6, W=7, seed=GEOMETRIES.index(geometry))
        args = (x, w, b) if with_bias else (x, w)

        def conv(x, w, b=None):
            return dt.conv2d(x, w, b, stride, padding, dilation, padding_mode=mode)

        assert torch.autograd.gradcheck(conv, args)
        assert torch.autograd.gradgradcheck(conv, args)
    # one of the two: the input's or the weight's gradient operator alone, not the three together
    assert torch.autograd.gradgradcheck(lambda x: conv(x, w.detach()), (x,))
    assert torch.autograd.gradgradcheck(lambda w: conv(x.detach(), w), (w,))


@pytest.mark.parametrize("channels_last", [False, True], ids=["NCHW", "channels_last"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=geometry_id)
def test_equals_torch(geometry, mode, channels_last):
    """Result and all three gradients equal PyTorch's in float32, in the input's memory format."""
    stride, padding, dilation, kernel = geometry
    x, w, b = case(channels_last, kernel, C=5, H=11, W=12, dtype=torch.float32, seed=1)
    y = dt.conv2d(x, w, b, stride, padding, dilation, groups=5, padding_mode=mode)
    ref = reference(x, w, b, stride, padding, dilation, mode)
    torch.testing.assert_close(y, ref)
    assert y.is_contiguous(memory_format=memory_format(channels_last))
    dy = torch.randn_like(ref)
    got = torch.autograd.grad(y, (x, w, b), dy)
    expected = torch.autograd.grad(ref, (x, w, b), dy)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("channels_last", [False, True], ids=["NCHW", "channels_last"])
def test_no_layout_copies(channels_last):
    """The input is read and the result handed back without copies: the result's memory is the
    array dwconv wrote, in the input's memory format."""
    x, w, b = case(channels_last, (3, 3), C=4, dtype=torch.float32)
    array = dt._array(x, dt._format(x))
    assert array.ctypes.data == x.data_ptr()
    y = dt.conv2d(x, w, b, padding=1)
    assert y.is_contiguous(memory_format=memory_format(channels_last))
    assert y.is_contiguous() != channels_last


def test_float16_and_unbatched():
    x, w, b = case(False, (3, 3), dtype=torch.float32)
    half = dt.conv2d(x.half(), w.half(), b.half(), padding=1)
    assert half.dtype == torch.float16
    torch.testing.assert_close(half.float(), F.conv2d(x, w, b, padding=1, groups=3), rtol=2e-3, atol=2e-3)
    torch.testing.assert_close(dt.conv2d(x[0], w, b, padding=1), F.conv2d(x[0], w, b, padding=1, groups=3))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("channels_last", [False, True], ids=["NCL", "NLC-transposed"])
def test_conv1d_equals_nn(mode, channels_last):
    """dwconv's Conv1d equals nn.Conv1d (same seed, same weights) in result and gradients, on a
    contiguous (N, C, L) input and on a transposed (N, L, C) one (a Mamba block's layout)."""
    kwargs = {"in_channels": 6, "out_channels": 12, "kernel_size": 4, "stride": 2, "padding": 3, "dilation": 2,
              "groups": 6, "padding_mode": mode}
    torch.manual_seed(2)
    ours = dt.Conv1d(**kwargs)
    torch.manual_seed(2)
    theirs = nn.Conv1d(**kwargs)
    torch.testing.assert_close(ours.weight, theirs.weight)
    x = torch.randn(3, 20, 6).transpose(1, 2) if channels_last else torch.randn(3, 6, 20)
    x.requires_grad_()
    y, ref = ours(x), theirs(x)
    torch.testing.assert_close(y, ref)
    dy = torch.randn_like(ref)
    for got, expected in zip(torch.autograd.grad(y, (x, ours.weight, ours.bias), dy),
                             torch.autograd.grad(ref, (x, theirs.weight, theirs.bias), dy)):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_conv1d_causal_and_same():
    """A causal convolution (padding k-1, the last k-1 outputs dropped) and padding="same"."""
    torch.manual_seed(3)
    theirs = nn.Conv1d(8, 8, 4, padding=3, groups=8)
    ours = dt.convert(nn.Conv1d(8, 8, 4, padding=3, groups=8))
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 8, 30)
    torch.testing.assert_close(ours(x)[..., :30], theirs(x)[..., :30])
    same = nn.Conv1d(8, 8, 5, padding="same", groups=8)
    torch.testing.assert_close(dt.convert(same)(x), F.conv1d(x, same.weight, same.bias, padding=2, groups=8))


def test_modules_are_drop_in():
    """Same constructor, initialization and state_dict keys as nn.Conv2d / nn.Conv1d."""
    for ours_cls, theirs_cls in ((dt.Conv2d, nn.Conv2d), (dt.Conv1d, nn.Conv1d)):
        torch.manual_seed(4)
        ours = ours_cls(8, 16, 3, padding=1, groups=8)
        torch.manual_seed(4)
        theirs = theirs_cls(8, 16, 3, padding=1, groups=8)
        assert isinstance(ours, theirs_cls)
        assert ours.state_dict().keys() == theirs.state_dict().keys()
        for key, value in theirs.state_dict().items():
            torch.testing.assert_close(ours.state_dict()[key], value)


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expansion, 3x3 depthwise, 1x1 projection, batch norms, ReLU6."""

    def __init__(self, channels, expansion=6, stride=1):
        super().__init__()
        hidden = channels * expansion
        self.stride = stride
        self.layers = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
            nn.Conv2d(hidden, channels, 1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x):
        y = self.layers(x)
        return x + y if self.stride == 1 else y


class ConvNeXtBlock(nn.Module):
    """ConvNeXt's block: 7x7 depthwise, LayerNorm over channels, MLP, layer scale, residual."""

    def __init__(self, dim):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.gamma = nn.Parameter(torch.full((dim,), 0.5))

    def forward(self, x):
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.gamma * self.mlp(self.norm(y))
        return x + y.permute(0, 3, 1, 2)


def converted_copy(model):
    """A converted copy of `model`: the same parameter values, its own Parameter objects."""
    return dt.convert(copy.deepcopy(model))


@pytest.mark.parametrize("channels_last", [False, True], ids=["NCHW", "channels_last"])
@pytest.mark.parametrize("make", [lambda: nn.Sequential(InvertedResidual(8), InvertedResidual(8, stride=2)),
                                  lambda: nn.Sequential(ConvNeXtBlock(16), ConvNeXtBlock(16))],
                         ids=["MobileNetV2", "ConvNeXt"])
def test_converted_models_equal_the_originals(make, channels_last):
    torch.manual_seed(5)
    model = make()
    converted = converted_copy(model)
    swapped = [m for m in converted.modules() if isinstance(m, (dt.Conv2d, dt.Conv1d))]
    assert len(swapped) == 2
    assert all(type(m) is not dt.Conv2d for m in converted.modules() if isinstance(m, nn.Conv2d) and m.groups == 1)
    x = torch.randn(2, *((8, 12, 12) if isinstance(model[0], InvertedResidual) else (16, 10, 10)))
    x = x.to(memory_format=memory_format(channels_last))
    y, ref = converted(x), model(x)
    torch.testing.assert_close(y, ref, rtol=1e-4, atol=1e-4)
    y.square().sum().backward()
    ref.square().sum().backward()
    for (name, got), expected in zip(converted.named_parameters(), model.parameters()):
        torch.testing.assert_close(got.grad, expected.grad, rtol=1e-3, atol=1e-3, msg=name)


def test_convert_shares_parameters():
    conv = nn.Conv2d(8, 8, 3, padding=1, groups=8)
    dense = nn.Conv2d(8, 8, 3, padding=1)
    model = nn.Sequential(nn.Sequential(conv), dense)
    assert dt.convert(model) is model
    swapped = model[0][0]
    assert type(swapped) is dt.Conv2d
    assert swapped.weight is conv.weight and swapped.bias is conv.bias
    assert model[1] is dense
    alone = dt.convert(nn.Conv1d(4, 4, 3, groups=4, bias=False))
    assert type(alone) is dt.Conv1d and alone.bias is None


@pytest.mark.parametrize("activation", [nn.ReLU(), nn.ReLU6(), nn.Hardswish(), nn.SiLU(), nn.GELU(), nn.Sigmoid(),
                                        nn.Tanh(), None], ids=lambda a: type(a).__name__)
@pytest.mark.parametrize("norm", [True, False], ids=["norm", "no_norm"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["NCHW", "channels_last"])
def test_fused_norm_and_activation(activation, norm, channels_last):
    """A depthwise conv's BatchNorm2d and activation run inside its call in eval mode without
    autograd, equal to the modules apart; in training and with autograd each module works alone;
    parameters, state_dict keys and module types stay; refolded when the statistics change."""
    torch.manual_seed(7)
    layers = [nn.Conv2d(6, 12, 3, padding=1, groups=6, bias=not norm)]
    layers += [nn.BatchNorm2d(12)] if norm else []
    layers += [activation] if activation is not None else []
    model = nn.Sequential(*layers, nn.Conv2d(12, 4, 1))
    with torch.no_grad():  # statistics far from the initial ones, as a trained model's
        for batch_norm in model.modules():
            if isinstance(batch_norm, nn.BatchNorm2d):
                batch_norm.running_mean.uniform_(-1, 1), batch_norm.running_var.uniform_(0.5, 2)
                batch_norm.weight.uniform_(0.5, 1.5), batch_norm.bias.uniform_(-0.5, 0.5)
    model.eval()
    converted = converted_copy(model)
    conv = converted[0]
    assert (conv._fusion is not None) == (len(layers) > 1)
    assert list(converted.state_dict()) == list(model.state_dict())
    assert [isinstance(a, type(b)) for a, b in zip(converted, model)] == [True] * len(model)
    x = (3 * torch.randn(2, 6, 9, 9)).to(memory_format=memory_format(channels_last))

    def check(fused):
        with torch.no_grad():
            assert conv.fused() is fused
            torch.testing.assert_close(converted(x), model(x), rtol=1e-5, atol=1e-5)

    check(fused=len(layers) > 1)
    torch.testing.assert_close(converted(x), model(x), rtol=1e-5, atol=1e-5)  # with autograd: apart
    converted.train(), model.train()
    check(fused=False)
    converted.eval(), model.eval()
    if norm:  # new statistics are folded in on the next call
        for m in (converted, model):
            m[1].running_var.mul_(3)
        check(fused=True)


def test_fusion_only_in_plain_sequentials():
    """The modules after a depthwise conv are fused only where nn.Sequential runs them in order,
    and not when the model asks for none."""

    class Reordered(nn.Sequential):
        def forward(self, x):
            return self[0](self[1](x))

    def count(model):
        return sum(m._fusion is not None for m in model.modules() if isinstance(m, dt.Conv2d))

    def make():
        return nn.Sequential(nn.Conv2d(4, 4, 3, groups=4), nn.BatchNorm2d(4), nn.ReLU())

    assert count(dt.convert(make())) == 1
    assert count(dt.convert(make(), fuse=False)) == 0
    assert count(dt.convert(nn.Sequential(Reordered(nn.ReLU(), nn.Conv2d(4, 4, 3, groups=4))))) == 0
    # running statistics absent (batch statistics in eval too): the norm is not folded
    untracked = dt.convert(nn.Sequential(nn.Conv2d(4, 4, 3, groups=4), nn.BatchNorm2d(4, track_running_stats=False)))
    assert count(untracked) == 0


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_torch_compile(backend):
    """torch.compile traces the operator as one opaque call (fake tensors, AOTAutograd's joint
    graph), results and gradients as eager; inductor also generates C++ around it."""
    if backend == "inductor" and shutil.which("g++") is None:
        pytest.skip("inductor compiles C++ and this machine has no g++")
    x, w, b = case(True, (3, 3), dtype=torch.float32)

    def block(x, w, b):
        return torch.relu(dt.conv2d(x, w, b, 1, "same")) * 2

    compiled = torch.compile(block, backend=backend, fullgraph=True)
    y = compiled(x, w, b)
    ref = block(x, w, b)
    torch.testing.assert_close(y, ref)
    torch.testing.assert_close(torch.autograd.grad(y.sum(), (x, w, b)), torch.autograd.grad(ref.sum(), (x, w, b)))


def test_torch_export_and_jit_trace():
    """Both record the operator as one call (torch.jit.script cannot read dwconv.torch's Python)."""
    model = dt.convert(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.ReLU()))
    x = torch.randn(1, 4, 8, 8)
    exported = torch.export.export(model, (x,))
    assert "dwconv.conv2d" in str(exported.graph)
    torch.testing.assert_close(exported.module()(x), model(x))
    traced = torch.jit.trace(model, x)
    assert "dwconv::conv2d" in str(traced.inlined_graph)
    torch.testing.assert_close(traced(x), model(x))


@pytest.mark.parametrize("call, match", [
    (lambda x, w: dt.conv2d(x, w, groups=1), r"`groups`.*got 1"),
    (lambda x, w: dt.conv2d(x, torch.randn(6, 3, 3, 3)), r"`weight`.*\(6, 3, 3, 3\)"),
    (lambda x, w: dt.conv2d(x, torch.randn(7, 1, 3, 3)), r"`weight`.*\(7, 1, 3, 3\)"),
    (lambda x, w: dt.conv2d(x, w, torch.randn(5)), r"`bias`.*\(5,\)"),
    (lambda x, w: dt.conv2d(x, w, padding="full"), r"`padding`.*'full'"),
    (lambda x, w: dt.conv2d(x, w, stride=2, padding="same"), r"`padding`='same'.*stride \(2, 2\)"),
    (lambda x, w: dt.conv2d(x, w, padding_mode="wrap"), r"`padding_mode`.*'wrap'"),
    (lambda x, w: dt.conv2d(x[0, 0], w), r"`input`.*\(7, 8\)"),
    (lambda x, w: dt.conv2d(x.to("meta"), w.to("meta")), r"`input`.*meta"),
    (lambda x, w: dt.conv2d(x, w.to("meta")), r"`weight`.*meta"),
    (lambda x, w: dt.Conv2d(3, 6, 3), r"`groups`.*groups=1"),
    (lambda x, w: dt.Conv1d(4, 4, 3, groups=2), r"`groups`.*groups=2"),
])
def test_value_errors(call, match):
    x, w, _ = case(False, (3, 3))
    with pytest.raises(ValueError, match=match):
        call(x.detach(), w.detach())


@pytest.mark.parametrize("call, match", [
    (lambda x, w: dt.conv2d(x.numpy(), w), r"`input`.*ndarray"),
    (lambda x, w: dt.conv2d(x, w.float()), r"`weight`.*torch.float32"),
    (lambda x, w: dt.conv2d(x, w, [0.0] * 6), r"`bias`.*list"),
    (lambda x, w: dt.conv2d(x.int(), w.int()), r"`input`.*torch.int32"),
    (lambda x, w: dt.conv2d(x, w, stride=(1, 2, 3)), r"`stride`.*\(1, 2, 3\)"),
    (lambda x, w: dt.conv2d(x, w, dilation=1.5), r"`dilation`.*1.5"),
    (lambda x, w: dt.convert(w), r"`model`.*Tensor"),
])
def test_type_errors(call, match):
    x, w, _ = case(False, (3, 3))
    with pytest.raises(TypeError, match=match):
        call(x.detach(), w.detach())


def test_cuda_without_cupy(monkeypatch):
    """CUDA tensors need CuPy; without it the error says so (this machine has neither a GPU to
    test the path itself nor CuPy)."""
    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(RuntimeError, match="CuPy"):
        dt._cupy()


def test_import_dwconv_does_not_import_torch():
    run = fresh_python("import sys, dwconv; print('torch' in sys.modules)", timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
@pytest.mark.parametrize("first", ["torch", "dwconv"])
def test_one_openmp_runtime_with_torch(first):
    """PyTorch's wheel carries its own libgomp.so.1, under the soname dwconv's extension asks for:
    whichever is imported first, the process loads one OpenMP runtime, so dwconv's and PyTorch's
    parallel regions share one pool of threads and cannot oversubscribe the cores."""
    second = "dwconv" if first == "torch" else "torch"
    run = fresh_python(f"""
import re, {first}, {second}, dwconv._kernels
print(sorted(set(re.findall(r'\\S*lib[gi]?omp\\S*', open('/proc/self/maps').read()))))
""", timeout=120)
    assert run.returncode == 0, run.stderr
    runtimes = eval(run.stdout)
    assert len(runtimes) == 1, runtimes
