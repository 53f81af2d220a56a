"""Optimizer: the base of the optimizers (Keras 3 semantics, Rindow's ``update``).

``optimizer.update(params, grads)`` updates the parameter Variables in place;
``apply_gradients(zip(grads, params))`` is the Keras spelling. ``None`` gradients
are skipped (the parameter and its slots keep their values); all of them ``None``
is an error, as in Keras. ``iterations`` counts the updates; the learning rate is
a float, a schedule or any callable of the step (the number of updates done so
far). Clipping (``clipnorm`` per gradient, ``global_clipnorm`` over all of them,
``clipvalue``) and decoupled ``weight_decay`` happen before the update, in Keras's
order.

Flat buffers
------------
On its first update an optimizer *adopts* the parameters: for each dtype it copies
them into one contiguous buffer and rebinds each leaf Variable's ``_value`` to a
reshaped view of it (``Variable.assign`` and ``layer.set_weights`` keep writing
into that view). Its slots (moments, accumulators) live in flat buffers of the
same layout, so one update is a few whole-buffer NumPy passes (see
:mod:`.kernels`) instead of a loop of small calls per parameter. 0-d parameters
keep their NumPy-scalar values (the autodiff core computes faster on scalars):
they get a slot in the buffer and are written back after each update. Before each
update the optimizer checks, by identity, that every parameter still holds its
view; a parameter rebound elsewhere (another optimizer adopted it, the user
replaced ``_value``, a different list was passed) is adopted again, values
included, so sharing parameters between optimizers stays correct. Code that
caches ``variable.value()`` across updates must re-read it after the first one.

Speed
-----
Adam's kernel is ten whole-buffer passes in NumPy (``kernels.adam_kernel``), or one
fused C loop from ``tapegrad.native`` for buffers of ``kernels.NATIVE_MIN`` elements
or more where a C compiler is found (same bits). A buffer of at
most ``_CONCAT_MAX`` elements gets its gradients copied in with one
``np.concatenate`` (fewer calls for small models); larger ones hand the kernel the
gradient arrays. Buffers of ``_parallel.SPLIT_MIN`` elements or more run on two
threads when that is faster, else in L2-sized chunks (see ``_parallel``); the
results are the same bits either way. Slot values that decay towards 0 are flushed
before they become subnormal (see ``_flush_period``).

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
from time import perf_counter
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ...autodiff import state as _state
from ...autodiff.variable import Variable
from ...errors import OpTypeError, OpValueError
from . import _parallel, schedules

__all__ = ["Optimizer"]

# Groups of at most this many elements copy their gradients into one buffer with a
# single np.concatenate call and run the kernel on it; larger ones hand the kernel
# the gradient arrays themselves (saving a pass over the data).
_CONCAT_MAX = 16384

# Subnormal flushing: slot values below finfo.tiny * 2**40 (about 1e-26 in float32)
# are set to 0 every `period` updates, where `period` (a power of two, at most 1024)
# is short enough that a value above the threshold cannot decay into the subnormal
# range before the next flush: period <= 40 / -log2(d) for the smallest decay
# factor d of the slots (Adam's beta_1 = 0.9 gives 256). Moments of parameters whose
# gradient stays 0 (dead ReLU units) decay geometrically and would otherwise spend
# hundreds of steps as subnormal numbers, on which x86 arithmetic is up to 100 times
# slower. The values zeroed change an update by less than lr * 1e-19 (epsilon > 0
# dominates the denominator); optimizers with epsilon 0 do not flush. (TensorFlow
# flushes subnormals to zero on the CPU.) The schedule depends on ``iterations``
# and the hyperparameters only, so a restored state continues identically.
_FLUSH_MARGIN = 40  # binary orders of magnitude above the subnormal range
_FLUSH_MAX_PERIOD = 1024


def _flush_period(factors: Iterable[float]) -> int:
    decaying = [f for f in factors if 0.0 < f < 1.0]
    if not decaying:
        return 0
    steps = _FLUSH_MARGIN / -math.log2(min(decaying))
    return 1 << max(0, min(int(math.log2(_FLUSH_MAX_PERIOD)), int(math.floor(math.log2(steps)))))


_REGISTRY: dict[str, type[Optimizer]] = {}


def _aligned_empty(size: int, dtype: np.dtype, fill: float | None = None) -> np.ndarray:
    """A 1-D array whose data starts on a 64-byte boundary (full vector loads)."""
    dtype = np.dtype(dtype)
    extra = 64 // dtype.itemsize
    raw = np.empty(size + extra, dtype)
    start = (-raw.ctypes.data % 64) // dtype.itemsize
    out = raw[start : start + size]
    if fill is not None:
        out.fill(fill)
    return out


class _Group:
    """The parameters of one dtype, laid end to end in flat buffers."""

    def __init__(self, dtype: np.dtype, members: list[int], shapes: list[tuple[int, ...]]) -> None:
        self.dtype = dtype
        # Slots and scratch at least float32: float16 moments would overflow.
        self.sdtype = np.promote_types(dtype, np.float32)
        self.members = members
        self.shapes = shapes
        sizes = [math.prod(s) for s in shapes]
        self.offsets = [0]
        for n in sizes:
            self.offsets.append(self.offsets[-1] + n)
        self.size = self.offsets[-1]
        self.scalars = [j for j, s in enumerate(shapes) if s == ()]
        self.param: np.ndarray = np.empty(0, dtype)
        self.views: list[np.ndarray] = []
        self.slots: dict[str, np.ndarray] = {}
        self.slot_list: list[np.ndarray] = []
        self.tmp: list[np.ndarray] = []
        self.gbuf: np.ndarray | None = None
        self.gviews: list[np.ndarray] = []
        self.decay: list[bool] = [True] * len(members)
        self.decay_all = True
        self.parts: dict[int, tuple] = {}  # threads -> views of the buffers cut in parts
        self.chooser = _parallel.Chooser()
        self.native_chooser = _parallel.Chooser()  # threads or not for a native kernel (see Adam)
        self.native_last: tuple[int, float] | None = None  # (way, start) of the last native update

    def grad_buffer(self) -> np.ndarray:
        if self.gbuf is None:
            self.gbuf = _aligned_empty(self.size, self.dtype, 0.0)
            self.gviews = [
                self.gbuf[a:b].reshape(s) for a, b, s in zip(self.offsets, self.offsets[1:], self.shapes)
            ]
        return self.gbuf


class _Layout:
    """Where each parameter lives: its group and index in it, and what it is bound to."""

    def __init__(self, shapes: list[tuple[int, ...]], dtypes: list[np.dtype]) -> None:
        self.shapes = shapes
        self.dtypes = dtypes
        self.groups: list[_Group] = []
        self.where: list[tuple[_Group, int]] = [None] * len(shapes)  # type: ignore[list-item]
        order: dict[np.dtype, list[int]] = {}
        for pos, dt in enumerate(dtypes):
            order.setdefault(dt, []).append(pos)
        for dt, members in order.items():
            group = _Group(dt, members, [shapes[pos] for pos in members])
            self.groups.append(group)
            for j, pos in enumerate(members):
                self.where[pos] = (group, j)
        # bound[pos]: the object params[pos]._value must be (its view, or for a 0-d
        # parameter the scalar last written back); variables: the adopted Variables.
        self.bound: list[Any] = [None] * len(shapes)
        self.variables: list[Variable] = []

    def signature(self) -> list[tuple[tuple[int, ...], np.dtype]]:
        return list(zip(self.shapes, self.dtypes))


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


class Optimizer:
    """Base class of the optimizers. See the module docstring.

    Subclasses set ``_default_name`` and ``_num_tmp`` (scratch rows the kernel needs),
    and implement ``_slot_names()``, ``_coefficients(lr, step)`` (the kernel's scalars
    for this update) and ``_kernel(p, g, slots, tmp, coefficients)``; optionally
    ``_slot_initial(name)`` and ``get_config``.
    """

    _default_name = "optimizer"
    _num_tmp = 1

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
        for key, value in given.items():
            if not isinstance(value, (int, float, np.floating, np.integer)) or not value > 0:
                raise OpValueError(f"{self._who()}: {key} must be a number > 0, got {value!r}")
        self.clipnorm = None if clipnorm is None else float(clipnorm)
        self.clipvalue = None if clipvalue is None else float(clipvalue)
        self.global_clipnorm = None if global_clipnorm is None else float(global_clipnorm)
        if weight_decay is not None:
            if not isinstance(weight_decay, (int, float, np.floating, np.integer)) or weight_decay < 0:
                raise OpValueError(f"{self._who()}: weight_decay must be a number >= 0 or None, got {weight_decay!r}")
            weight_decay = float(weight_decay)
        self.weight_decay = weight_decay
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
            if not math.isfinite(float(lr)):
                raise OpValueError(f"{self._who()}: learning_rate must be finite, got {lr!r}")
            self._lr = float(lr)
            self._lr_takes_step = True
        elif callable(lr):
            self._lr_takes_step = _takes_step(lr, self._who())
            self._lr = lr
        else:
            raise OpTypeError(f"{self._who()}: learning_rate must be a number, a schedule or a callable, got {lr!r}")

    def _lr_at(self, step: int) -> float:
        lr = self._lr
        if lr.__class__ is float:
            return lr
        value = lr(schedules.schedule_step(lr, step)) if self._lr_takes_step else lr()
        try:
            return float(value)
        except (TypeError, ValueError):
            raise OpTypeError(
                f"{self._who()}: the learning-rate schedule returned {value!r} for step {step}; it must return a number"
            ) from None

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

    # -- adoption --------------------------------------------------------------------------
    def _adopt(self, params: list[Variable]) -> _Layout:
        """Build the layout on the first call; bind the parameters to flat buffers."""
        shapes = [tuple(p._value.shape) for p in params]
        dtypes = [np.dtype(p._value.dtype) for p in params]
        for i, (p, dt) in enumerate(zip(params, dtypes)):
            if dt.kind != "f":
                raise OpTypeError(
                    f"{self._who()}: {self._label(i, p)} has dtype {dt}; only float Variables can be optimized"
                )
        if len({id(p) for p in params}) != len(params):
            seen: dict[int, int] = {}
            for i, p in enumerate(params):
                if id(p) in seen:
                    raise OpValueError(
                        f"{self._who()}: {self._label(i, p)} is the same Variable as parameter {seen[id(p)]}; "
                        "pass each parameter once"
                    )
                seen[id(p)] = i
        layout = self._layout
        if layout is not None and layout.signature() != list(zip(shapes, dtypes)):
            raise OpValueError(
                f"{self._who()} was built for {len(layout.shapes)} parameters of shapes and dtypes "
                f"{_show_signature(layout.signature())}, but got {len(params)}: "
                f"{_show_signature(list(zip(shapes, dtypes)))}. An optimizer keeps one slot per parameter "
                "position: use one optimizer per set of parameters"
            )
        fresh = layout is None
        if fresh:
            layout = _Layout(shapes, dtypes)
            pending = self._pending
            if pending is not None:
                self._check_state_shapes(pending, layout)  # raises before anything changes
            self._allocate_slots(layout)
            if pending is not None:
                self._load_slots(pending, layout)
                self._pending = None
        # Copy the values into new flat buffers, then rebind (a new buffer each time, so
        # that parameters already bound to the old one are read before it changes).
        for group in layout.groups:
            flat = _aligned_empty(group.size, group.dtype)
            views = []
            for j, pos in enumerate(group.members):
                view = flat[group.offsets[j] : group.offsets[j + 1]].reshape(group.shapes[j])
                np.copyto(view, params[pos]._value)
                views.append(view)
            group.param = flat
            group.views = views
            group.decay = [self._decays(params[pos]) for pos in group.members]
            group.decay_all = all(group.decay)
        for group in layout.groups:
            for j, pos in enumerate(group.members):
                p = params[pos]
                if group.shapes[j] == ():
                    layout.bound[pos] = p._value
                else:
                    p._value = group.views[j]
                    layout.bound[pos] = group.views[j]
        layout.variables = list(params)
        self._layout = layout
        return layout

    def _allocate_slots(self, layout: _Layout) -> None:
        names = self._slot_names()
        for group in layout.groups:
            group.slots = {name: _aligned_empty(group.size, group.sdtype, self._slot_initial(name)) for name in names}
            group.slot_list = [group.slots[name] for name in names]
            group.tmp = [_aligned_empty(group.size, group.sdtype, 0.0) for _ in range(self._num_tmp)]

    # -- one update ---------------------------------------------------------------------------
    def _step(self, layout: _Layout, params: list[Variable], arrays: list, missing: bool) -> None:
        step = self._iterations
        lr = self._lr_at(step)
        coef = self._coefficients(lr, step)
        scales = self._clip_scales(arrays) if (self.clipnorm or self.global_clipnorm) else None
        wd = self.weight_decay
        for group in layout.groups:
            grads = [arrays[pos] for pos in group.members]
            if scales is not None or self.clipvalue is not None:
                g_arg: Any = self._stage_clipped(group, grads, scales)
            elif group.size <= _CONCAT_MAX and not missing:
                g_arg = group.grad_buffer()
                np.concatenate(grads, axis=None, out=g_arg)
            else:
                g_arg = grads
            if not missing:
                if wd:
                    self._decay(group, lr * wd, range(len(grads)), whole=group.decay_all)
                self._run_group(group, g_arg, coef)
            else:
                for j0, j1 in _runs(grads):
                    if wd:
                        self._decay(group, lr * wd, range(j0, j1), whole=False)
                    a, b = group.offsets[j0], group.offsets[j1]
                    g_run = g_arg[a:b] if isinstance(g_arg, np.ndarray) else g_arg[j0:j1]
                    self._kernel(
                        group.param[a:b], g_run, [s[a:b] for s in group.slot_list], [t[a:b] for t in group.tmp], coef
                    )
            for j in group.scalars:
                pos = group.members[j]
                value = group.param[group.offsets[j]]
                params[pos]._value = value
                layout.bound[pos] = value
        factors = self._flush_spec()[1]
        cached = self._flush_cache
        if cached is None or cached[0] != factors:
            self._flush_cache = cached = (factors, _flush_period(factors))
        if cached[1] and (step + 1) % cached[1] == 0:
            self._flush(layout)
        self._iterations = step + 1

    def _flush(self, layout: _Layout) -> None:
        """Set slot values too small to matter to 0 (see ``_flush_period``)."""
        names = self._flush_spec()[0]
        if not names:
            return
        for group in layout.groups:
            tiny = float(np.finfo(group.sdtype).tiny) * 2.0**40
            tmp = group.tmp[0]
            mask = np.empty(group.size, bool)
            for name in names:
                buf = group.slots[name]
                np.abs(buf, out=tmp)
                np.less(tmp, tiny, out=mask)
                np.copyto(buf, 0.0, where=mask)

    def _run_group(self, group: _Group, g_arg: Any, coef: tuple) -> None:
        """The kernel over a whole group. A large group is split over the threads, or
        run on this thread in chunks whose working set stays in the L2 cache (with
        chunk-sized scratch rows, about a sixth faster than one call). With threads,
        the group's chooser times both ways now and then and takes the faster: the
        threads help only when another core is free. Every way gives the same bits."""
        threads = _parallel._threads
        if group.size < _parallel.SPLIT_MIN:
            self._kernel(group.param, g_arg, group.slot_list, group.tmp, coef)
            return
        if threads < 2:
            self._run_parts(group, g_arg, coef, 1)
            return
        chooser = group.chooser
        mode = chooser.pick()
        start = perf_counter()
        self._run_parts(group, g_arg, coef, threads if mode == 0 else 1)
        chooser.record(mode, perf_counter() - start)

    def _run_parts(self, group: _Group, g_arg: Any, coef: tuple, threads: int) -> None:
        cache = group.parts.get(threads)
        if cache is None or cache[0] is not group.param:
            count = threads if threads >= 2 else -(-group.size // _parallel.CHUNK)
            cuts = _parallel.bounds(group.size, count)
            spans = list(zip(cuts, cuts[1:]))
            if threads >= 2:
                tmps = [[t[a:b] for t in group.tmp] for a, b in spans]
            else:
                longest = max(b - a for a, b in spans)
                small = [_aligned_empty(longest, group.sdtype, 0.0) for _ in group.tmp]
                tmps = [[t[: b - a] for t in small] for a, b in spans]
            views = [
                (group.param[a:b], [s[a:b] for s in group.slot_list], tmp) for (a, b), tmp in zip(spans, tmps)
            ]
            group.parts[threads] = cache = (group.param, cuts, views, _parallel.cut_plan(group.offsets, cuts))
        gparts = _parallel.cut_grad(g_arg, cache[3], cache[1])
        args = [(p, g, s, t, coef) for (p, s, t), g in zip(cache[2], gparts)]
        if threads >= 2:
            _parallel.run_parts(self._kernel, args)
        else:
            for part in args:
                self._kernel(*part)

    def _decay(self, group: _Group, amount: float, members: Iterable[int], whole: bool) -> None:
        factor = 1.0 - amount
        if whole:
            np.multiply(group.param, factor, out=group.param)
            return
        for j in members:
            if group.decay[j]:
                view = group.param[group.offsets[j] : group.offsets[j + 1]]
                np.multiply(view, factor, out=view)

    # -- clipping --------------------------------------------------------------------------
    def _clip_scales(self, arrays: list) -> list[float | None]:
        """Per gradient: the factor to scale it by (None: unchanged), Keras semantics."""
        if self.clipnorm:
            c = self.clipnorm
            scales: list[float | None] = []
            for g in arrays:
                if g is None:
                    scales.append(None)
                    continue
                norm = math.sqrt(_sum_squares(g))
                scales.append(math.nan if math.isnan(norm) else (c / norm if norm > c else None))
            return scales
        c = self.global_clipnorm
        norm = math.sqrt(math.fsum(_sum_squares(g) for g in arrays if g is not None))
        if not math.isfinite(norm):
            scale: float | None = math.nan  # Keras: the gradients become NaN
        else:
            scale = c / norm if norm > c else None
        return [scale] * len(arrays)

    def _stage_clipped(self, group: _Group, grads: list, scales: list | None) -> np.ndarray:
        """Write the clipped gradients of a group into its gradient buffer."""
        group.grad_buffer()
        cv = self.clipvalue
        for j, g in enumerate(grads):
            if g is None:
                continue
            out = group.gviews[j]
            scale = scales[group.members[j]] if scales is not None else None
            if cv is not None:
                np.clip(g, -cv, cv, out=out)
            elif scale is not None:
                np.multiply(g, scale, out=out)
            else:
                np.copyto(out, g)
        return group.gbuf  # type: ignore[return-value]

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
        count = None
        for key in state.keys():
            if key == "iterations":
                continue
            name, _, pos = str(key).rpartition("/")
            if name not in names or not pos.isdigit():
                raise OpValueError(
                    f"{self._who()}.set_state: unexpected entry {key!r}; this optimizer's slots are "
                    f"{list(names) or 'none'} (keys '<slot>/<position>')"
                )
            arr = np.asarray(state[key])
            if arr.dtype.kind != "f":
                raise OpValueError(f"{self._who()}.set_state: {key!r} has dtype {arr.dtype}, expected floats")
            slots[str(key)] = arr
        if slots:
            positions = {int(k.rpartition("/")[2]) for k in slots}
            count = max(positions) + 1
            expected = {f"{name}/{pos}" for name in names for pos in range(count)}
            absent = sorted(expected - set(slots), key=_key_order)
            if absent:
                more = " ..." if len(absent) > 6 else ""
                raise OpValueError(f"{self._who()}.set_state: the state lacks {absent[:6]}{more}")
        layout = self._layout
        if layout is not None:
            self._check_state_shapes(slots, layout)
            self._load_slots(slots, layout)
        else:
            self._pending = {k: v.copy() for k, v in slots.items()}
        self._iterations = int(iterations)

    def _check_state_shapes(self, slots: dict[str, np.ndarray], layout: _Layout) -> None:
        if not slots:
            return
        count = max(int(k.rpartition("/")[2]) for k in slots) + 1
        if count != len(layout.shapes):
            raise OpValueError(
                f"{self._who()}.set_state: the state holds slots for {count} parameters, "
                f"but the optimizer has {len(layout.shapes)}"
            )
        for key, arr in slots.items():
            pos = int(key.rpartition("/")[2])
            if arr.shape != layout.shapes[pos]:
                raise OpValueError(
                    f"{self._who()}.set_state: {key!r} has shape {arr.shape}, but parameter {pos} "
                    f"has shape {layout.shapes[pos]}"
                )

    def _load_slots(self, slots: dict[str, np.ndarray], layout: _Layout) -> None:
        names = self._slot_names()
        for group in layout.groups:
            for name in names:
                buf = group.slots[name]
                if not slots:
                    buf.fill(self._slot_initial(name))
                    continue
                for j, pos in enumerate(group.members):
                    a, b = group.offsets[j], group.offsets[j + 1]
                    np.copyto(buf[a:b], slots[f"{name}/{pos}"].reshape(-1), casting="same_kind")

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


def _runs(grads: list) -> list[tuple[int, int]]:
    """Maximal ranges [j0, j1) of consecutive entries that are not None."""
    runs = []
    j0 = None
    for j, g in enumerate(grads):
        if g is None:
            if j0 is not None:
                runs.append((j0, j))
                j0 = None
        elif j0 is None:
            j0 = j
    if j0 is not None:
        runs.append((j0, len(grads)))
    return runs


def _sum_squares(g: np.ndarray) -> float:
    flat = np.asarray(g).reshape(-1)
    s = float(np.dot(flat, flat))
    if math.isinf(s) and flat.dtype != np.float64:  # float32 overflow: redo in float64
        flat = flat.astype(np.float64)
        s = float(np.dot(flat, flat))
    return s


def _key_order(key: str) -> tuple[str, int]:
    name, _, pos = key.rpartition("/")
    return name, int(pos)


def _show_signature(sig: list) -> str:
    text = ", ".join(f"{tuple(s)} {dt}" for s, dt in sig[:8])
    return f"[{text}{', ...' if len(sig) > 8 else ''}]"
