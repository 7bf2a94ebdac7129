"""The built micro-kernels keep their sums in registers.

A register tile whose loops do not unroll completely (an unroll limit below a tile's trip count, as
once happened to the 7x7 tile) or that asks for more registers than the level has, spills its
accumulators: every multiply-add then becomes a load, a multiply-add and a store to the stack, and
the kernel runs several times slower while every result stays right. No timing test sees that
reliably on a shared machine, but the generated code shows it: this test disassembles the forward's
dense tile functions of the built extension and bounds their vector stores to the stack against
their multiply-adds. (Measured with GCC 12: at most 6% when the tiles unroll, from set-up code
outside the hot loops of the stride-2 tiles; 11% to 86% when the unroll limit is 8.)
"""

import re
import shutil
import subprocess

import pytest

from dwconv import _kernels

pytestmark = pytest.mark.skipif(shutil.which("objdump") is None or "-DDWCONV_DEBUG" in _kernels.compile_flags(),
                                reason="needs objdump and an optimised build")

SPILL = re.compile(r"\bv\w+\s+%[xyz]mm\d+,\s*-?(0x[0-9a-f]+)?\(%r[sb]p\)")
FMA = re.compile(r"\bvfmadd\w+\b")
# stack stores per multiply-add allowed in a dense tile function
MAX_SPILL_RATIO = 0.08
# (every square kernel up to 7x7 but 6x6, and 7x7 at stride 2, which the wider kernels' pieces of 7
# taps, "wide", run: _microkernels_row.h)
# NCHW planes' 5x5 row tiles (AVX-512's), whose 25 taps GCC once kept in registers across the tile's
# rows, spilling its sums (10% of its multiply-adds, 1.07x slower), and their filter gradient's strips
DENSE_TILES = [f"row_channels_{k}_{s}_{isa}_f32" for isa in ("avx2", "avx512") for s in (1, 2)
               for k in (1, 2, 3, 4, 5, 7, "wide") if (k, s) != (7, 2)] + ["flat_rows_5_avx512_f32",
                                                                          "flat_dot_shifted_avx512_f32"]


@pytest.fixture(scope="module")
def disassembly():
    if "avx2" not in _kernels.ISA_NAMES:
        pytest.skip("built without the x86 levels")
    run = subprocess.run(["objdump", "-d", "--no-show-raw-insn", _kernels.__file__], capture_output=True, text=True,
                         check=True)
    functions, name = {}, None
    for line in run.stdout.splitlines():
        header = re.match(r"[0-9a-f]+ <([^>]+)>:", line)
        if header:
            name = header.group(1)
            functions[name] = []
        elif name is not None:
            functions[name].append(line)
    return functions


@pytest.mark.parametrize("function", DENSE_TILES)
def test_dense_tiles_do_not_spill(disassembly, function):
    assert function in disassembly, f"{function} not found in {_kernels.__file__}"
    code = disassembly[function]
    fmas = sum(bool(FMA.search(line)) for line in code)
    spills = [line.strip() for line in code if SPILL.search(line)]
    assert fmas > 0, function
    assert len(spills) <= MAX_SPILL_RATIO * fmas, (
        f"{function}: {len(spills)} vector stores to the stack for {fmas} multiply-adds, e.g. {spills[:3]}")
