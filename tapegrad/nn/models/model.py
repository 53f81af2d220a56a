"""Model: a Layer made of layers, with the Keras-level workflow.

``Model`` finds its layers and Variables through its attributes (and lists, tuples and
dicts in them, to any depth), compiles an optimizer, a loss and metrics, and trains
with ``fit``. :class:`~tapegrad.nn.models.AbstractModel` (the seeds' base class) and
:class:`~tapegrad.nn.models.Sequential` subclass it.

Variable discovery is cached: ``trainable_variables()`` walks the attributes once and
afterwards only checks, in about a microsecond, that nothing it depends on has
changed (an attribute of a model set or deleted, a list or dict of layers changed, a
layer built or (un)frozen, a Variable's ``trainable`` flag flipped).

The training loop is split into steps that take one batch of NumPy arrays --
:meth:`Model.train_step` and :meth:`Model.test_step` return ``(loss as a float,
predictions)``, :meth:`Model.predict_step` the predictions as NumPy -- and ``fit`` /
``evaluate`` / ``predict`` call them through ``self._train_fn``, ``self._test_fn`` and
``self._predict_fn``, set by ``compile``: a compiler can replace those three attributes
with compiled versions of the steps (a compiled train step must keep the rule below:
no update from a non-finite loss). The loops themselves only slice batches, update the
metrics with NumPy and call the callbacks.

Non-finite losses: ``train_step`` never applies an update computed from a NaN or
infinite loss. ``fit`` then stops at that batch: by default it raises
:class:`NonFiniteLossError` (a ``ValueError``) naming the epoch and the batch, with
the weights as they were after the last finite step and ``model.history`` (also
``error.history``) holding the completed epochs; with a
:class:`~tapegrad.nn.models.callbacks.TerminateOnNaN` callback it stops gracefully
instead (the callback prints the epoch and batch) and returns that History.
"""

from __future__ import annotations

import inspect
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from ...autodiff import state as _state
from ...autodiff.tape import GradientTape
from ...autodiff.variable import Variable
from ...errors import OpValueError
from ..layers.base import Layer

if TYPE_CHECKING:  # imported when fit/evaluate/predict first run: `import tapegrad` stays cheap
    from .callbacks import Callback, CallbackList, TerminateOnNaN
    from .history import History
    from .progress import Progbar

# Bumped whenever an attribute of any model that may hold layers or Variables is set or
# deleted: every cached variable discovery is then stale.
_generation = [0]
_TRACKED = (Layer, Variable, list, tuple, dict)

# Attributes of Model itself that never hold layers: skipped by discovery.
_NOT_TRACKED = frozenset({
    "_tracking", "optimizer", "loss", "history", "stop_training", "nn", "compiled_metrics",
    "_loss_fn", "_metrics", "_metric_names", "_compile_config", "_input_spec", "_trues_spec",
    "_train_fn", "_test_fn", "_predict_fn", "input_shape", "output_shape", "name", "dtype",
    "built", "_trainable", "_declared_spec", "jit", "_last_shape",
})


class NonFiniteLossError(OpValueError):
    """``fit`` met a NaN or infinite loss. ``epoch`` and ``batch`` (0-based) say where;
    ``history`` holds the completed epochs. The update of that batch was not applied."""

    def __init__(self, message: str, epoch: int, batch: int, history: History) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch
        self.history = history


# -- calling: pass only the arguments call() declares -------------------------------------
_CALL_MODES: dict[type, tuple[bool, bool, int]] = {}


def _call_mode(cls: type) -> tuple[bool, bool, int]:
    """How ``model(inputs, training, trues)`` calls ``cls.call``: ``(False, False, n)``
    passes the first ``n`` of (training, trues) by position (the usual case, and Rindow's
    rule for other names); ``(by_training, by_trues, -1)`` passes them by keyword."""
    mode = _CALL_MODES.get(cls)
    if mode is not None:
        return mode
    try:
        params = list(inspect.signature(cls.call).parameters.values())[2:]  # self, inputs
    except (TypeError, ValueError):
        params = []
    kinds = inspect.Parameter
    positional = [p.name for p in params if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)]
    named = {p.name for p in params if p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)}
    if any(p.kind == kinds.VAR_KEYWORD for p in params):
        mode = (True, True, -1)
    elif positional[:2] == ["training", "trues"]:
        mode = (False, False, 2)
    elif positional[:1] == ["training"] and "trues" not in named:
        mode = (False, False, 1)
    elif named & {"training", "trues"}:
        mode = ("training" in named, "trues" in named, -1)
    elif any(p.kind == kinds.VAR_POSITIONAL for p in params):
        mode = (False, False, 2)
    else:  # other names: Rindow passes (training, trues) by position
        mode = (False, False, min(len(positional), 2))
    _CALL_MODES[cls] = mode
    return mode


# -- variable discovery -------------------------------------------------------------------
class _Tracking:
    """The result of one discovery walk, and what must stay unchanged for it to hold."""

    __slots__ = ("generation", "layers", "variables", "trainable", "non_trainable",
                 "layer_checks", "var_checks", "containers")

    def __init__(self) -> None:
        self.generation = _generation[0]
        self.layers: list[Layer] = []
        self.variables: list[Variable] = []
        self.trainable: list[Variable] = []
        self.non_trainable: list[Variable] = []
        self.layer_checks: list[tuple[Layer, int, bool]] = []
        self.var_checks: list[tuple[Variable, Any]] = []
        self.containers: list[tuple[Any, tuple]] = []

    def valid(self) -> bool:
        if self.generation != _generation[0]:
            return False
        for layer, n, flag in self.layer_checks:
            if len(layer._weights) != n or layer.trainable != flag:
                return False
        for v, leaf in self.var_checks:
            if v._leaf is not leaf:
                return False
        for c, snapshot in self.containers:
            items = tuple(c.values()) if c.__class__ is dict else c
            if len(items) != len(snapshot):
                return False
            for a, b in zip(items, snapshot):
                if a is not b:
                    return False
        return True


def _discover(root: Model) -> _Tracking:
    t = _Tracking()
    seen: set[int] = set()
    var_ids: set[int] = set()

    def add_var(v: Variable, trainable: bool) -> None:
        if id(v) in var_ids:
            return
        var_ids.add(id(v))
        t.variables.append(v)
        (t.trainable if trainable and v.trainable else t.non_trainable).append(v)
        t.var_checks.append((v, v._leaf))

    def walk_attributes(obj: Any, trainable: bool, direct: bool, in_model: bool) -> None:
        skip = _NOT_TRACKED if isinstance(obj, Model) else ()
        for key, value in list(vars(obj).items()):
            if key not in skip and isinstance(value, _TRACKED):
                visit(value, trainable, direct, in_model)

    def visit_layer(layer: Layer, trainable: bool, direct: bool) -> None:
        if id(layer) in seen:
            return
        seen.add(id(layer))
        if direct:
            t.layers.append(layer)
        flag = layer.trainable
        t.layer_checks.append((layer, len(layer._weights), flag))
        trainable = trainable and flag
        if isinstance(layer, Model):
            walk_attributes(layer, trainable, False, True)
        else:
            own = {id(v) for v in layer.trainable_variables()} if trainable else set()
            for v in layer.variables():
                add_var(v, id(v) in own)
            walk_attributes(layer, trainable, False, False)  # sub-layers held by a layer

    def visit(obj: Any, trainable: bool, direct: bool, in_model: bool) -> bool:
        """Returns whether obj holds a layer or Variable."""
        if isinstance(obj, Layer):
            visit_layer(obj, trainable, direct)
            return True
        if isinstance(obj, Variable):
            # a model's attribute Variables are its weights; op results (_leaf None) are not
            if in_model and obj._leaf is not None:
                add_var(obj, trainable)
                return True
            return False
        if id(obj) in seen:
            return False
        seen.add(id(obj))
        items = tuple(obj.values()) if isinstance(obj, dict) else tuple(obj)
        found = False
        for item in items:
            if isinstance(item, _TRACKED):
                found = visit(item, trainable, direct, in_model) or found
        # a model's lists and dicts are watched even when empty (layers may be appended)
        if not isinstance(obj, tuple) and (found or in_model):
            t.containers.append((obj, items))
        return found

    seen.add(id(root))
    flag = root.trainable
    t.layer_checks.append((root, len(root._weights), flag))
    walk_attributes(root, flag, True, True)
    return t


class Model(Layer):
    """A layer made of layers, with ``compile`` / ``fit`` / ``evaluate`` / ``predict`` /
    ``summary`` / ``save``. Subclass it (or :class:`AbstractModel`) and define
    ``call(inputs, training=None, trues=None)``; layers and Variables assigned to
    attributes, directly or inside lists, tuples and dicts, are found automatically."""

    def __init__(
        self,
        *,
        name: str | None = None,
        input_shape: Any = None,
        dtype: Any = None,
        trainable: bool = True,
    ) -> None:
        object.__setattr__(self, "_tracking", None)
        super().__init__(name=name, input_shape=input_shape, dtype=dtype, trainable=trainable)
        self.optimizer: Any = None
        self.loss: Any = None
        self._loss_fn: Any = None
        self._metrics: list[Any] = []
        self._metric_names: list[str] = []
        self._compile_config: dict[str, Any] | None = None
        self._input_spec: Any = None
        self._trues_spec: Any = None
        self.stop_training = False
        self.history: History | None = None
        self._train_fn: Callable[[Any, Any], tuple[Any, Any]] = self.train_step
        self._test_fn: Callable[[Any, Any], tuple[Any, Any]] = self.test_step
        self._predict_fn: Callable[[Any], Any] = self.predict_step

    # -- attribute tracking -------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if name not in _NOT_TRACKED and (
            isinstance(value, _TRACKED) or isinstance(self.__dict__.get(name), _TRACKED)
        ):
            _generation[0] += 1
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        _generation[0] += 1
        object.__delattr__(self, name)

    def _tracked(self) -> _Tracking:
        t = self.__dict__.get("_tracking")
        if t is None or not t.valid():
            t = _discover(self)
            object.__setattr__(self, "_tracking", t)
        return t

    @property
    def layers(self) -> list[Layer]:
        """The layers held by this model's attributes (directly or in containers), in
        definition order; layers inside those layers are not listed."""
        return list(self._tracked().layers)

    @layers.setter
    def layers(self, value: Any) -> None:
        # ``self.layers = [...]`` in a subclass stores the list; it is then discovered.
        self._layers = value

    def variables(self) -> list[Variable]:
        """Every Variable of the model (trainable and not), in definition order, no duplicates."""
        return list(self._tracked().variables)

    def trainable_variables(self) -> list[Variable]:
        """The trainable Variables (of trainable layers), in definition order."""
        return list(self._tracked().trainable)

    def non_trainable_variables(self) -> list[Variable]:
        """The Variables that are not trained (frozen layers, moving statistics, ...)."""
        return list(self._tracked().non_trainable)

    @property
    def weights(self) -> list[Variable]:
        return self.variables()

    @property
    def trainable_weights(self) -> list[Variable]:
        return self.trainable_variables()

    @property
    def non_trainable_weights(self) -> list[Variable]:
        return self.non_trainable_variables()

    # -- calling --------------------------------------------------------------------------
    def call(self, inputs: Any, training: bool | None = None, trues: Any = None) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement call(inputs, training=None, trues=None)")

    def __call__(self, inputs: Any, training: bool | None = None, trues: Any = None, **kwargs: Any) -> Any:
        """``model(x, training, trues)``: runs ``call`` with the arguments it declares."""
        cls = self.__class__
        mode = _CALL_MODES.get(cls) or _call_mode(cls)
        first = not self.built
        if first:
            self._input_spec = _spec(inputs)
            if trues is not None:
                self._trues_spec = _spec(trues)
            if self.input_shape is None:
                self.input_shape = _spec_shapes(self._input_spec)
        by_training, by_trues, positional = mode
        if positional == 2:
            outputs = self.call(inputs, training, trues, **kwargs)
        elif positional == 1:
            outputs = self.call(inputs, training, **kwargs)
        elif positional == 0:
            outputs = self.call(inputs, **kwargs)
        elif by_training:
            if by_trues:
                outputs = self.call(inputs, training=training, trues=trues, **kwargs)
            else:
                outputs = self.call(inputs, training=training, **kwargs)
        else:
            outputs = self.call(inputs, trues=trues, **kwargs)
        if first:
            self.built = True
            if self.output_shape is None:
                self.output_shape = _output_shape(outputs)
        return outputs

    forward = __call__

    def build(self, input_shape: Any = None) -> None:
        """Create the weights by calling the model once on zeros of ``input_shape``
        (without the batch axis; default: the recorded input shape)."""
        if input_shape is not None:
            spec = _spec_from_shape(input_shape, self.dtype)
        elif self._input_spec is not None:
            spec = self._input_spec
        elif self.input_shape is not None:
            spec = _spec_from_shape(self.input_shape, self.dtype)
        else:
            raise OpValueError(f"{self.name}: build() needs an input_shape (the model was never called)")
        self._build_from_spec(spec)

    def _build_from_spec(self, spec: Any, trues_spec: Any = None) -> None:
        with _state.scope(()):  # not recorded by the user's tapes
            trues = _zeros(trues_spec) if trues_spec is not None else None
            self(_zeros(spec), False, trues)
        self._input_spec = spec
        self._trues_spec = trues_spec

    # -- compile ---------------------------------------------------------------------------
    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        metrics: Sequence[Any] | None = None,
        jit: bool = True,
    ) -> None:
        """Configure training: an optimizer (instance or name, default ``"rmsprop"`` as in
        Keras), a loss (a Loss, a name such as ``"sparse_categorical_crossentropy"``, or a
        callable ``fn(trues, predicts)``) and metrics (names such as ``"accuracy"``, which
        picks the variant that fits the loss, Metric objects or callables).

        With ``jit=True`` (the default) fit, evaluate and predict run compiled steps
        (``g.Function``): the forward pass, the gradients and the optimizer update of a
        training step are one optimised graph. ``jit=False`` runs them eagerly, op by op,
        which is easier to debug and allows Python control flow on values in ``call``."""
        from .. import losses as losses_mod
        from .. import metrics as metrics_mod
        from .. import optimizers as optimizers_mod

        self.optimizer = optimizers_mod.get(optimizer)
        self.loss = loss
        self._loss_fn = None if loss is None else losses_mod.get(loss)
        if metrics is None:
            metrics = []
        elif isinstance(metrics, (str, dict)) or callable(metrics):
            metrics = [metrics]
        self._metrics = []
        self._metric_names = []
        for ident in metrics:
            metric = metrics_mod.get(ident, loss=self._loss_fn)
            name = ident if isinstance(ident, str) else str(getattr(metric, "name", None) or type(metric).__name__)
            base, k = name, 1
            while name in self._metric_names or name == "loss":
                name = f"{base}_{k}"
                k += 1
            self._metrics.append(metric)
            self._metric_names.append(name)
        self._compile_config = {"optimizer": optimizer, "loss": loss, "metrics": list(metrics)}
        self.stop_training = False
        self.jit = bool(jit)
        if self.jit:
            from ...compiler.compiled import Function

            # relax_shapes: one trace serves every batch size when the step is shape-polymorphic
            self._train_fn = _Compiled(Function(self._graph_train_step, name=f"{self.name}.train_step",
                                                relax_shapes=True), True)
            self._test_fn = _Compiled(Function(self._graph_test_step, name=f"{self.name}.test_step",
                                               relax_shapes=True), True)
            self._predict_fn = _Compiled(Function(self._graph_predict_step, name=f"{self.name}.predict_step",
                                                  relax_shapes=True), False)
        else:
            self._train_fn = self.train_step
            self._test_fn = self.test_step
            self._predict_fn = self.predict_step

    @property
    def compiled(self) -> bool:
        return self.optimizer is not None

    @property
    def metrics_names(self) -> list[str]:
        return ["loss", *self._metric_names]

    def _require_compiled(self, what: str, need_loss: bool = True) -> None:
        if self.optimizer is None and what == "fit":
            raise OpValueError(f"{self.name}: call compile(optimizer, loss, metrics) before {what}()")
        if need_loss and self._loss_fn is None:
            raise OpValueError(f"{self.name}: {what}() needs a loss: call compile(..., loss=...) first")

    # -- the steps (arrays in, arrays out; a compiler may replace _train_fn & co.) ---------
    def compute_loss(self, trues: Any, predictions: Any) -> Variable:
        """The scalar training loss of a batch (per-sample losses are averaged)."""
        loss = self._loss_fn(trues, predictions)
        if loss.ndim:
            from ... import ops

            loss = ops.reduce_mean(loss)
        return loss

    def train_step(self, x: Any, y: Any) -> tuple[float, Any]:
        """One optimisation step on a batch: the forward pass under a GradientTape, the
        gradients of the loss, the optimizer update. Returns ``(loss, predictions)``.
        If the loss is not finite, no update is applied."""
        with GradientTape() as tape:
            predictions = self(x, True, y)
            loss = self.compute_loss(y, predictions)
        value = float(loss._value)
        if value - value == 0.0:  # finite (NaN and inf give nan)
            t = self.__dict__["_tracking"]
            if t is None or not t.valid():
                t = self._tracked()
            params = t.trainable
            self.optimizer.update(params, tape.gradient(loss, params))
        return value, predictions

    # The compiled steps (jit=True): the same computations as graphs. The optimizer update
    # is an effect of the training graph, skipped when the loss is not finite.
    def _graph_train_step(self, x: Any, y: Any) -> tuple[Variable, Any]:
        from ...compiler.tracing import run_effect

        with GradientTape() as tape:
            predictions = self(x, True, y)
            loss = self.compute_loss(y, predictions)
        t = self.__dict__["_tracking"]
        if t is None or not t.valid():
            t = self._tracked()
        params = t.trainable
        pairs = [(p, g) for p, g in zip(params, tape.gradient(loss, params)) if g is not None]
        updated = [p for p, _ in pairs]

        def update(loss_value: Any, *grads: Any) -> None:
            if np.isfinite(loss_value):
                self.optimizer.update(updated, list(grads))

        run_effect("update", update, [loss, *(g for _, g in pairs)], f"{type(self.optimizer).__name__}.update")
        return loss, predictions

    def _graph_test_step(self, x: Any, y: Any) -> tuple[Variable, Any]:
        predictions = self(x, False, y)
        return self.compute_loss(y, predictions), predictions

    def _graph_predict_step(self, x: Any) -> Any:
        return self(x, False)

    def test_step(self, x: Any, y: Any) -> tuple[float, Any]:
        """The loss and predictions of a batch in inference mode."""
        predictions = self(x, False, y)
        return float(self.compute_loss(y, predictions)._value), predictions

    def predict_step(self, x: Any) -> Any:
        """The predictions of a batch in inference mode, as NumPy arrays."""
        return _numpy(self(x, False))

    # -- data ------------------------------------------------------------------------------
    def _dataset(self, x: Any, y: Any, batch_size: int, shuffle: bool, owner: str) -> Any:
        from ..data import NDArrayDataset

        if _is_dataset(x):
            if y is not None:
                raise OpValueError(f"{owner}: y must be None when x is a dataset (it yields (inputs, trues))")
            return _CastDataset(x, self.dtype)
        if x is None:
            raise OpValueError(f"{owner}: x is required")
        return NDArrayDataset(self._cast(x), tests=self._cast(y), batch_size=batch_size, shuffle=shuffle)

    def _cast(self, x: Any) -> Any:
        """Arrays as NumPy, floats in the model's dtype (once, not per batch)."""
        if x is None:
            return None
        if isinstance(x, (list, tuple)) and x and all(isinstance(a, (np.ndarray, Variable)) for a in x):
            return [self._cast(a) for a in x]
        arr = x.value() if isinstance(x, Variable) else np.asarray(x)
        if arr.dtype.kind == "f" and arr.dtype != self.dtype:
            arr = arr.astype(self.dtype)
        return arr

    # -- fit -------------------------------------------------------------------------------
    def fit(
        self,
        x: Any = None,
        y: Any = None,
        epochs: int = 1,
        batch_size: int | None = 32,
        validation_data: Any = None,
        shuffle: bool = True,
        verbose: int | str = 1,
        callbacks: Iterable[Callback] | None = None,
        *,
        validation_split: float = 0.0,
        initial_epoch: int = 0,
    ) -> History:
        """Train for ``epochs`` epochs (from ``initial_epoch``) and return the History.

        The arguments up to ``callbacks`` may be given by position, in the contract's order
        (``epochs`` before ``batch_size``, unlike Keras); the others are keyword-only.

        ``x`` and ``y`` are arrays (a list of arrays for several inputs), or ``x`` is a
        dataset yielding ``(inputs, trues)`` batches and ``y`` is None.
        ``validation_data`` is ``(x_val, y_val)`` or a dataset; ``validation_split``
        holds out that fraction of the arrays (the last samples, before shuffling).
        ``verbose``: 0 silent, 1 a progress bar per epoch, 2 one line per epoch.
        Stops early when a callback sets ``model.stop_training``. A NaN or infinite loss
        stops training at that batch (see the module docstring).
        """
        from . import progress
        from .callbacks import CallbackList, TerminateOnNaN
        from .history import History

        self._require_compiled("fit")
        verbose, batch_size = _verbosity(verbose, "fit"), _batch_size(batch_size)
        if not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise OpValueError(f"fit: epochs must be a non-negative int, got {epochs!r}")
        if validation_split and validation_data is None:
            x, y, validation_data = self._split(x, y, validation_split)
        train = self._dataset(x, y, batch_size, shuffle, "fit")
        val = None
        if validation_data is not None:
            val = self._validation(validation_data, batch_size)
        steps = _length(train)
        history = History()
        cbs = CallbackList([*(callbacks or []), history], self, {
            "epochs": epochs, "steps": steps, "verbose": verbose, "batch_size": batch_size,
        })
        terminators = [cb for cb in cbs if isinstance(cb, TerminateOnNaN)]
        self.history = history
        self.stop_training = False
        metrics, names = self._metrics, self._metric_names
        batch_hooks = cbs.train_batch_hooks
        logs: dict[str, Any] = {}
        cbs.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            for m in metrics:
                m.reset_state()
            cbs.on_epoch_begin(epoch)
            if verbose == 1:
                print(f"Epoch {epoch + 1}/{epochs}", flush=True)
            bar = progress.Progbar(steps, verbose)
            start = time.perf_counter()
            total = 0.0
            count = 0
            done = 0
            stopped_by_nan = False
            train_fn = self._train_fn
            for xb, yb in train:
                if batch_hooks:
                    cbs.on_train_batch_begin(done)
                loss, predictions = train_fn(xb, yb)
                if not loss - loss == 0.0:  # NaN or inf: the step applied no update
                    running = {"loss": loss, **{k: float(m.result()) for k, m in zip(names, metrics)}}
                    self._non_finite(loss, epoch, epochs, done, steps, bar, running, terminators, history)
                    stopped_by_nan = True
                    break
                n = _batch_len(xb)
                total += loss * n
                count += n
                if metrics:
                    trues, preds = _numpy(yb), _numpy(predictions)
                    for m in metrics:
                        m.update_state(trues, preds)
                done += 1
                if batch_hooks:
                    cbs.on_train_batch_end(done - 1, self._running(total, count))
                if bar.due():
                    bar.update(done, self._running(total, count))
                if self.stop_training:
                    break
            if stopped_by_nan:
                break  # the interrupted epoch is not recorded
            logs = self._running(total, count)
            if val is not None:
                val_logs = self._test_loop(val, cbs, 0)
                logs.update({f"val_{k}": v for k, v in val_logs.items()})
            if verbose == 1:
                bar.finish(done, logs)
            elif verbose == 2:
                print(progress.epoch_line(epoch, epochs, time.perf_counter() - start, done, logs), flush=True)
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cbs.on_train_end(logs)
        return history

    def _running(self, total: float, count: int) -> dict[str, Any]:
        logs: dict[str, Any] = {"loss": total / count if count else float("nan")}
        for name, m in zip(self._metric_names, self._metrics):
            logs[name] = float(m.result())
        return logs

    def _non_finite(self, loss: float, epoch: int, epochs: int, step: int, steps: int | None,
                    bar: Progbar, running: dict[str, Any], terminators: list[TerminateOnNaN],
                    history: History) -> None:
        if bar.dynamic and bar.verbose == 1:
            bar.stream.write("\n")
        if terminators:
            for cb in terminators:
                cb.on_train_batch_end(step, running)
            self.stop_training = True
            return
        done = len(history.epoch)
        raise NonFiniteLossError(
            f"fit: the loss is {loss} at epoch {epoch + 1}/{epochs}, batch {step + 1}/{steps or '?'}; "
            f"training stopped. This batch's update was not applied: the weights are those after the "
            f"last finite step, and model.history holds the {done} completed epoch(s). "
            f"(Pass callbacks=[TerminateOnNaN()] to stop without an exception.)",
            epoch, step, history,
        )

    def _split(self, x: Any, y: Any, split: float) -> tuple[Any, Any, Any]:
        if not 0.0 < split < 1.0:
            raise OpValueError(f"fit: validation_split must be in (0, 1), got {split!r}")
        if _is_dataset(x):
            raise OpValueError("fit: validation_split works on arrays only; pass validation_data with a dataset")
        x, y = self._cast(x), self._cast(y)
        n = _batch_len(x)
        cut = int(n * (1.0 - split))
        if cut <= 0 or cut >= n:
            raise OpValueError(f"fit: validation_split={split} of {n} samples leaves an empty training "
                               f"or validation set")

        def part(a: Any, sl: slice) -> Any:
            if a is None:
                return None
            return [b[sl] for b in a] if isinstance(a, list) else a[sl]

        return part(x, slice(0, cut)), part(y, slice(0, cut)), (part(x, slice(cut, None)), part(y, slice(cut, None)))

    def _validation(self, data: Any, batch_size: int) -> Any:
        if _is_dataset(data):
            return _CastDataset(data, self.dtype)
        if isinstance(data, (tuple, list)) and len(data) == 2:
            return self._dataset(data[0], data[1], batch_size, False, "fit")
        raise OpValueError("fit: validation_data must be (x_val, y_val) or a dataset"
                           + (" (sample weights are not supported)" if isinstance(data, (tuple, list)) else ""))

    # -- evaluate ----------------------------------------------------------------------------
    def _test_loop(self, data: Any, cbs: CallbackList, verbose: int) -> dict[str, float]:
        from . import progress

        metrics, names = self._metrics, self._metric_names
        for m in metrics:
            m.reset_state()
        steps = _length(data)
        bar = progress.Progbar(steps, verbose)
        cbs.on_test_begin()
        hooks = cbs.test_batch_hooks
        test_fn = self._test_fn
        total = 0.0
        count = 0
        done = 0
        for xb, yb in data:
            if hooks:
                cbs.on_test_batch_begin(done)
            loss, predictions = test_fn(xb, yb)
            n = _batch_len(xb)
            total += loss * n
            count += n
            if metrics:
                trues, preds = _numpy(yb), _numpy(predictions)
                for m in metrics:
                    m.update_state(trues, preds)
            done += 1
            if hooks:
                cbs.on_test_batch_end(done - 1, self._running(total, count))
            if bar.due():
                bar.update(done, self._running(total, count))
        logs = self._running(total, count)
        if verbose == 1:
            bar.finish(done, logs)
        cbs.on_test_end(logs)
        return {"loss": logs["loss"], **{k: logs[k] for k in names}}

    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        *,
        batch_size: int | None = 32,
        verbose: int | str = 1,
        return_dict: bool = False,
        callbacks: Iterable[Callback] | None = None,
    ) -> float | list[float] | dict[str, float]:
        """The loss (and metrics) on ``x``, ``y`` in inference mode, in batches. Returns
        the loss alone when there are no metrics, else ``[loss, *metrics]``; with
        ``return_dict`` a dict ``{"loss": ..., "accuracy": ...}``."""
        from . import progress
        from .callbacks import CallbackList

        self._require_compiled("evaluate")
        verbose, batch_size = _verbosity(verbose, "evaluate"), _batch_size(batch_size)
        data = self._dataset(x, y, batch_size, False, "evaluate")
        cbs = CallbackList(callbacks, self, {"steps": _length(data), "verbose": verbose})
        logs = self._test_loop(data, cbs, 2 if verbose == 2 else verbose)
        if verbose == 2:
            print(progress.format_logs(logs).removeprefix(" - "), flush=True)
        if return_dict:
            return logs
        if not self._metrics:
            return logs["loss"]
        return list(logs.values())

    # -- predict -----------------------------------------------------------------------------
    def predict(
        self,
        x: Any,
        *,
        batch_size: int | None = 32,
        verbose: int | str = 0,
        callbacks: Iterable[Callback] | None = None,
    ) -> Any:
        """The model's outputs for ``x`` in inference mode, computed ``batch_size`` samples
        at a time, as a NumPy array (a list of arrays for several outputs). ``x`` may be a
        dataset (its trues are ignored)."""
        from . import progress
        from .callbacks import CallbackList

        verbose, batch_size = _verbosity(verbose, "predict"), _batch_size(batch_size)
        data = self._dataset(x, None, batch_size, False, "predict")
        steps = _length(data)
        cbs = CallbackList(callbacks, self, {"steps": steps, "verbose": verbose})
        bar = progress.Progbar(steps, verbose)
        hooks = cbs.predict_batch_hooks
        cbs.on_predict_begin()
        predict_fn = self._predict_fn
        outputs: list[Any] = []
        for step, batch in enumerate(data):
            xb = batch[0] if isinstance(batch, tuple) else batch
            if hooks:
                cbs.on_predict_batch_begin(step)
            out = predict_fn(xb)
            outputs.append(out)
            if hooks:
                cbs.on_predict_batch_end(step, {"outputs": out})
            if bar.due():
                bar.update(step + 1, {})
        if verbose == 1:
            bar.finish(len(outputs), {})
        cbs.on_predict_end()
        if not outputs:
            raise OpValueError("predict: no input samples")
        first = outputs[0]
        if isinstance(first, (list, tuple)):
            return [np.concatenate([o[i] for o in outputs]) for i in range(len(first))]
        return np.concatenate(outputs) if len(outputs) > 1 else first

    # -- single batches (Keras) ----------------------------------------------------------------
    def train_on_batch(self, x: Any, y: Any) -> float:
        """One training step on one batch; returns its loss."""
        self._require_compiled("fit")
        loss, _ = self._train_fn(self._cast(x), self._cast(y))
        return loss

    def test_on_batch(self, x: Any, y: Any) -> float:
        """The loss of one batch in inference mode."""
        self._require_compiled("evaluate")
        return self._test_fn(self._cast(x), self._cast(y))[0]

    def predict_on_batch(self, x: Any) -> Any:
        """The outputs for one batch, as NumPy."""
        return self._predict_fn(self._cast(x))

    # -- summary -----------------------------------------------------------------------------
    def summary(self, print_fn: Callable[[str], Any] | None = None) -> None:
        """Print a table of the layers: name (type), output shape, parameter count, and
        the total, trainable and non-trainable parameter counts."""
        out = print if print_fn is None else print_fn
        rows = []
        for layer in self.layers:
            shape = _show_shape(layer.output_shape)
            params = layer.count_params()
            built = layer.built or params
            rows.append((f"{layer.name} ({type(layer).__name__})", shape,
                         f"{params:,}" if built else "0 (unbuilt)"))
        header = ("Layer (type)", "Output Shape", "Param #")
        widths = [max([len(header[i]), *(len(r[i]) for r in rows)]) + 3 for i in range(3)]
        widths[0] = max(widths[0], 29)
        widths[1] = max(widths[1], 26)
        total_width = sum(widths)

        def line(cells: Sequence[str]) -> str:
            return ((" " + cells[0]).ljust(widths[0]) + cells[1].ljust(widths[1]) + cells[2]).rstrip()

        trainable = sum(v.size for v in self.trainable_variables())
        non_trainable = sum(v.size for v in self.non_trainable_variables())
        itemsize = {id(v): v.dtype.itemsize for v in self.variables()}
        nbytes_t = sum(v.size * itemsize[id(v)] for v in self.trainable_variables())
        nbytes_n = sum(v.size * itemsize[id(v)] for v in self.non_trainable_variables())
        out(f'Model: "{self.name}"')
        out("_" * total_width)
        out(line(header))
        out("=" * total_width)
        for i, row in enumerate(rows):
            out(line(row))
            if i < len(rows) - 1:
                out("")
        out("=" * total_width)
        out(f"Total params: {trainable + non_trainable:,} ({_bytes(nbytes_t + nbytes_n)})")
        out(f"Trainable params: {trainable:,} ({_bytes(nbytes_t)})")
        out(f"Non-trainable params: {non_trainable:,} ({_bytes(nbytes_n)})")
        out("_" * total_width)

    # -- saving --------------------------------------------------------------------------------
    def save(self, path: Any) -> None:
        """Write the model to one file: its config, weights, compile config and optimizer
        state (atomically; no pickle). Load it with :func:`tapegrad.load_model`."""
        from .saving import save_model

        save_model(self, path)

    def save_weights(self, path: Any) -> None:
        """Write only the weights (atomically; same file format)."""
        from .saving import save_weights

        save_weights(self, path)

    def load_weights(self, path: Any) -> None:
        """Assign the weights stored in ``path`` (by ``save_weights`` or ``save``), in
        order; a count or shape mismatch raises a ValueError naming the weight."""
        from .saving import load_weights

        load_weights(self, path)

    def get_config(self) -> dict[str, Any]:
        return super().get_config()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"


# -- helpers -------------------------------------------------------------------------------------
def _verbosity(verbose: Any, owner: str) -> int:
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2) or isinstance(verbose, float):
        raise OpValueError(f"{owner}: verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    return int(verbose)


def _batch_size(batch_size: Any) -> int:
    return 32 if batch_size is None else batch_size


def _is_dataset(x: Any) -> bool:
    return (x is not None and not isinstance(x, (np.ndarray, Variable, list, tuple, dict, str, bytes))
            and hasattr(x, "__iter__"))


class _CastDataset:
    """A user dataset whose float inputs are cast to the model's dtype."""

    def __init__(self, dataset: Any, dtype: np.dtype) -> None:
        self.dataset = dataset
        self.dtype = dtype

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        dtype = self.dtype
        for batch in self.dataset:
            if isinstance(batch, tuple) and len(batch) == 2:
                x, y = batch
            else:
                x, y = batch, None
            yield _cast_to(x, dtype), _cast_to(y, dtype)


def _cast_to(x: Any, dtype: np.dtype) -> Any:
    if isinstance(x, list):
        return [_cast_to(a, dtype) for a in x]
    if isinstance(x, Variable):
        x = x.value()
    elif x is not None and not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x is not None and x.dtype.kind == "f" and x.dtype != dtype:
        x = x.astype(dtype)
    return x


def _length(data: Any) -> int | None:
    try:
        return len(data)
    except TypeError:
        return None


def _batch_len(x: Any) -> int:
    if isinstance(x, (list, tuple)):
        x = x[0]
    return x.shape[0] if x.ndim else 1


def _numpy(x: Any) -> Any:
    if x.__class__ is Variable:
        return x.value()
    if isinstance(x, (list, tuple)):
        return [_numpy(a) for a in x]
    if isinstance(x, dict):
        return {k: _numpy(v) for k, v in x.items()}
    return x


def _spec(x: Any) -> Any:
    """{"shape": [...without batch...], "dtype": name} (a list of them for several inputs)."""
    if isinstance(x, (list, tuple)):
        return [_spec(a) for a in x]
    shape = x.shape if hasattr(x, "shape") else np.shape(x)
    dtype = x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype
    return {"shape": [int(n) for n in shape[1:]], "dtype": np.dtype(dtype).name}


def _spec_shapes(spec: Any) -> Any:
    if isinstance(spec, list):
        return [tuple(s["shape"]) for s in spec]
    return tuple(spec["shape"])


def _spec_from_shape(shape: Any, dtype: np.dtype) -> Any:
    """A spec from a declared shape (batch axis excluded; None for a free dimension)."""
    if isinstance(shape, list) and shape and isinstance(shape[0], (list, tuple)):
        return [_spec_from_shape(s, dtype) for s in shape]
    return {"shape": [None if n is None else int(n) for n in shape], "dtype": np.dtype(dtype).name}


def _zeros(spec: Any) -> Any:
    """A batch of one sample of zeros (free dimensions of size 1)."""
    if isinstance(spec, list):
        return [_zeros(s) for s in spec]
    return np.zeros((1, *(1 if n is None else n for n in spec["shape"])), dtype=spec["dtype"])


def _output_shape(outputs: Any) -> Any:
    if isinstance(outputs, (list, tuple)):
        return [_output_shape(o) for o in outputs]
    shape = outputs.shape if hasattr(outputs, "shape") else np.shape(outputs)
    return tuple(shape[1:])


def _show_shape(shape: Any) -> str:
    if shape is None:
        return "?"
    if isinstance(shape, list):
        return "[" + ", ".join(_show_shape(s) for s in shape) + "]"
    return "(" + ", ".join(["None", *("None" if n is None else str(n) for n in shape)]) + ")"


def _bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GB"


class _Compiled:
    """A compiled step with the eager step's interface: arrays in, (float loss, NumPy
    predictions) out for training and evaluation, NumPy outputs for prediction."""

    __slots__ = ("function", "with_loss")

    def __init__(self, function: Any, with_loss: bool) -> None:
        self.function = function
        self.with_loss = with_loss

    def __call__(self, *args: Any) -> Any:
        from ...errors import TracingError

        try:
            result = self.function(*args)
        except TracingError as exc:
            raise TracingError(f"{exc}. (The model was compiled with jit=True; compile(..., jit=False) "
                               f"runs its steps eagerly.)") from None
        if self.with_loss:
            loss, predictions = result
            return float(loss._value), _numpy(predictions)
        return _numpy(result)
