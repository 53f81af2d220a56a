"""The library's random generator, used by initializers, dropout and dataset shuffling
when they are not given a seed of their own."""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def set_seed(seed: int | None) -> None:
    """Make initial weights, dropout masks and shuffles reproducible."""
    global _generator
    _generator = np.random.default_rng(seed)


def generator() -> np.random.Generator:
    return _generator
