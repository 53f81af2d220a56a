"""SGD with optional (Nesterov) momentum, Keras 3 semantics."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .. import hyperparams
from .base import Optimizer
from .kernels import sgd_kernel

__all__ = ["SGD"]


class SGD(Optimizer):
    """Gradient descent with momentum (Keras 3).

    ``momentum == 0``: ``p -= lr * g``. Otherwise ``m = momentum * m - lr * g`` and
    ``p += m``, or with ``nesterov`` ``p += momentum * m - lr * g`` (with the new ``m``).
    For a constant learning rate this is torch's SGD (dampening 0): Keras's ``m`` is
    ``-lr`` times torch's buffer. Slot: ``momentum`` (when ``momentum > 0``).
    """

    _default_name = "sgd"

    def __init__(
        self,
        learning_rate: float | Callable[[int], float] = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
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
        self.momentum = hyperparams.real(self._who(), "momentum", momentum, low=0.0, high=1.0)
        self.nesterov = hyperparams.flag(self._who(), "nesterov", nesterov)
        self._num_tmp = 2 if (self.nesterov and self.momentum > 0) else 1

    def _slot_names(self) -> tuple[str, ...]:
        return ("momentum",) if self.momentum > 0 else ()

    def _flush_spec(self) -> tuple[tuple[str, ...], tuple[float, ...]]:
        return self._slot_names(), (self.momentum,)

    def _kernel(self, p: np.ndarray, g: Any, slots: list, tmp: list, coef: tuple) -> None:
        sgd_kernel(
            p, g, slots[0] if slots else None, tmp[0], tmp[1] if len(tmp) > 1 else None,
            coef[0], self.momentum, self.nesterov,
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(momentum=self.momentum, nesterov=self.nesterov)
        return config
