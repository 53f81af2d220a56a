"""RMSprop, Keras 3 semantics."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ...errors import OpValueError
from .. import hyperparams
from .base import Optimizer
from .flat_engine import FLUSH_MIN_EPSILON
from .kernels import rmsprop_kernel

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop (Hinton), Keras 3 form: ``v = rho v + (1 - rho) g^2``; centered:
    ``a = rho a + (1 - rho) g`` and ``d = v - a^2 + epsilon``, else ``d = v + epsilon``;
    ``inc = lr g / sqrt(d)``; ``mom = momentum * mom + inc`` and ``p -= mom`` (or
    ``p -= inc`` without momentum). Torch adds its ``eps`` outside the square root and
    keeps ``mom / lr``; with a constant rate the two agree up to where epsilon enters.
``epsilon`` must be > 0 (with 0 a parameter whose gradients are 0 would become NaN).

    Slots: ``velocity``; ``momentum`` when ``momentum > 0``; ``average_gradient`` when
    ``centered``.
    """

    _default_name = "rmsprop"
    _nonnegative_slots = ("velocity",)
    _num_tmp = 2

    def __init__(
        self,
        learning_rate: float | Callable[[int], float] = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
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
        # rho < 1: with 1 the velocity would stay 0 and every step be lr * g / sqrt(epsilon)
        self.rho = hyperparams.real(who, "rho", rho, low=0.0, high=1.0, low_open=True, high_open=True)
        self.momentum = hyperparams.real(who, "momentum", momentum, low=0.0, high=1.0)
        self.epsilon = hyperparams.epsilon(who, epsilon)  # slots are at least float32
        self.centered = hyperparams.flag(who, "centered", centered)

    def _slot_names(self) -> tuple[str, ...]:
        names = ["velocity"]
        if self.momentum > 0:
            names.append("momentum")
        if self.centered:
            names.append("average_gradient")
        return tuple(names)

    def _flush_spec(self) -> tuple[tuple[str, ...], tuple[float, ...]]:
        return (self._slot_names(), (self.rho, self.momentum)) if self.epsilon >= FLUSH_MIN_EPSILON else ((), ())

    def _check_slot_values(self, slots: dict[str, np.ndarray]) -> None:
        # centered: v >= a^2 (the mean of g^2 is at least the square of the mean of g), so that
        # v - a^2 + epsilon stays positive under the square root
        if not self.centered:
            return
        for key, v in slots.items():
            name, _, pos = key.rpartition("/")
            a = slots.get(f"average_gradient/{pos}")
            if name != "velocity" or a is None or a.shape != v.shape:
                continue
            if not np.all(v.astype(np.float64) - np.square(a.astype(np.float64)) + self.epsilon > 0):
                raise OpValueError(f"{self._who()}.set_state: 'velocity/{pos}' is below the square of "
                                   f"'average_gradient/{pos}': the square root of v - a^2 + epsilon would be NaN")

    def _kernel(self, p: np.ndarray, g: Any, slots: list, tmp: list, coef: tuple) -> None:
        k = 1
        mom = avg = None
        if self.momentum > 0:
            mom = slots[k]
            k += 1
        if self.centered:
            avg = slots[k]
        rmsprop_kernel(p, g, slots[0], mom, avg, tmp[0], tmp[1], coef[0], self.rho, self.momentum, self.epsilon)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(rho=self.rho, momentum=self.momentum, epsilon=self.epsilon, centered=self.centered)
        return config
