"""Optimizer: the base of the optimizers (Keras 3 semantics, Rindow's ``update``).

``optimizer.update(params, grads)`` updates the parameter Variables in place;
``apply_gradients(zip(grads, params))`` is the Keras spelling. ``None`` gradients
are skipped (the parameter and its slots keep their values); all of them ``None``
is an error, as in Keras. ``iterations`` counts the updates; the learning rate is
a float, a schedule or any callable of the step (the number of updates done so
far). Clipping (``clipnorm`` per gradient, ``global_clipnorm`` over all of them,
``clipvalue``) and decoupled ``weight_decay`` happen before the update, in Keras's
order.

Flat buffers, speed
-------------------
On its first update an optimizer copies its parameters into flat buffers and runs
each update as a few whole-buffer passes: see :mod:`.flat_engine` (the engine) and
:mod:`.flat_layout` (the layout).

State
-----
Slots are keyed by the position of the parameter in ``params``:
``get_state()`` returns ``{"iterations": ..., "<slot>/<position>": array}``, and
``set_state`` on a new optimizer (before or after its first update) makes training
continue bit for bit where it stopped.
"""

from __future__ import annotations

import math
import re
import warnings
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ...autodiff import state as _state
from ...autodiff.variable import Variable
from ...errors import OpTypeError, OpValueError
from .. import hyperparams
from . import schedules
from .flat_engine import FlatBufferEngine
from .flat_layout import _Layout

__all__ = ["Optimizer"]

_REGISTRY: dict[str, type[Optimizer]] = {}
_POSITION = re.compile(r"[0-9]{1,9}")


def _takes_step(fn: Callable[..., Any], owner: str) -> bool:
    """Whether a learning-rate callable takes the step (else it takes no argument,
    as Keras's plain callables do)."""
    try:
        import inspect  # only for user-supplied callables: keeps the module cheap to import

        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return True
    try:
        sig.bind(0)
        return True
    except TypeError:
        pass
    try:
        sig.bind()
        return False
    except TypeError:
        raise OpTypeError(f"{owner}: a learning-rate callable must take the step (an int), got {fn!r}") from None



class Optimizer(FlatBufferEngine):
    """Base class of the optimizers. See the module docstring.

    Subclasses set ``_default_name`` and ``_num_tmp`` (scratch rows the kernel needs),
    and implement ``_slot_names()``, ``_coefficients(lr, step)`` (the kernel's scalars
    for this update) and ``_kernel(p, g, slots, tmp, coefficients)``; optionally
    ``_slot_initial(name)`` and ``get_config``.
    """

    _default_name = "optimizer"
    _num_tmp = 1
    _nonnegative_slots: tuple[str, ...] = ()  # slots of squares: set_state refuses negative values

    def __init__(
        self,
        learning_rate: float | Callable[[int], float] = 0.001,
        *,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        name: str | None = None,
    ) -> None:
        if name is not None and not isinstance(name, str):
            raise OpTypeError(f"{type(self).__name__}: name must be a string, got {type(name).__name__} "
                              f"{hyperparams.show(name)}")
        self.name = name if name is not None else self._default_name
        self._lr: Any = None
        self._lr_takes_step = True
        self._set_learning_rate(learning_rate, initial=True)
        given = {k: v for k, v in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                                   ("global_clipnorm", global_clipnorm)) if v is not None}
        if len(given) > 1:
            raise OpValueError(
                f"{self._who()}: only one of clipnorm, clipvalue and global_clipnorm can be set, got "
                + ", ".join(f"{k}={v}" for k, v in given.items())
            )
        clip = {key: hyperparams.real(self._who(), key, value, low=0.0, low_open=True)
                for key, value in given.items()}
        self.clipnorm = clip.get("clipnorm")
        self.clipvalue = clip.get("clipvalue")
        self.global_clipnorm = clip.get("global_clipnorm")
        self.weight_decay = None if weight_decay is None else hyperparams.real(self._who(), "weight_decay",
                                                                               weight_decay, low=0.0)
        self._iterations = 0
        self._layout: _Layout | None = None
        self._pending: dict[str, np.ndarray] | None = None
        self._flush_cache: tuple | None = None
        self._exclude_ids: set[int] = set()
        self._exclude_pattern: re.Pattern | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY.setdefault(cls.__name__, cls)

    # -- subclass interface -----------------------------------------------------------
    def _slot_names(self) -> tuple[str, ...]:
        return ()

    def _slot_initial(self, name: str) -> float:
        return 0.0

    def _flush_spec(self) -> tuple[tuple[str, ...], tuple[float, ...]]:
        """The slots whose values decay towards 0, and their decay factors per step
        (see ``_flush_period``); ``((), ())`` for none."""
        return (), ()

    def _coefficients(self, lr: float, step: int) -> tuple:
        return (lr,)

    def _kernel(self, p: np.ndarray, g: Any, slots: list[np.ndarray], tmp: list[np.ndarray], coef: tuple) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _kernel")

    # -- learning rate and iterations -------------------------------------------------
    def _who(self) -> str:
        cls = type(self).__name__
        name = getattr(self, "name", None)
        return cls if name in (None, self._default_name) else f"{cls} {name!r}"

    def _set_learning_rate(self, lr: Any, initial: bool = False) -> None:
        if isinstance(lr, (bool, np.bool_)):
            raise OpTypeError(f"{self._who()}: learning_rate must be a number, a schedule or a callable, got {lr!r}")
        if isinstance(lr, (int, float, np.integer, np.floating)):
            if not initial and isinstance(self._lr, schedules.LearningRateSchedule):
                raise OpTypeError(
                    f"{self._who()} was created with the schedule {self._lr!r} as its learning rate, so its "
                    "learning rate cannot be set to a number; create the optimizer with a float learning_rate"
                )
            self._lr = hyperparams.real(self._who(), "learning_rate", lr, low=0.0)
            self._lr_takes_step = True
        elif isinstance(lr, type):
            raise OpTypeError(f"{self._who()}: learning_rate must be a number, a schedule or a callable of the "
                              f"step, got the class {lr.__name__} (pass an instance)")
        elif callable(lr):
            self._lr_takes_step = _takes_step(lr, self._who())
            self._lr = lr
        else:
            raise OpTypeError(f"{self._who()}: learning_rate must be a number, a schedule or a callable, got {lr!r}")

    def _lr_at(self, step: int) -> float:
        lr = self._lr
        if lr.__class__ is float:
            return lr
        try:
            value = lr(schedules.schedule_step(lr, step)) if self._lr_takes_step else lr()
        except OverflowError:
            raise OpValueError(f"{self._who()}: the learning-rate schedule {lr!r} overflows at step {step}") from None
        try:
            rate = float(value)
        except (TypeError, ValueError, OverflowError):
            raise OpTypeError(
                f"{self._who()}: the learning-rate schedule returned {value!r} for step {step}; it must return a number"
            ) from None
        if not rate >= 0.0 or rate == math.inf:  # NaN, negative or infinite
            raise OpValueError(f"{self._who()}: the learning-rate schedule {lr!r} returned {rate!r} for step "
                               f"{step}; a learning rate must be a finite number >= 0")
        return rate

    @property
    def learning_rate(self) -> float:
        """The learning rate of the next update (a schedule is evaluated at ``iterations``).
        Set it to a number or to a new schedule / callable of the step."""
        return self._lr_at(self._iterations)

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        self._set_learning_rate(value)

    @property
    def learning_rate_schedule(self) -> Any:
        """The learning rate as given: a float, a schedule or a callable."""
        return self._lr

    @property
    def iterations(self) -> int:
        """The number of updates done so far."""
        return self._iterations

    @iterations.setter
    def iterations(self, value: int) -> None:
        value = int(value)
        if value < 0:
            raise OpValueError(f"{self._who()}: iterations must be >= 0, got {value}")
        self._iterations = value

    @property
    def built(self) -> bool:
        """Whether the slots exist (after the first update, ``build`` or ``set_state``)."""
        return self._layout is not None

    # -- weight decay exclusions --------------------------------------------------------
    def exclude_from_weight_decay(
        self, var_list: Iterable[Variable] | None = None, var_names: Iterable[str] | None = None
    ) -> None:
        """Exclude Variables (``var_list``) or Variables whose name contains one of
        ``var_names`` (e.g. ``["bias"]``) from weight decay. Call it before the first
        update, as in Keras."""
        if self._layout is not None:
            raise OpValueError(f"{self._who()}: exclude_from_weight_decay must be called before the first update")
        self._exclude_ids = {id(v) for v in (var_list or ())}
        names = [re.escape(str(n)) for n in (var_names or ())]
        self._exclude_pattern = re.compile("|".join(names)) if names else None

    def _decays(self, var: Variable) -> bool:
        if id(var) in self._exclude_ids:
            return False
        pattern = self._exclude_pattern
        return not (pattern is not None and var.name is not None and pattern.search(var.name))

    # -- the public update API ------------------------------------------------------------
    def update(self, params: Sequence[Variable], grads: Sequence[Any]) -> None:
        """Update ``params`` in place from ``grads`` (Variables, arrays or None; None is
        skipped). Raises, changing nothing, for mismatched lengths, shapes or dtypes."""
        if isinstance(params, Variable):
            params, grads = [params], [grads]
        params = params if params.__class__ is list else list(params)
        grads = grads if grads.__class__ is list else list(grads)
        if _state.tracing():  # inside a compiled Function: the update is an in-place effect of its graph
            self._update_in_graph(params, grads)
            return
        arrays, missing = self._check(params, grads)
        if arrays is None:
            return
        layout = self._layout
        bound = layout.bound if layout is not None else None
        if bound is None or len(bound) != len(params):
            layout = self._adopt(params)
        else:
            for p, b in zip(params, bound):
                if p._value is not b:
                    layout = self._adopt(params)
                    break
        self._step(layout, params, arrays, missing)

    def _update_in_graph(self, params: list[Variable], grads: list[Any]) -> None:
        from ...compiler.tracing import run_effect

        if len(params) != len(grads):
            self._check(params, grads)  # raises the usual error
        kept = [(p, g) for p, g in zip(params, grads) if g is not None]
        updated = [p for p, _ in kept]
        run_effect("update", lambda *arrays: self.update(updated, list(arrays)), [g for _, g in kept],
                   f"{self._who()}.update")

    def apply_gradients(self, grads_and_vars: Iterable[tuple[Any, Variable]]) -> int:
        """Keras spelling: ``apply_gradients(zip(grads, params))``; returns ``iterations``."""
        pairs = list(grads_and_vars)
        if not pairs:
            return self._iterations
        for k, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise OpTypeError(
                    f"{self._who()}.apply_gradients: expects (gradient, variable) pairs, got {type(pair).__name__} "
                    f"at position {k}"
                )
        self.update([v for _, v in pairs], [g for g, _ in pairs])
        return self._iterations

    def apply(self, grads: Sequence[Any], trainable_variables: Sequence[Variable] | None = None) -> None:
        """Keras 3 ``apply(grads, trainable_variables=None)``; without variables, the ones
        of the previous update are used."""
        if trainable_variables is None:
            if self._layout is None or not self._layout.variables:
                raise OpValueError(
                    f"{self._who()}.apply: pass trainable_variables (the optimizer has not been built on any yet)"
                )
            trainable_variables = self._layout.variables
        self.update(list(trainable_variables), list(grads))

    def minimize(self, loss: Callable[[], Any], var_list: Sequence[Variable]) -> None:
        """Compute the gradients of ``loss()`` for ``var_list`` on a tape and apply them."""
        from ...autodiff.tape import GradientTape

        var_list = list(var_list)
        with GradientTape() as tape:
            value = loss()
        self.update(var_list, tape.gradient(value, var_list))

    def build(self, params: Sequence[Variable]) -> None:
        """Create the slots for ``params`` (and adopt them) without updating them."""
        params = list(params)
        for i, p in enumerate(params):
            if not isinstance(p, Variable):
                raise OpTypeError(f"{self._who()}.build: parameter {i} is a {type(p).__name__}, not a Variable")
        if params:
            self._adopt(params)

    # -- checking -----------------------------------------------------------------------
    def _label(self, i: int, p: Any) -> str:
        name = getattr(p, "name", None)
        return f"parameter {i} ({name!r})" if name else f"parameter {i}"

    def _check(self, params: list, grads: list) -> tuple[list | None, bool]:
        """The gradients as arrays of their parameter's shape and dtype (None kept);
        raises before anything is changed."""
        if len(params) != len(grads):
            raise OpValueError(
                f"{self._who()}.update: got {len(params)} parameters but {len(grads)} gradients; "
                "pass one gradient (or None) per parameter"
            )
        if not params:
            return None, False
        arrays: list = []
        missing = False
        for i, (p, g) in enumerate(zip(params, grads)):
            if not isinstance(p, Variable):
                raise OpTypeError(
                    f"{self._who()}.update: parameter {i} is a {type(p).__name__}, not a Variable"
                )
            if g is None:
                arrays.append(None)
                missing = True
                continue
            if g.__class__ is Variable or isinstance(g, Variable):
                g = g._value
            if g.__class__ is not np.ndarray and not isinstance(g, np.generic):
                g = self._as_array(i, p, g)
            pv = p._value
            if g.shape != pv.shape:
                raise OpValueError(
                    f"{self._who()}.update: the gradient of {self._label(i, p)} has shape {tuple(g.shape)}, "
                    f"but the parameter has shape {tuple(pv.shape)}"
                )
            if g.dtype != pv.dtype:
                g = self._cast(i, p, g)
            arrays.append(g)
        if missing:
            absent = [self._label(i, p) for i, (p, a) in enumerate(zip(params, arrays)) if a is None]
            if len(absent) == len(params):
                raise OpValueError(
                    f"{self._who()}.update: no gradient was provided for any of the {len(params)} parameters "
                    "(all are None: does the loss depend on them?)"
                )
            warnings.warn(
                f"{self._who()}: no gradient for {', '.join(absent)}; they are not updated (Keras semantics)",
                stacklevel=3,
            )
        return arrays, missing

    def _as_array(self, i: int, p: Variable, g: Any) -> np.ndarray:
        try:
            arr = np.asarray(g)
        except Exception:  # noqa: BLE001 - anything NumPy cannot convert
            arr = None
        if arr is None or arr.dtype.kind not in "biuf":
            raise OpTypeError(
                f"{self._who()}.update: the gradient of {self._label(i, p)} must be a Variable, an array or None, "
                f"got {type(g).__name__}"
            )
        return arr

    def _cast(self, i: int, p: Variable, g: np.ndarray) -> np.ndarray:
        if g.dtype.kind not in "biuf":
            raise OpTypeError(
                f"{self._who()}.update: the gradient of {self._label(i, p)} has dtype {g.dtype}; "
                f"expected a real number dtype (the parameter's is {p.dtype})"
            )
        return np.asarray(g, dtype=p.dtype)

    # -- state -------------------------------------------------------------------------------
    def get_state(self) -> dict[str, np.ndarray]:
        """``{"iterations": int64 array, "<slot>/<position>": array}``: copies of
        everything an update depends on besides the parameters and the config."""
        state = {"iterations": np.array(self._iterations, dtype=np.int64)}
        layout = self._layout
        if layout is None:
            if self._pending is not None:
                state.update({k: v.copy() for k, v in self._pending.items() if k != "iterations"})
            return state
        for name in self._slot_names():
            for pos, (group, j) in enumerate(layout.where):
                a, b = group.offsets[j], group.offsets[j + 1]
                state[f"{name}/{pos}"] = group.slots[name][a:b].reshape(group.shapes[j]).copy()
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned, before or after the first update.
        Everything is checked before anything changes."""
        if not hasattr(state, "keys"):
            raise OpTypeError(f"{self._who()}.set_state: expects a dict of arrays, got {type(state).__name__}")
        if "iterations" not in state:
            raise OpValueError(f"{self._who()}.set_state: the state has no 'iterations' entry")
        iterations = np.asarray(state["iterations"])
        if iterations.shape != () or iterations.dtype.kind not in "iu" or int(iterations) < 0:
            raise OpValueError(
                f"{self._who()}.set_state: 'iterations' must be a non-negative integer, got {state['iterations']!r}"
            )
        names = self._slot_names()
        slots: dict[str, np.ndarray] = {}
        for key in state.keys():
            if key == "iterations":
                continue
            name, _, pos = str(key).rpartition("/")
            if name not in names or _POSITION.fullmatch(pos) is None:
                raise OpValueError(
                    f"{self._who()}.set_state: unexpected entry {hyperparams.show(key)}; this optimizer's slots "
                    f"are {list(names) or 'none'} (keys '<slot>/<position>')"
                )
            arr = np.asarray(state[key])
            if arr.dtype.kind != "f":
                raise OpValueError(f"{self._who()}.set_state: {key!r} has dtype {arr.dtype}, expected floats")
            if not np.isfinite(arr).all():
                raise OpValueError(f"{self._who()}.set_state: {key!r} holds NaN or infinite values")
            if name in self._nonnegative_slots and (arr < 0).any():
                raise OpValueError(f"{self._who()}.set_state: {key!r} holds negative values; the {name!r} slot "
                                   "accumulates squares and is never negative")
            slots[str(key)] = arr
        if slots:
            count = max(int(k.rpartition("/")[2]) for k in slots) + 1
            if len(slots) != count * len(names):
                absent = []
                for pos in range(count):
                    absent += [f"{name}/{pos}" for name in names if f"{name}/{pos}" not in slots]
                    if len(absent) > 6:
                        break
                more = " ..." if len(absent) > 6 else ""
                raise OpValueError(f"{self._who()}.set_state: the state lacks {absent[:6]}{more}")
        self._check_slot_values(slots)
        layout = self._layout
        if layout is not None:
            self._check_state_shapes(slots, layout)
            self._load_slots(slots, layout)
        else:
            self._pending = {k: v.copy() for k, v in slots.items()}
        self._iterations = int(iterations)


    def _check_slot_values(self, slots: dict[str, np.ndarray]) -> None:
        """Raise for slot values no update sequence can produce (subclasses with relations
        between their slots check them here)."""

    def _check_state_for(self, params: Sequence[Variable]) -> None:
        """Raise if a state restored before the first update (``set_state``) does not fit
        ``params``, as the first update would."""
        if self._pending:
            layout = _Layout([tuple(p.shape) for p in params], [np.dtype(p.dtype) for p in params])
            self._check_state_shapes(self._pending, layout)

    # -- config ---------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """The constructor arguments as JSON values (a schedule as its serialized dict)."""
        lr = self._lr
        return {
            "name": self.name,
            "learning_rate": lr if lr.__class__ is float else schedules.serialize(lr),
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> Optimizer:
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"], custom_objects)
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} iterations={self._iterations}>"
