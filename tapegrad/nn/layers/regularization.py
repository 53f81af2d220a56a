"""Dropout."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import OpTypeError, OpValueError
from ...ops.elementwise import mul_p
from ...ops.nn_ops import RandomSource, dropout_mask_p
from .. import hyperparams
from ._util import owner, single_shape
from .base import Layer


class Dropout(Layer):
    """Inverted dropout: with ``training=True`` each element is zeroed with probability
    ``rate`` and the others are scaled by ``1 / (1 - rate)``; otherwise (``training`` None
    or False) the input is returned unchanged.

    ``noise_shape`` (full shape, batch axis included; None takes the input's size) shares
    the mask along axes of size 1, e.g. ``(None, 1, features)`` drops whole features of a
    sequence. ``seed`` gives the layer its own generator (a reproducible sequence of masks);
    without it masks come from ``tapegrad.nn.random.generator()``. The mask is drawn by
    the ``dropout_mask`` primitive, so a compiled graph draws a new one on every run.
    """

    supports_masking = True

    def __init__(self, rate: float, noise_shape: Any = None, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        who = owner(self)
        self.rate = hyperparams.real(who, "rate", rate, low=0.0, high=1.0, high_open=True)
        self.noise_shape = None if noise_shape is None else hyperparams.shape(who, "noise_shape", noise_shape)
        if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)):
            raise OpTypeError(f"{who}: seed must be an int or None, got {hyperparams.show(seed)}")
        if seed is not None and not 0 <= seed < 2**64:
            raise OpValueError(f"{who}: seed must be in [0, 2**64), got {hyperparams.show(seed)}")
        self.seed = None if seed is None else int(seed)
        self._rng = None if seed is None else np.random.default_rng(self.seed)

    def build(self, input_shape: Any) -> None:
        shape = single_shape(self, input_shape)
        if self.noise_shape is not None:
            full = (None,) + shape
            if len(self.noise_shape) != len(full) or any(
                m is not None and m != 1 and n is not None and m != n for n, m in zip(full, self.noise_shape)
            ):
                raise OpValueError(f"{self.name}: noise_shape {self.noise_shape} does not broadcast to inputs of "
                                   f"shape {('batch',) + shape}")
        self.output_shape = shape

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if not training or self.rate == 0.0:
            return inputs
        # A new RandomSource per call: a compiler must never merge two draws.
        mask = dropout_mask_p.apply(inputs, rate=self.rate, noise_shape=self.noise_shape,
                                    generator=RandomSource(self._rng))
        return mul_p.apply2(inputs, mask)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(rate=self.rate, noise_shape=None if self.noise_shape is None else list(self.noise_shape),
                      seed=self.seed)
        return config
