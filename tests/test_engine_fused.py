"""Fused ops and fast paths against the plain versions they stand for:
erf against math.erf.
"""
import math

import numpy as np
import pytest

from tinygrad_enc.special import erf

# ----- erf ---------------------------------------------------------------------
ERF_POINTS = np.concatenate([
    np.linspace(-8, 8, 160001), np.geomspace(1e-300, 30, 5000), -np.geomspace(1e-300, 30, 5000),
    [0.46875, np.nextafter(0.46875, 0), np.nextafter(0.46875, 1), 4.0, 6.0, np.nextafter(6.0, 0),
     -0.46875, 1e300, -1e300]])


def test_erf_float64_is_right_to_the_last_bits():
    want = np.array([math.erf(v) for v in ERF_POINTS])
    got = erf(ERF_POINTS)
    assert got.dtype == np.float64
    assert np.abs(got - want).max() <= 1e-15
    assert (np.abs(got - want) <= 3e-15 * np.abs(want)).all()  # also relative, near 0


def test_erf_float32_is_computed_in_float32_to_a_few_ulps():
    with np.errstate(over="ignore"):  # +-1e300 become +-inf
        x = ERF_POINTS.astype(np.float32)
    want = np.array([math.erf(float(v)) for v in x])
    got = erf(x)
    assert got.dtype == np.float32
    ulps = np.abs(got - want) / np.spacing(np.abs(want).astype(np.float32))
    assert ulps.max() <= 5


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_erf_special_values_and_dtypes(dtype):
    got = erf(np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1.0], dtype=dtype))
    assert got.dtype == dtype
    np.testing.assert_array_equal(got[:5], [1.0, -1.0, np.nan, 0.0, -0.0])
    assert np.signbit(got[4]) and abs(float(got[5]) - math.erf(1.0)) < 1e-3
    assert erf(np.asarray(0.5, dtype=dtype)).shape == ()

