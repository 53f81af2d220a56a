"""``K = nn.backend()``: NumPy helpers on raw values, with Rindow's argument orders.

Rindow's backend (``$K = $nn->backend()``) works on NDArrays outside the tape. Here its
functions take Variables or arrays (a Variable gives its value) and return new NumPy
arrays; they never change their arguments, except ``copy(x, to)`` which writes into
``to``, as Rindow's does. The functions that Rindow's sample programs call keep its
argument order and semantics:

* ``slice(x, begin, size)``: ``size[i] == -1`` means "to the end" (-2 one less, ...);
* ``repeat(x, repeats, axis)``: inserts a new axis of length ``repeats`` at ``axis``
  (``keepdims=True`` repeats along the existing one, as ``np.repeat`` of whole rows);
* ``range(limit, start=None, delta=None)``: floats of ``nn``'s dtype unless ``dtype`` is given;
* ``masking(mask, a, fill=0, mode=0, batch_dims=0, axis=batch_dims)``: ``a`` where the
  bool ``mask`` is true, else ``fill`` (mode 0) or ``a + fill`` (mode 1); the mask covers
  the axes ``[axis, axis + mask.ndim - batch_dims)`` of ``a`` and broadcasts over the others;
* ``equal(x, y)``: 1 where equal, 0 elsewhere, in ``y``'s dtype; ``argmax(x)`` without an
  axis is the index into the flattened array (an int), with an axis int32 indices;
* ``scale(a, x)`` is ``a * x``, ``increment(x, b, a=1)`` is ``a * x + b``,
  ``reciprocal(x, beta=0, alpha=1)`` is ``1 / (alpha * x + beta)``.

Anything else NumPy offers is reachable too (``K.sqrt``, ``K.exp``, ``K.dot``, ...).
"""

from __future__ import annotations

import builtins
import math
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from . import _dtypes
from .autodiff.variable import Variable
from .errors import OpTypeError, OpValueError

if TYPE_CHECKING:
    from .builder import NeuralNetworks


def _v(x: Any) -> Any:
    return x.value() if isinstance(x, Variable) else x


def _array(x: Any, fn: str, arg: str = "x") -> np.ndarray:
    x = _v(x)
    if isinstance(x, np.ndarray):
        return x
    try:
        arr = np.asarray(x)
    except ValueError as exc:
        raise OpValueError(f"K.{fn}: {arg} is a ragged nested list ({exc})") from None
    if arr.dtype.kind not in "biuf":
        raise OpTypeError(f"K.{fn}: {arg} must hold numbers, got {type(x).__name__} of dtype {arr.dtype}")
    return arr


def _axis(axis: Any, ndim: int, fn: str, arg: str = "axis", inclusive: bool = False) -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise OpTypeError(f"K.{fn}: {arg} must be an int, got {axis!r}")
    top = ndim + 1 if inclusive else ndim
    a = int(axis) + top if axis < 0 else int(axis)
    if not 0 <= a < top:
        raise OpValueError(f"K.{fn}: {arg}={axis} is out of range for an array of {ndim} dimension(s)")
    return a


def _trailing(x: np.ndarray, y: np.ndarray, trans: bool | None) -> np.ndarray:
    """Rindow's ``trans=True``: the lower-rank operand lines up with the leading axes."""
    if not trans:
        return x
    return x.reshape(x.shape + (1,) * (y.ndim - x.ndim)) if x.ndim < y.ndim else x


class Backend:
    """``K``: NumPy helpers that take Variables or arrays and return NumPy values.
    ``K()`` returns ``K`` (Rindow writes both ``$nn->backend()`` and ``$nn->backend``)."""

    def __init__(self, nn: NeuralNetworks) -> None:
        self._nn = nn

    def __call__(self) -> Backend:
        return self

    @property
    def dtype(self) -> np.dtype:
        return self._nn.dtype

    def _float(self, dtype: Any, fn: str) -> np.dtype:
        return self._nn.dtype if dtype is None else _dtypes.as_dtype(dtype, f"K.{fn}")

    _v = staticmethod(_v)

    # -- values in and out -------------------------------------------------------------
    def scalar(self, x: Any) -> float | int | bool:
        """A size-1 array or Variable as a Python number."""
        value = np.asarray(_v(x))
        if value.size != 1:
            raise OpTypeError(f"K.scalar: expected a single value, got shape {value.shape}")
        return value.reshape(()).item()

    def array(self, x: Any, dtype: Any = None) -> np.ndarray:
        """A new ndarray; Python numbers and lists take ``nn``'s float dtype."""
        x = _v(x)
        dt = None if dtype is None else _dtypes.as_dtype(dtype, "K.array")
        return np.array(_dtypes.to_array(x, dt, self._nn.dtype, "K.array", "x"), copy=True)

    def ndarray(self, x: Any) -> np.ndarray:
        """The NumPy array of a Variable (an array is returned as it is)."""
        return np.asarray(_v(x))

    def zeros(self, shape: Any, dtype: Any = None) -> np.ndarray:
        return np.zeros(shape, dtype=self._float(dtype, "zeros"))

    def ones(self, shape: Any, dtype: Any = None) -> np.ndarray:
        return np.ones(shape, dtype=self._float(dtype, "ones"))

    alloc = zeros

    def zeros_like(self, x: Any) -> np.ndarray:
        return np.zeros_like(_v(x))

    def ones_like(self, x: Any) -> np.ndarray:
        return np.ones_like(_v(x))

    def fill(self, shape: Any, value: Any, dtype: Any = None) -> np.ndarray:
        """An array of ``shape`` filled with ``value`` (``nn``'s float dtype by default)."""
        return np.full(shape, value, dtype=self._float(dtype, "fill"))

    def cast(self, x: Any, dtype: Any) -> np.ndarray:
        return np.asarray(_v(x)).astype(_dtypes.as_dtype(dtype, "K.cast"))

    def copy(self, x: Any, to: Any = None) -> np.ndarray:
        """A copy of ``x``; with ``to`` (an array of the same shape, e.g. a slice of a larger
        one), ``x`` is written into ``to``, which is returned (Rindow's ``copy($from, $to)``)."""
        x = _v(x)
        if to is None:
            return np.array(x, copy=True)
        if not isinstance(to, np.ndarray):
            raise OpTypeError(f"K.copy: to must be a NumPy array to write into, got {type(to).__name__}")
        if np.shape(x) != to.shape:
            raise OpValueError(f"K.copy: x has shape {np.shape(x)} but to has shape {to.shape}")
        np.copyto(to, x, casting="unsafe")
        return to

    def shape(self, x: Any) -> tuple[int, ...]:
        return tuple(np.shape(_v(x)))

    def ndim(self, x: Any) -> int:
        return int(np.ndim(_v(x)))

    def to_string(self, x: Any) -> str:
        from .format import to_string

        return to_string(x)

    # -- elementwise ---------------------------------------------------------------------
    def add(self, x: Any, y: Any, trans: bool | None = None) -> np.ndarray:
        x, y = _array(x, "add"), _array(y, "add", "y")
        return _trailing(x, y, trans) + _trailing(y, x, trans)

    def sub(self, x: Any, y: Any, trans: bool | None = None) -> np.ndarray:
        x, y = _array(x, "sub"), _array(y, "sub", "y")
        return _trailing(x, y, trans) - _trailing(y, x, trans)

    def mul(self, x: Any, y: Any, trans: bool | None = None) -> np.ndarray:
        x, y = _array(x, "mul"), _array(y, "mul", "y")
        return _trailing(x, y, trans) * _trailing(y, x, trans)

    def div(self, x: Any, y: Any, trans: bool | None = None) -> np.ndarray:
        x, y = _array(x, "div"), _array(y, "div", "y")
        return _trailing(x, y, trans) / _trailing(y, x, trans)

    def scale(self, a: float, x: Any) -> np.ndarray:
        """``a * x`` (a new array of ``x``'s float dtype)."""
        x = _array(x, "scale")
        out = a * x
        return out.astype(x.dtype, copy=False) if x.dtype.kind == "f" else out

    def increment(self, x: Any, b: float, a: float | None = None) -> np.ndarray:
        """``a * x + b`` (``a`` defaults to 1)."""
        x = _array(x, "increment")
        out = (1.0 if a is None else a) * x + b
        return out.astype(x.dtype, copy=False) if x.dtype.kind == "f" else out

    def reciprocal(self, x: Any, beta: float | None = None, alpha: float | None = None) -> np.ndarray:
        """``1 / (alpha * x + beta)`` (``alpha`` defaults to 1, ``beta`` to 0)."""
        x = _array(x, "reciprocal")
        out = 1.0 / ((1.0 if alpha is None else alpha) * x + (0.0 if beta is None else beta))
        return out.astype(x.dtype, copy=False) if x.dtype.kind == "f" else out

    def pow(self, x: Any, y: Any, trans: bool | None = None) -> np.ndarray:
        """``x ** y`` (``y`` a number or an array that broadcasts), in ``x``'s dtype."""
        x = _array(x, "pow")
        y = _array(y, "pow", "y")
        out = _trailing(x, y, trans) ** _trailing(y, x, trans)
        return out.astype(x.dtype, copy=False) if x.dtype.kind == "f" else out

    def equal(self, x: Any, y: Any) -> np.ndarray:
        """1 where ``x == y``, else 0, in ``y``'s dtype (Rindow's result type)."""
        x, y = _array(x, "equal"), _array(y, "equal", "y")
        return np.equal(x, y).astype(y.dtype)

    def not_equal(self, x: Any, y: Any) -> np.ndarray:
        """1 where ``x != y``, else 0, in ``y``'s dtype."""
        x, y = _array(x, "not_equal"), _array(y, "not_equal", "y")
        return np.not_equal(x, y).astype(y.dtype)

    def masking(self, mask: Any, a: Any, fill: float | None = None, mode: int | None = None,
                batch_dims: int | None = None, axis: int | None = None) -> np.ndarray:
        """``a`` where ``mask`` is true, else ``fill`` (``mode=0``, the default) or ``a + fill``
        (``mode=1``). ``mask`` (bool) has the shape of ``a``'s first ``batch_dims`` axes
        followed by the axes from ``axis`` on; it broadcasts over the axes between
        ``batch_dims`` and ``axis`` and over the trailing axes it does not cover."""
        mask, a = _array(mask, "masking", "mask"), _array(a, "masking", "a")
        if mask.dtype != np.bool_:
            raise OpTypeError(f"K.masking: mask must be a bool array, got dtype {mask.dtype}")
        fill = 0.0 if fill is None else fill
        mode = 0 if mode is None else mode
        if mode not in (0, 1):
            raise OpValueError(f"K.masking: mode must be 0 (set) or 1 (add), got {mode!r}")
        nb = 0 if batch_dims is None else _axis(batch_dims, a.ndim, "masking", "batch_dims", inclusive=True)
        ax = nb if axis is None else _axis(axis, a.ndim, "masking", "axis", inclusive=True)
        if nb > ax:
            if ax != 0:
                raise OpValueError(f"K.masking: batch_dims ({nb}) must be <= axis ({ax})")
            nb = 0
        inner = mask.ndim - nb
        if inner < 0 or ax + inner > a.ndim or mask.shape[:nb] != a.shape[:nb] \
                or mask.shape[nb:] != a.shape[ax:ax + inner]:
            raise OpValueError(f"K.masking: a mask of shape {mask.shape} does not fit data of shape {a.shape} "
                               f"with batch_dims={nb} and axis={ax} (the mask's shape must be the data's first "
                               f"{nb} dimension(s) followed by its dimensions from axis {ax} on)")
        expanded = mask.reshape(mask.shape[:nb] + (1,) * (ax - nb) + mask.shape[nb:]
                                + (1,) * (a.ndim - ax - inner))
        if mode == 0:
            return np.where(expanded, a, np.asarray(fill, dtype=a.dtype))
        return np.where(expanded, a, a + np.asarray(fill, dtype=a.dtype))

    def softmax(self, x: Any) -> np.ndarray:
        """The softmax over the last axis (stable for large inputs)."""
        x = _array(x, "softmax")
        if x.ndim == 0:
            raise OpValueError("K.softmax: x must have at least one dimension, got a scalar")
        e = np.exp(x - np.max(x, axis=-1, keepdims=True))
        return e / np.sum(e, axis=-1, keepdims=True)

    # -- reductions ----------------------------------------------------------------------
    def sum(self, x: Any, axis: Any = None, keepdims: bool | None = False) -> Any:
        return np.sum(_v(x), axis=axis, keepdims=bool(keepdims))

    def mean(self, x: Any, axis: Any = None, keepdims: bool | None = False) -> Any:
        return np.mean(_v(x), axis=axis, keepdims=bool(keepdims))

    def max(self, x: Any, axis: Any = None, keepdims: bool | None = False) -> Any:
        return np.max(_v(x), axis=axis, keepdims=bool(keepdims))

    def min(self, x: Any, axis: Any = None, keepdims: bool | None = False) -> Any:
        return np.min(_v(x), axis=axis, keepdims=bool(keepdims))

    def argmax(self, x: Any, axis: int | None = None, keepdims: bool | None = False, dtype: Any = None) -> Any:
        """Without ``axis``: the index into the flattened array, as an int. With ``axis``:
        the indices along it (int32 unless ``dtype`` is given)."""
        x = _array(x, "argmax")
        if axis is None:
            return int(np.argmax(x))
        out = np.argmax(x, axis=_axis(axis, x.ndim, "argmax"), keepdims=bool(keepdims))
        return out.astype(np.int32 if dtype is None else _dtypes.as_dtype(dtype, "K.argmax"))

    def argmin(self, x: Any, axis: int | None = None, keepdims: bool | None = False, dtype: Any = None) -> Any:
        """As :meth:`argmax`, for the smallest value."""
        x = _array(x, "argmin")
        if axis is None:
            return int(np.argmin(x))
        out = np.argmin(x, axis=_axis(axis, x.ndim, "argmin"), keepdims=bool(keepdims))
        return out.astype(np.int32 if dtype is None else _dtypes.as_dtype(dtype, "K.argmin"))

    # -- shapes ----------------------------------------------------------------------------
    def expand_dims(self, x: Any, axis: int) -> np.ndarray:
        x = _array(x, "expand_dims")
        return np.expand_dims(x, _axis(axis, x.ndim, "expand_dims", inclusive=True))

    def squeeze(self, x: Any, axis: int | None = None) -> np.ndarray:
        """Without ``axis``: drop every axis of length 1; with it, that axis (which must be 1)."""
        x = _array(x, "squeeze")
        if axis is None:
            return x.reshape([n for n in x.shape if n != 1])
        a = _axis(axis, x.ndim, "squeeze")
        if x.shape[a] != 1:
            raise OpValueError(f"K.squeeze: axis {axis} of shape {x.shape} has length {x.shape[a]}, not 1")
        return np.squeeze(x, axis=a)

    def transpose(self, x: Any, perm: Sequence[int] | None = None) -> np.ndarray:
        return np.transpose(_v(x), perm)

    def slice(self, x: Any, begin: Sequence[int], size: Sequence[int]) -> np.ndarray:
        """A copy of the block starting at ``begin`` (one entry per leading axis) with
        ``size`` elements along each of those axes; a negative begin counts from the end,
        a size of -1 reaches the end (-2 stops one before it, ...)."""
        x = _array(x, "slice")
        begin, size = list(begin), list(size)
        if len(begin) != len(size):
            raise OpValueError(f"K.slice: begin {begin} and size {size} must have the same length")
        if not 1 <= len(begin) <= x.ndim:
            raise OpValueError(f"K.slice: begin {begin} must have 1 to {x.ndim} entries for an array of shape "
                               f"{x.shape}")
        index = []
        for i, (b, s) in enumerate(zip(begin, size)):
            n = x.shape[i]
            start = b + n if b < 0 else b
            if not 0 <= start < n:
                raise OpValueError(f"K.slice: begin[{i}]={b} is out of range for axis {i} of length {n}")
            count = n - start + s + 1 if s < 0 else s
            if count < 1 or start + count > n:
                raise OpValueError(f"K.slice: size[{i}]={s} from begin {start} does not fit axis {i} of length {n}")
            index.append(builtins.slice(start, start + count))
        return x[tuple(index)].copy()

    def stick(self, x: Any, to: np.ndarray, begin: Sequence[int], size: Sequence[int]) -> np.ndarray:
        """The inverse of :meth:`slice`: writes ``x`` into the block of ``to`` that
        ``slice(to, begin, size)`` reads, and returns ``to``."""
        if not isinstance(to, np.ndarray):
            raise OpTypeError(f"K.stick: to must be a NumPy array to write into, got {type(to).__name__}")
        block = self.slice(to, begin, size)  # checks the arguments
        start = [b + n if b < 0 else b for b, n in zip(begin, to.shape)]
        index = tuple(builtins.slice(s, s + n) for s, n in zip(start, block.shape))
        x = _array(x, "stick")
        if x.shape != block.shape:
            raise OpValueError(f"K.stick: x has shape {x.shape} but the block has shape {block.shape}")
        to[index] = x
        return to

    def concat(self, values: Sequence[Any], axis: int | None = None) -> np.ndarray:
        """Join arrays along ``axis`` (default: the last)."""
        arrays = [_array(v, "concat", f"values[{i}]") for i, v in enumerate(values)]
        if not arrays:
            raise OpValueError("K.concat: values is empty")
        a = _axis(-1 if axis is None else axis, arrays[0].ndim, "concat")
        try:
            return np.concatenate(arrays, axis=a)
        except ValueError:
            raise OpValueError(f"K.concat: shapes {[v.shape for v in arrays]} do not match except along axis "
                               f"{a}") from None

    def stack(self, values: Sequence[Any], axis: int | None = None) -> np.ndarray:
        arrays = [_array(v, "stack", f"values[{i}]") for i, v in enumerate(values)]
        try:
            return np.stack(arrays, axis=0 if axis is None else axis)
        except ValueError:
            raise OpValueError(f"K.stack: shapes {[v.shape for v in arrays]} must be equal") from None

    def split(self, x: Any, size_splits: Sequence[int], axis: int | None = None) -> list[np.ndarray]:
        """Cut ``x`` along ``axis`` (default: the last) into pieces of the given sizes."""
        x = _array(x, "split")
        a = _axis(-1 if axis is None else axis, x.ndim, "split")
        if builtins.sum(size_splits) != x.shape[a]:
            raise OpValueError(f"K.split: sizes {list(size_splits)} do not add up to {x.shape[a]}, the length of "
                               f"axis {a} of shape {x.shape}")
        return np.split(x, np.cumsum(size_splits)[:-1], axis=a)

    def repeat(self, x: Any, repeats: int, axis: int | None = None, keepdims: bool | None = None) -> np.ndarray:
        """Rindow's repeat: without ``axis``, the flattened ``x`` repeated ``repeats`` times
        (1-D); with ``axis``, ``repeats`` copies of ``x``'s block from ``axis`` on, stacked
        on a new axis at ``axis`` (``keepdims=True``: along the existing axis instead)."""
        x = _array(x, "repeat")
        if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
            raise OpValueError(f"K.repeat: repeats must be an int >= 1, got {repeats!r}")
        if axis is None:
            return np.tile(x.reshape(-1), repeats)
        a = _axis(axis, x.ndim, "repeat", inclusive=True)
        if keepdims:
            if a == x.ndim:
                raise OpValueError(f"K.repeat: keepdims needs an existing axis, got axis={axis} for shape {x.shape}")
            return np.tile(x, (1,) * a + (repeats,) + (1,) * (x.ndim - a - 1))
        return np.repeat(np.expand_dims(x, a), repeats, axis=a)

    def range(self, limit: float, start: float | None = None, delta: float | None = None,
              dtype: Any = None) -> np.ndarray:
        """``start, start + delta, ...`` up to ``limit`` (excluded, as ``tf.range``; Rindow
        drops the last value when ``delta`` does not divide ``limit - start``); ``start``
        defaults to 0 and ``delta`` to 1 (-1 when ``limit < start``). Floats of ``nn``'s
        dtype unless ``dtype`` is given."""
        start = 0 if start is None else start
        delta = (1 if limit >= start else -1) if delta is None else delta
        if delta == 0:
            raise OpValueError("K.range: delta must not be 0")
        count = builtins.max(int(math.ceil((limit - start) / delta)), 0)
        return (start + delta * np.arange(count)).astype(self._float(dtype, "range"))

    def onehot(self, x: Any, depth: int, dtype: Any = None) -> np.ndarray:
        idx = np.asarray(_v(x))
        out = np.zeros(idx.shape + (int(depth),), dtype=self._float(dtype, "onehot"))
        np.put_along_axis(out, idx[..., None].astype(np.intp), 1, axis=-1)
        return out

    one_hot = onehot

    # -- random ------------------------------------------------------------------------------
    def random_uniform(self, shape: Any, low: float = 0.0, high: float = 1.0, dtype: Any = None,
                       seed: int | None = None) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return rng.uniform(low, high, shape).astype(self._float(dtype, "random_uniform"))

    def random_normal(self, shape: Any, mean: float = 0.0, scale: float = 1.0, dtype: Any = None,
                      seed: int | None = None) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return rng.normal(mean, scale, shape).astype(self._float(dtype, "random_normal"))

    def __getattr__(self, name: str) -> Any:
        # Anything else NumPy offers (K.sqrt, K.exp, K.dot, ...), on unwrapped values.
        fn = getattr(np, name, None)
        if name.startswith("_") or fn is None or not callable(fn):
            raise AttributeError(f"the backend has no function {name!r}")

        def call(*args: Any, **kwargs: Any) -> Any:
            return fn(*[_v(a) for a in args], **kwargs)

        return call

