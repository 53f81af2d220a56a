"""Primitives and the recording hook: the one place where ops meet tapes.

A :class:`Primitive` bundles an op's NumPy forward (``impl``) with its VJP rules.
Rules are written with primitives and Python operators, so that the same rule:

* runs on raw ndarrays (plain NumPy speed) when nobody differentiates the
  backward pass, and
* runs on Variables, and is itself recorded, when a tape is active during
  ``tape.gradient``: that is what gives derivatives of any order.

A rule has the signature ``rule(g, out, *inputs, **params)`` and returns the
cotangent of one input; ``g`` is the cotangent of ``out``. A primitive flagged
``broadcasting`` has each returned cotangent summed back to its input's shape by
the tape, so its rules may return the broadcast shape.

Calling a primitive object (``mul_p(a, b)``) is polymorphic: with ndarrays it
returns an ndarray, with any Variable it applies the op and returns a Variable.
``prim.apply(...)`` always returns a Variable: it is what public ops call.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable

import numpy as np

from .. import _dtypes
from ..errors import OpTypeError, OpValueError, TapegradError, describe
from . import state as _state
from .state import current as _current_recording
from .variable import Variable, wrap

_ndarray = np.ndarray
_asarray = np.asarray


# Every primitive that exists (tests check that each built-in one has all its rules).
ALL_PRIMITIVES: weakref.WeakSet[Primitive] = weakref.WeakSet()


def forward_hook(prim: Primitive, args: tuple, vals: Any, params: Any, out: Variable, recording: Any) -> None:
    """Computes tangents while forward traces are active (autodiff/forward.py installs it)."""


def stack_nested(value: list | tuple, op: str, arg: str) -> Variable | None:
    """Stacks a list that holds Variables (tapegrad.ops installs it: stacking is an op)."""
    return None


class Primitive:
    """An op: a NumPy forward plus one VJP rule per input (or one joint rule)."""

    __slots__ = (
        "name", "impl", "argnames", "vjp_rules", "vjp_joint", "jvp_rules", "jvp_joint", "batch_rule",
        "broadcasting", "differentiable", "check", "impure", "apply1", "apply2", "__weakref__",
    )

    def __init__(
        self,
        name: str,
        impl: Callable[..., Any],
        argnames: tuple[str, ...] = ("x",),
        *,
        broadcasting: bool = False,
        differentiable: bool = True,
        check: Callable[..., str | None] | None = None,
        impure: bool = False,
    ) -> None:
        self.name = name
        self.impl = impl
        self.argnames = argnames
        self.broadcasting = broadcasting
        self.differentiable = differentiable
        # check(vals, params) -> message or None: explains why impl failed.
        self.check = check
        # impure: the result is not a function of the inputs alone (a random draw). The
        # compiler never folds, merges or re-executes it to differentiate.
        self.impure = impure
        self.vjp_rules: tuple | None = None
        self.vjp_joint: Callable[..., Any] | None = None
        self.jvp_rules: tuple | None = None  # forward mode (see autodiff/forward.py)
        self.jvp_joint: Callable[..., Any] | None = None
        self.batch_rule: Callable[..., Any] | None = None  # vmap (see autodiff/batching.py)
        # Specialised apply() for one and two inputs without parameters: the eager hot path.
        self.apply1 = _make_apply1(self)
        self.apply2 = _make_apply2(self)
        ALL_PRIMITIVES.add(self)

    def __repr__(self) -> str:
        return f"<Primitive {self.name}>"

    # -- definition ----------------------------------------------------------------
    def defvjp(self, *rules: Callable[..., Any]) -> Primitive:
        """One rule per input: ``rule(g, out, *inputs, **params) -> cotangent``."""
        self.vjp_rules = rules
        return self

    def defvjp_joint(self, rule: Callable[..., Any]) -> Primitive:
        """One rule for all inputs: ``rule(g, out, needs, inputs, params) -> sequence``.

        Used by variadic primitives (concat) and custom gradients.
        """
        self.vjp_joint = rule
        return self

    def defjvp(self, *rules: Callable[..., Any] | None) -> Primitive:
        """Forward mode, one rule per input: ``rule(t, out, *inputs, **params)`` is the part
        of the output's tangent due to that input's tangent ``t`` (None: no part)."""
        self.jvp_rules = rules
        return self

    def defjvp_joint(self, rule: Callable[..., Any]) -> Primitive:
        """Forward mode, one rule for all inputs: ``rule(tangents, out, inputs, params)``
        (a tangent is None where an input has none)."""
        self.jvp_joint = rule
        return self

    def defjvp_diagonal(self) -> Primitive:
        """An elementwise op: its Jacobian is diagonal, so each VJP rule applied to a
        tangent is also the JVP rule."""
        self.jvp_rules = self.vjp_rules
        return self

    def defjvp_linear(self) -> Primitive:
        """An op linear in its first input (any others are indices or shapes): the output's
        tangent is the op applied to the first input's tangent."""
        prim = self
        self.jvp_joint = lambda tangents, out, inputs, params: (
            None if tangents[0] is None else prim(tangents[0], *inputs[1:], **params))
        return self

    # -- application -----------------------------------------------------------------
    def __call__(self, *args: Any, **params: Any) -> Any:
        for a in args:
            if a.__class__ is Variable:
                return self.apply(*args, **params)
        return self.impl(*args, **params)

    def apply(self, *args: Any, **params: Any) -> Variable:
        vals = []
        converted = False
        for i, a in enumerate(args):
            if a.__class__ is Variable:
                vals.append(a._value)
            else:
                vals.append(self.constant(i, a))
                converted = True
        if converted:
            # constants are recorded converted, so that VJP rules see the same values in both modes
            args = tuple(a if a.__class__ is Variable else v for a, v in zip(args, vals))
            vals = [v._value if v.__class__ is Variable else v for v in vals]
        try:
            out = self.impl(*vals, **params)
        except (ValueError, TypeError, IndexError) as exc:
            raise self.error(exc, vals, params) from None
        if out.__class__ is not _ndarray:
            out = as_value(out)
        res = wrap(out)
        recording = _current_recording()
        if recording is not None:
            if recording.tapes and self.differentiable:
                record(self, args, vals, params, res, recording.tapes)
            if recording.tracers:
                recording.tracers[-1].record(self, args, vals, params, res)
            if recording.forward:
                forward_hook(self, args, vals, params, res, recording)
        return res

    # -- argument checking -----------------------------------------------------------
    def argname(self, i: int) -> str:
        return self.argnames[i] if i < len(self.argnames) else f"{self.argnames[-1]}[{i}]"

    def constant(self, i: int, value: Any) -> Any:
        """Check a non-Variable argument. Python numbers stay Python numbers, so that
        NumPy treats them as weakly typed (``float32_array * 2.0`` stays float32)."""
        cls = value.__class__
        if cls is float or cls is int or cls is bool:
            return value
        if cls is _ndarray or isinstance(value, np.generic):
            if value.dtype.kind not in "biuf":
                raise OpTypeError(
                    f"{self.name}: argument {self.argname(i)} has dtype {value.dtype}, "
                    f"which is not a number dtype (expected float, int or bool)"
                )
            return value
        if isinstance(value, (list, tuple)):
            stacked = stack_nested(value, self.name, self.argname(i))
            if stacked is not None:
                return stacked  # a Variable: the op takes the list's Variables differentiably
            return _dtypes.to_array(value, None, _dtypes.DEFAULT_FLOAT, self.name, self.argname(i))
        if isinstance(value, (int, float)):  # subclasses of int/float, e.g. IntEnum
            return value
        raise OpTypeError(
            f"{self.name}: argument {self.argname(i)} must be a Variable, NumPy array or number, "
            f"got {type(value).__name__}"
        )

    def error(self, exc: Exception, vals: list, params: dict) -> Exception:
        """Turn a NumPy failure into an error that names the op, arguments and shapes."""
        if isinstance(exc, TapegradError):
            return exc
        message = self.check(vals, params) if self.check is not None else None
        if message is None:
            args = ", ".join(f"{self.argname(i)}: {describe(v)}" for i, v in enumerate(vals))
            if self.broadcasting and "broadcast" in str(exc):
                shapes = " and ".join(f"{self.argname(i)} {np.shape(v)}" for i, v in enumerate(vals))
                message = f"shapes cannot be broadcast together: {shapes}"
            else:
                extra = ", ".join(f"{k}={v!r}" for k, v in params.items())
                message = f"{exc} ({args}{'; ' + extra if extra else ''})"
        cls = OpTypeError if isinstance(exc, TypeError) and not isinstance(exc, ValueError) else OpValueError
        return cls(f"{self.name}: {message}")


def as_value(out: Any) -> Any:
    """A result that is not an ndarray: NumPy scalars (what ufuncs return for 0-d
    inputs) are kept, because NumPy computes on them several times faster than on
    0-d arrays; anything else becomes an ndarray."""
    if isinstance(out, np.generic):
        return out
    return _asarray(out)


# The NumPy scalar types op results may be (checked by class, faster than isinstance).
_SCALAR_TYPES = frozenset({np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8,
                           np.uint64, np.uint32, np.uint16, np.uint8, np.bool_})


_new_object = object.__new__


def _make_apply1(prim: Primitive) -> Callable[[Any], Variable]:
    impl, constant, error = prim.impl, prim.constant, prim.error
    differentiable = prim.differentiable
    current_recording = _current_recording

    def apply1(x: Any) -> Variable:
        # A constant argument is replaced by its converted value everywhere, also in the
        # recorded node, so that VJP rules see the same value in both backprop modes.
        if x.__class__ is Variable:
            xv = x._value
        else:
            x = constant(0, x)
            xv = x._value if x.__class__ is Variable else x
        try:
            out = impl(xv)
        except (ValueError, TypeError, IndexError) as exc:
            raise error(exc, [xv], {}) from None
        if out.__class__ is not _ndarray and out.__class__ not in _SCALAR_TYPES:
            out = as_value(out)
        res = _new_object(Variable)
        res._value = out
        res._trainable = False
        res._leaf = None
        res._tapes = ()
        res.name = None
        recording = current_recording()
        if recording is None:
            return res
        tapes = recording.tapes
        if tapes and differentiable:
            if len(tapes) == 1:
                # One tape: the common case, inlined. A result this tape recorded carries
                # the tape's own ``_serials`` tuple, so the identity test usually decides.
                mark, serial, accessed, watched, append = tapes[0]._recorder
                if x.__class__ is Variable and (
                    x._tapes is mark
                    or (x._trainable and accessed)
                    or (x._tapes and serial in x._tapes)
                    or (watched and id(x) in watched)
                ):
                    append((prim, (x,), (xv,), None, res, _ONE))
                    res._tapes = mark
            else:
                record(prim, (x,), (xv,), None, res, tapes)
        if recording.tracers:
            recording.tracers[-1].record(prim, (x,), (xv,), None, res)
        if recording.forward:
            forward_hook(prim, (x,), (xv,), None, res, recording)
        return res

    return apply1


def _make_apply2(prim: Primitive, reflected: bool = False) -> Callable[[Any, Any], Variable]:
    impl, constant, error = prim.impl, prim.constant, prim.error
    differentiable = prim.differentiable
    current_recording = _current_recording

    def apply2(x: Any, y: Any) -> Variable:
        # A constant argument is replaced by its converted value everywhere, also in the
        # recorded node, so that VJP rules see the same value in both backprop modes.
        if x.__class__ is Variable:
            xv = x._value
        else:
            x = constant(0, x)
            xv = x._value if x.__class__ is Variable else x
        if y.__class__ is Variable:
            yv = y._value
        else:
            y = constant(1, y)
            yv = y._value if y.__class__ is Variable else y
        try:
            out = impl(xv, yv)
        except (ValueError, TypeError, IndexError) as exc:
            raise error(exc, [xv, yv], {}) from None
        if out.__class__ is not _ndarray and out.__class__ not in _SCALAR_TYPES:
            out = as_value(out)
        res = _new_object(Variable)
        res._value = out
        res._trainable = False
        res._leaf = None
        res._tapes = ()
        res.name = None
        recording = current_recording()
        if recording is None:
            return res
        tapes = recording.tapes
        if tapes and differentiable:
            if len(tapes) == 1:
                mark, serial, accessed, watched, append = tapes[0]._recorder
                nx = x.__class__ is Variable and (
                    x._tapes is mark
                    or (x._trainable and accessed)
                    or (x._tapes and serial in x._tapes)
                    or (watched and id(x) in watched)
                )
                ny = y.__class__ is Variable and (
                    y._tapes is mark
                    or (y._trainable and accessed)
                    or (y._tapes and serial in y._tapes)
                    or (watched and id(y) in watched)
                )
                if nx:
                    append((prim, (x, y), (xv, yv), None, res, _BOTH if ny else _FIRST))
                    res._tapes = mark
                elif ny:
                    append((prim, (x, y), (xv, yv), None, res, _SECOND))
                    res._tapes = mark
            else:
                record(prim, (x, y), (xv, yv), None, res, tapes)
        if recording.tracers:
            recording.tracers[-1].record(prim, (x, y), (xv, yv), None, res)
        if recording.forward:
            forward_hook(prim, (x, y), (xv, yv), None, res, recording)
        return res

    if reflected:
        # For Python's reflected operators: ``other - v`` calls ``v.__rsub__(other)``.
        def apply2_reflected(y: Any, x: Any) -> Variable:
            return apply2(x, y)

        return apply2_reflected
    return apply2


# The needs of recorded nodes, shared (no allocation per op). backprop tests
# ``needs is _ONE`` for its unary fast path.
_ONE = (True,)
_BOTH, _FIRST, _SECOND = (True, True), (True, False), (False, True)


# ---------------------------------------------------------------------------------
# Recording. A node is a plain tuple (fast to build):
#   (prim, args, vals, params, out, needs)
# args are what the op was called with (Variables or constants), vals their raw
# values, params the op's keyword parameters (or None), out the result Variable,
# and needs[i] says whether input i is connected to a tape that recorded the node.
# ---------------------------------------------------------------------------------


def record(prim: Primitive, args: tuple, vals: Any, params: dict | None, out: Variable,
           tapes: tuple | None = None) -> None:
    """Record one op application on the tapes of this thread (``tapes``, when the caller
    has them at hand) that watch one of its inputs."""
    if tapes is None:
        tapes = _state.active_tapes()
        if not tapes:
            return
    if len(tapes) == 1:
        mark, serial, accessed, watched, append = tapes[0]._recorder
        flags = []
        hit = False
        for a in args:
            if a.__class__ is Variable and (
                a._tapes is mark or (a._trainable and accessed) or serial in a._tapes
                or (watched and id(a) in watched)
            ):
                flags.append(True)
                hit = True
            else:
                flags.append(False)
        if hit:
            append((prim, args, vals, params, out, tuple(flags)))
            out._tapes = mark
        return
    owners = []
    flags = [False] * len(args)
    for tape in tapes:
        serial, accessed, watched = tape._serial, tape._watch_accessed, tape._watched
        hit = False
        for i, a in enumerate(args):
            if a.__class__ is Variable and (
                (accessed and a._trainable) or serial in a._tapes or (bool(watched) and id(a) in watched)
            ):
                flags[i] = hit = True
        if hit:
            owners.append(tape)
    if owners:
        node = (prim, args, vals, params, out, tuple(flags))
        for tape in owners:
            tape._nodes.append(node)
        out._tapes = tuple(t._serial for t in owners)
