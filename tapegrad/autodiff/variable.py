"""Variable: a NumPy array that GradientTapes can watch.

A Variable owns an ndarray (``_value``). Trainable float Variables are watched by
every tape that has ``watch_accessed_variables=True``; the output of a recorded op
remembers which tapes recorded it (``_tapes``), so a tape only differentiates
through the ops it saw, as in TensorFlow.

Python operators are installed by :mod:`tapegrad.ops.operators`, because they are
ops and the ops need this class first.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _dtypes
from ..errors import OpTypeError, OpValueError, control_flow_error
from .state import tracer as _tracer


class Variable:
    """A differentiable value.

    ``Variable(value, *, name=None, trainable=True, dtype=None)`` copies ``value``
    (a Python number, nested list, NumPy array or Variable). Python numbers and lists
    become the default float dtype (float32); NumPy arrays keep their dtype unless
    ``dtype`` is given. Integer and bool Variables are constants: they are never
    differentiated.
    """

    # _traced (set only while a compiled Function traces, see compiler/tracing.py): the graph
    # value of a Variable the trace computed, tagged with the tracer's serial number.
    # _mask: the sequence mask a layer attached (see ``mask``); unset on most Variables.
    __slots__ = ("_value", "_trainable", "_tapes", "_leaf", "name", "_traced", "_mask", "__weakref__")

    # NumPy must defer to Variable: ``ndarray - Variable`` calls Variable.__rsub__
    # instead of turning the Variable into an array.
    __array_ufunc__ = None

    def __init__(
        self,
        value: Any,
        *,
        name: str | None = None,
        trainable: bool = True,
        dtype: Any = None,
    ) -> None:
        dt = None if dtype is None else _dtypes.as_dtype(dtype, "Variable")
        if isinstance(value, Variable):
            value = value._value
        arr = _dtypes.to_array(value, dt, _dtypes.DEFAULT_FLOAT, "Variable", "value")
        # The Variable owns a private copy: changing the source later does not change it.
        value = np.array(arr, copy=True)
        # A 0-d value is held as a NumPy scalar, like 0-d op results: NumPy computes on
        # scalars about ten times faster than on 0-d arrays, and much slower on a mix.
        self._value = value[()] if value.ndim == 0 else value
        self.name = name
        # _leaf: the user's trainable flag for a Variable made by the constructor, None for
        # an op result (which may be a view of another Variable's data).
        self._leaf = bool(trainable)
        self._trainable = self._leaf and self._value.dtype.kind == "f"
        self._tapes: tuple = ()
        tracer = _tracer()
        if tracer is not None:
            tracer.new_variable(self)

    # -- the value -----------------------------------------------------------------
    # _value is an ndarray, or a NumPy scalar for a 0-d op result (NumPy computes on
    # scalars several times faster than on 0-d arrays); value() always gives an ndarray.
    def value(self) -> np.ndarray:
        """The NumPy array held by this Variable (not a copy)."""
        self._check_untraced("value()")
        v = self._value
        return v if v.__class__ is np.ndarray else np.asarray(v)

    def numpy(self) -> np.ndarray:
        """The NumPy array held by this Variable (not a copy)."""
        return self.value()

    def assign(self, value: Any) -> Variable:
        """Replace the value in place. The new value must have the same shape and dtype."""
        source = value
        if isinstance(value, Variable):
            value = value._value
        if isinstance(value, np.ndarray):
            if value.dtype != self._value.dtype:
                raise OpTypeError(
                    f"assign: dtype {value.dtype} does not match the Variable's dtype {self._value.dtype}"
                    f"{self._label()}"
                )
            new = value
        else:
            new = _dtypes.to_array(value, self._value.dtype, _dtypes.DEFAULT_FLOAT, "assign", "value")
        if new.shape != self._value.shape:
            raise OpValueError(
                f"assign: shape {new.shape} does not match the Variable's shape {self._value.shape}"
                f"{self._label()}"
            )
        target = self._value
        if target.__class__ is not np.ndarray:  # a NumPy scalar (0-d): rebind
            self._value = new.astype(target.dtype)[()]
        elif self._leaf is None or not target.flags.writeable:
            # An op result may be a view of its input (reshape, slicing): copy before
            # writing so that the input is not changed behind the user's back. A leaf
            # writes in place, also when its data is a view (e.g. of an optimizer's
            # flat parameter buffer).
            self._value = np.array(new, dtype=target.dtype, copy=True)
        else:
            np.copyto(target, new)
        tracer = _tracer()
        if tracer is not None:  # inside a compiled Function: the assignment happens at every call
            tracer.effect("assign", lambda _, new: self.assign(new), f"assign {self.name or 'variable'} :=",
                               [self, source])
        return self

    @property
    def mask(self) -> Any:
        """The sequence mask a layer attached to this value (a bool Variable of shape
        ``(batch, time)``: True where a step is real, False where it is padding), or None.
        ``Embedding(mask_zero=True)`` sets it; layers that keep the time axis pass it on."""
        return getattr(self, "_mask", None)

    @mask.setter
    def mask(self, mask: Any) -> None:
        if mask is None:
            try:
                del self._mask
            except AttributeError:
                pass
            return
        self._mask = mask

    @property
    def trainable(self) -> bool:
        return bool(self._leaf)

    @trainable.setter
    def trainable(self, flag: bool) -> None:
        self._leaf = bool(flag)
        self._trainable = self._leaf and self._value.dtype.kind == "f"

    # -- ndarray-like attributes ---------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self._value.shape

    @property
    def dtype(self) -> np.dtype:
        return self._value.dtype

    @property
    def ndim(self) -> int:
        return self._value.ndim

    @property
    def size(self) -> int:
        return self._value.size

    def __len__(self) -> int:
        return len(self._value)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        v = self.value()  # (inside a compiled Function, refused for traced values)
        if dtype is not None and np.dtype(dtype) != v.dtype:
            return v.astype(dtype)
        if copy:
            return v.copy()
        return v

    def __float__(self) -> float:
        return float(self._scalar("float"))

    def __int__(self) -> int:
        return int(self._scalar("int"))

    def _scalar(self, kind: str) -> Any:
        self._check_untraced(f"{kind}()")
        v = self._value
        if v.size != 1:
            raise TypeError(f"{kind}(): only a Variable of size 1 converts to a Python number, got shape {v.shape}")
        return v.reshape(()) if v.ndim else v

    def __index__(self) -> int:
        self._check_untraced("use as an index")
        if self._value.dtype.kind not in "iub":
            raise OpTypeError(f"only integer Variables can be used as an index, got dtype {self._value.dtype}")
        return int(self._value)

    def __bool__(self) -> bool:
        self._check_untraced("bool() (an if, while, and/or)")
        return bool(self._value)

    def _check_untraced(self, what: str) -> None:
        """Inside a compiled Function, refuse to read a traced value: it is not known when
        the graph is built."""
        tracer = _tracer()
        if tracer is not None and tracer.is_traced(self):
            raise control_flow_error(what)

    def __repr__(self) -> str:
        text = np.array_repr(self.value())
        text = "Variable" + text[len("array"):] if text.startswith("array") else f"Variable({text})"
        if self.name is not None:
            text = text[:-1] + f", name={self.name!r})"
        return text

    def __str__(self) -> str:
        return str(self._value)

    def __format__(self, spec: str) -> str:
        return format(self._value if self._value.ndim else self._value.item(), spec)

    # ``==`` and ``hash`` are object's (identity), so Variables can be dict keys. Neither is
    # defined here: inheriting object's C slots keeps dict lookups in backprop fast.

    def _label(self) -> str:
        return f" (Variable {self.name!r})" if self.name else ""

    def __reduce__(self) -> Any:  # copy/deepcopy support; values only
        return (_rebuild, (self.value(), self.name, bool(self._leaf)))


def _rebuild(value: np.ndarray, name: str | None, trainable: bool) -> Variable:
    return Variable(value, name=name, trainable=trainable)


_new_object = object.__new__


def wrap(value: np.ndarray) -> Variable:
    """Wrap an ndarray the caller owns as a constant Variable, without a copy.

    This is the fast constructor used for op results.
    """
    v = _new_object(Variable)
    v._value = value
    v._trainable = False
    v._leaf = None
    v._tapes = ()
    v.name = None
    return v
