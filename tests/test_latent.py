"""Latent interpolation against analytic references."""

import numpy as np
import pytest

from nesf.core.errors import NesfError
from nesf.model.latent import interpolate, lerp, slerp


def test_lerp_endpoints_and_midpoint():
    start, end = np.array([0.0, 2.0]), np.array([4.0, 0.0])
    path = lerp(start, end, 5)
    np.testing.assert_allclose(path[0], start)
    np.testing.assert_allclose(path[-1], end)
    np.testing.assert_allclose(path[2], [2.0, 1.0])


def test_slerp_follows_the_great_circle():
    start, end = np.array([1.0, 0.0]), np.array([0.0, 2.0])
    path = slerp(start, end, 3)
    np.testing.assert_allclose(path[0], start, atol=1e-12)
    np.testing.assert_allclose(path[-1], end, atol=1e-12)
    # halfway: 45 degrees, norm halfway between 1 and 2
    np.testing.assert_allclose(path[1], 1.5 * np.array([np.sqrt(0.5), np.sqrt(0.5)]), atol=1e-12)


def test_slerp_of_parallel_vectors_falls_back_to_lerp():
    np.testing.assert_allclose(slerp(np.ones(4), 2 * np.ones(4), 3), lerp(np.ones(4), 2 * np.ones(4), 3))


def test_bad_arguments_raise_named_errors():
    with pytest.raises(NesfError, match="steps must be in 2..1000, got 1"):
        lerp(np.zeros(3), np.ones(3), 1)
    with pytest.raises(NesfError, match="one size"):
        slerp(np.zeros(3), np.ones(4), 3)
    with pytest.raises(NesfError, match="unknown interpolation method 'cubic'"):
        interpolate(np.zeros(3), np.ones(3), 3, "cubic")
