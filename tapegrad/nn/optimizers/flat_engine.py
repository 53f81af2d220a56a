"""The optimizers' update engine: flat parameter buffers, the kernels run over them
(on threads or in cache-sized chunks), clipping, decoupled weight decay and the
flushing of subnormal slot values. :class:`FlatBufferEngine` is mixed into
:class:`~tapegrad.nn.optimizers.base.Optimizer`, which supplies the learning rate,
the kernel (``_kernel``, ``_coefficients``, ``_slot_names``, ...) and the state.

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
"""

from __future__ import annotations

import math
from time import perf_counter
from typing import Any, Iterable

import numpy as np

from ...autodiff.variable import Variable
from ...errors import OpTypeError, OpValueError
from . import _parallel
from .flat_layout import _aligned_empty, _Group, _Layout

__all__ = ["FlatBufferEngine"]

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
# slower. The values zeroed change an update by less than lr * 1e-19 (epsilon
# dominates the denominator); optimizers with an epsilon below FLUSH_MIN_EPSILON (for
# which that bound fails) do not flush. (TensorFlow
# flushes subnormals to zero on the CPU.) The schedule depends on ``iterations``
# and the hyperparameters only, so a restored state continues identically.
_FLUSH_MARGIN = 40  # binary orders of magnitude above the subnormal range
FLUSH_MIN_EPSILON = 1e-12
_FLUSH_MAX_PERIOD = 1024


def _flush_period(factors: Iterable[float]) -> int:
    decaying = [f for f in factors if 0.0 < f < 1.0]
    if not decaying:
        return 0
    steps = _FLUSH_MARGIN / -math.log2(min(decaying))
    return 1 << max(0, min(int(math.log2(_FLUSH_MAX_PERIOD)), int(math.floor(math.log2(steps)))))



class FlatBufferEngine:
    """Adoption of the parameters into flat buffers and one update over them. Expects
    of its subclass: ``_iterations``, ``_layout``, ``_pending``, ``_flush_cache``,
    ``weight_decay``, ``clipnorm``, ``clipvalue``, ``global_clipnorm``, ``_lr_at``,
    ``_coefficients``, ``_kernel``, ``_slot_names``, ``_slot_initial``, ``_flush_spec``,
    ``_decays``, ``_who`` and ``_label`` (see :class:`~tapegrad.nn.optimizers.base.Optimizer`)."""

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



def _show_signature(sig: list) -> str:
    text = ", ".join(f"{tuple(s)} {dt}" for s, dt in sig[:8])
    return f"[{text}{', ...' if len(sig) > 8 else ''}]"
