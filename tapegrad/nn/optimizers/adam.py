"""Adam and AdamW, Keras 3 semantics."""

from __future__ import annotations

from time import perf_counter
from typing import Any, Callable

import numpy as np

from ... import native
from ...errors import OpTypeError, OpValueError
from .. import hyperparams
from . import _parallel
from .base import Optimizer
from .flat_engine import FLUSH_MIN_EPSILON
from .kernels import NATIVE_MIN, adam_coefficients, adam_kernel, native_adam

__all__ = ["Adam", "AdamW"]


def _rindow_alias(alias: str, alias_value: Any, name: str, value: Any, default: Any) -> Any:
    """The value of an option given by its Keras name or by its Rindow name, not both."""
    if alias_value is None:
        return value
    if value is not default and value != default:
        raise OpTypeError(f"Adam: give {name} or its Rindow name {alias}, not both (got {value!r} and {alias_value!r})")
    return alias_value


class Adam(Optimizer):
    """Adam (Kingma & Ba), Keras 3 form: with ``t = iterations + 1``,
    ``alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)``, ``m = beta_1 m + (1 - beta_1) g``,
    ``v = beta_2 v + (1 - beta_2) g^2`` and ``p -= alpha * m / (sqrt(v) + epsilon)``
    (epsilon is "epsilon hat": torch's ``eps`` is this one divided by
    ``sqrt(1 - beta_2^t)``). ``amsgrad`` uses ``vhat = max(vhat, v)`` instead of ``v``.

    Slots (see :func:`.kernels.adam_kernel`): ``m`` holds ``m / (1 - beta_1)``,
    ``v`` holds ``v / (1 - beta_2)``, ``vhat`` (AMSGrad) the running maximum of ``v``'s.

    Rindow's option names ``lr``, ``beta1`` and ``beta2`` are accepted for
    ``learning_rate``, ``beta_1`` and ``beta_2``.
    """

    _default_name = "adam"
    _nonnegative_slots = ("v", "vhat")

    def __init__(
        self,
        learning_rate: float | Callable[[int], float] = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        *,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        name: str | None = None,
        lr: float | Callable[[int], float] | None = None,
        beta1: float | None = None,
        beta2: float | None = None,
    ) -> None:
        learning_rate = _rindow_alias("lr", lr, "learning_rate", learning_rate, 0.001)
        beta_1 = _rindow_alias("beta1", beta1, "beta_1", beta_1, 0.9)
        beta_2 = _rindow_alias("beta2", beta2, "beta_2", beta_2, 0.999)
        super().__init__(
            learning_rate, weight_decay=weight_decay, clipnorm=clipnorm, clipvalue=clipvalue,
            global_clipnorm=global_clipnorm, name=name,
        )
        who = self._who()
        self.beta_1 = hyperparams.real(who, "beta_1", beta_1, low=0.0, high=1.0, high_open=True)
        self.beta_2 = hyperparams.real(who, "beta_2", beta_2, low=0.0, high=1.0, high_open=True)
        # epsilon > 0: with 0, a parameter whose gradients are all 0 would become 0 / 0 = NaN
        self.epsilon = hyperparams.epsilon(who, epsilon)  # slots are at least float32
        self.amsgrad = hyperparams.flag(who, "amsgrad", amsgrad)

    def _slot_names(self) -> tuple[str, ...]:
        return ("m", "v", "vhat") if self.amsgrad else ("m", "v")

    def _flush_spec(self) -> tuple[tuple[str, ...], tuple[float, ...]]:
        return (self._slot_names(), (self.beta_1, self.beta_2)) if self.epsilon >= FLUSH_MIN_EPSILON else ((), ())

    def _coefficients(self, lr: float, step: int) -> tuple:
        return adam_coefficients(lr, step, self.beta_1, self.beta_2, self.epsilon)

    def _kernel(self, p: np.ndarray, g: Any, slots: list, tmp: list, coef: tuple) -> None:
        adam_kernel(
            p, g, slots[0], slots[1], slots[2] if self.amsgrad else None, tmp[0],
            coef[0], coef[1], self.beta_1, self.beta_2,
        )

    def _run_group(self, group: Any, g_arg: Any, coef: tuple) -> None:
        # The fused C loop runs a whole buffer in one pass, split over threads by the C
        # side itself when that makes the training loop faster. The group's chooser
        # compares the time from one update to the next (the whole step), not the
        # update alone: the update is twice as fast on two threads, but a helper thread
        # that wakes and spins can take the core that BLAS uses in the next step's
        # matrix products (measured: the MLP step got ~5% slower while its update got
        # 0.08 ms faster). Back to back updates (no work between) do take the threads.
        if self.amsgrad or group.size < NATIVE_MIN or not native_adam(group.param.dtype, group.sdtype):
            super()._run_group(group, g_arg, coef)
            return
        threads = _parallel._threads
        if threads < 2 or group.size < _parallel.SPLIT_MIN:
            self._native(group, g_arg, coef, 1)
            return
        chooser = group.native_chooser
        now = perf_counter()
        last = group.native_last
        if last is not None:
            chooser.record(last[0], now - last[1])  # the step that the last update's way began
        mode = chooser.pick()
        group.native_last = (mode, now)
        if mode == 0:
            native.library().tg_warm(threads)
        self._native(group, g_arg, coef, threads if mode == 0 else 1)

    def _native(self, group: Any, g_arg: Any, coef: tuple, threads: int) -> None:
        slots = group.slot_list
        adam_kernel(
            group.param, g_arg, slots[0], slots[1], None, group.tmp[0], coef[0], coef[1], self.beta_1, self.beta_2,
            threads,
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon, amsgrad=self.amsgrad)
        return config


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), Keras 3: before each
    update ``p *= 1 - lr * weight_decay`` (torch's AdamW), then the Adam step.
    ``exclude_from_weight_decay`` exempts some Variables (e.g. biases)."""

    _default_name = "adamw"

    def __init__(
        self,
        learning_rate: float | Callable[[int], float] = 0.001,
        weight_decay: float = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        *,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        name: str | None = None,
    ) -> None:
        if weight_decay is None:
            raise OpValueError("AdamW: weight_decay must be a float (use Adam for no weight decay)")
        super().__init__(
            learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay=weight_decay, clipnorm=clipnorm,
            clipvalue=clipvalue, global_clipnorm=global_clipnorm, name=name,
        )
