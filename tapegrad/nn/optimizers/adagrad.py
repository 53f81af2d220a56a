"""Adagrad, Keras 3 semantics."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .. import hyperparams
from .base import Optimizer
from .kernels import adagrad_kernel

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), Keras 3 form: ``acc += g^2``,
    ``p -= lr g / sqrt(acc + epsilon)``; the accumulator starts at
    ``initial_accumulator_value``. (Torch adds ``eps`` outside the square root; for an
    epsilon far below the accumulator the two agree.) ``epsilon`` must be > 0. Slot:
    ``accumulator``."""

    _default_name = "adagrad"
    _nonnegative_slots = ("accumulator",)
    _num_tmp = 2

    def __init__(
        self,
        learning_rate: float | Callable[[int], float] = 0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-7,
        *,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(
            learning_rate, weight_decay=weight_decay, clipnorm=clipnorm, clipvalue=clipvalue,
            global_clipnorm=global_clipnorm, name=name,
        )
        who = self._who()
        self.initial_accumulator_value = hyperparams.real(who, "initial_accumulator_value", initial_accumulator_value,
                                                          low=0.0)
        self.epsilon = hyperparams.epsilon(who, epsilon)  # slots are at least float32

    def _slot_names(self) -> tuple[str, ...]:
        return ("accumulator",)

    def _slot_initial(self, name: str) -> float:
        return self.initial_accumulator_value

    def _kernel(self, p: np.ndarray, g: Any, slots: list, tmp: list, coef: tuple) -> None:
        adagrad_kernel(p, g, slots[0], tmp[0], tmp[1], coef[0], self.epsilon)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(initial_accumulator_value=self.initial_accumulator_value, epsilon=self.epsilon)
        return config
