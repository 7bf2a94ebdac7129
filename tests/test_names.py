"""The registry of padding modes and activations (dwconv._names) against the kernels' codes, the
CUDA source's enums and the reference's own definitions."""

import re

import numpy as np
import pytest

import reference
from dwconv import _cupy, _kernels, _names


def test_cpu_kernels_number_the_names_as_the_registry():
    assert _kernels.MODE_CODES == _names.MODE_CODES
    assert _kernels.ACTIVATION_CODES == _names.ACTIVATION_CODES


def test_a_reordered_enum_fails_the_import_check():
    swapped = dict(zip(_names.MODE_CODES, reversed(_names.MODE_CODES.values())))
    with pytest.raises(ImportError, match="padding modes"):
        _kernels.check_codes("padding modes", swapped, _names.MODE_CODES)


def test_cuda_source_numbers_the_names_as_the_registry():
    source = _cupy.source()
    for enum, codes in [("Mode", _names.MODE_CODES), ("Activation", _names.ACTIVATION_CODES)]:
        declarations = re.findall(rf"\benum\s+{enum}\s*{{([^}}]*)}}", source)
        assert len(declarations) == 1, f"one enum {enum} in the CUDA source"
        constants = dict(re.fullmatch(r"\s*(\w+)\s*=\s*(\d+)\s*", item).groups()
                         for item in declarations[0].split(","))
        assert {name: int(code) for name, code in constants.items()} == {
            (name or "identity").upper(): code for name, code in codes.items()}


def test_reference_names_match_the_registry():
    """The reference defines each activation and mode itself; only the names must agree."""
    assert list(reference.PADDING_MODES) == list(_names.PADDING_MODES)
    assert set(reference.ACTIVATIONS) == set(_names.ACTIVATIONS)


@pytest.mark.parametrize("name", _names.ACTIVATIONS)
def test_derivative_and_slope(name):
    """Each derivative against central differences of the reference's activation, and within its slope."""
    z = np.concatenate([np.linspace(-8, 8, 1601), [-1e-5, 1e-5]])
    z = z[np.abs(np.abs(z) - 3) > 1e-3]  # hard_swish's corners
    z = z[np.abs(z) > 1e-3] if name.startswith("relu") else z  # relu's corner
    z = z[np.abs(z - 6) > 1e-3] if name == "relu6" else z
    activation = _names.ACTIVATIONS[name]
    y = reference.activate(z, name)
    h = 1e-6
    expected = (reference.activate(z + h, name) - reference.activate(z - h, name)) / (2 * h)
    got = activation.derivative(None if activation.of_output else z, y)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert np.abs(got).max() <= activation.slope
