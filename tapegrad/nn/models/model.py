"""Model: a Layer made of layers, with the Keras-level workflow.

``Model`` finds its layers and Variables through its attributes (and lists, tuples and
dicts in them, to any depth; :mod:`.tracking`), calls ``call`` with the arguments it
declares, compiles an optimizer, a loss and metrics, prints a summary and saves itself.
The training loop -- ``fit``, ``evaluate``, ``predict`` and their steps -- is the
:class:`~tapegrad.nn.models.trainer.Trainer` mixin (see :mod:`.trainer` for the steps,
compiled steps and non-finite losses). :class:`~tapegrad.nn.models.AbstractModel` (the
seeds' base class) and :class:`~tapegrad.nn.models.Sequential` subclass it.

Variable discovery is cached: ``trainable_variables()`` walks the attributes once and
afterwards only checks, in about a microsecond, that nothing it depends on has
changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from ...autodiff import state as _state
from ...autodiff.variable import Variable
from ...errors import OpValueError
from ..layers.base import Layer
from .calling import _SPECS, bind, call_spec
from .tracking import _NOT_TRACKED, _TRACKED, _discover, _generation, _Tracking
from .trainer import NonFiniteLossError, Trainer, _Compiled

if TYPE_CHECKING:
    from .history import History

__all__ = ["Model", "NonFiniteLossError"]


class Model(Trainer, Layer):
    """A layer made of layers, with ``compile`` / ``fit`` / ``evaluate`` / ``predict`` /
    ``summary`` / ``save``. Subclass it (or :class:`AbstractModel`) and define
    ``call(inputs, training=None, trues=None)``; layers and Variables assigned to
    attributes, directly or inside lists, tuples and dicts, are found automatically."""

    _tracks_attributes = True  # see tracking.py

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

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """``model(x, training, trues)``, ``model(a, b, training=False)``, ...: runs ``call``
        with the arguments it declares (see :mod:`.calling`)."""
        spec = _SPECS.get(self.__class__) or call_spec(self.__class__)
        call_args, call_kwargs, inputs, trues = bind(spec, args, kwargs, self.name)
        first = not self.built
        if first:
            self._input_spec = _spec(inputs)
            if trues is not None:
                self._trues_spec = _spec(trues)
            if self.input_shape is None:
                self.input_shape = _spec_shapes(self._input_spec)
        outputs = self.call(*call_args, **call_kwargs)
        if first:
            self.built = True
            if self.output_shape is None:
                self.output_shape = _output_shape(outputs)
        return outputs

    forward = __call__

    def _run(self, inputs: Any, training: Any, trues: Any = None) -> Any:
        """The call of ``fit``/``evaluate``/``predict``: ``inputs`` is the batch's input,
        a list of arrays for several."""
        return self(inputs, training=training, trues=trues)

    def build(self, *input_shapes: Any, trues: Any = None) -> None:
        """Create the weights by calling the model once on zeros. An input shape is given
        without the batch axis (default: the recorded input shape); a ``TensorSpec``
        (``g.ArraySpec``) gives a whole shape, batch axis included, and a dtype. Several
        (Rindow: ``build(spec_a, spec_b)``), or one list of shapes, are a model's several
        inputs; ``trues`` is the targets' shape or spec, for a ``call`` that takes them."""
        if len(input_shapes) > 1:
            spec: Any = [_spec_of(s, self.dtype) for s in input_shapes]
        elif input_shapes and input_shapes[0] is not None:
            spec = _spec_of(input_shapes[0], self.dtype)
        elif self._input_spec is not None:
            spec = self._input_spec
        elif self.input_shape is not None:
            spec = _spec_from_shape(self.input_shape, self.dtype)
        else:
            raise OpValueError(f"{self.name}: build() needs an input_shape (the model was never called)")
        self._build_from_spec(spec, None if trues is None else _spec_of(trues, self.dtype))

    def _build_from_spec(self, spec: Any, trues_spec: Any = None) -> None:
        with _state.scope(()):  # not recorded by the user's tapes
            trues = _zeros(trues_spec) if trues_spec is not None else None
            self._run(_zeros(spec), False, trues)
        self._input_spec = spec
        self._trues_spec = trues_spec

    # -- compile ---------------------------------------------------------------------------
    def compile(
        self,
        optimizer: Any = "sgd",
        loss: Any = "sparse_categorical_crossentropy",
        metrics: Sequence[Any] | dict[str, Any] | None = None,
        jit: bool = True,
    ) -> None:
        """Configure training. The defaults are Rindow's: ``compile()`` is
        ``compile("sgd", "sparse_categorical_crossentropy", ["loss", "accuracy"])``.

        ``optimizer``: an instance or a name; ``loss``: a Loss, a name such as
        ``"binary_crossentropy"``, a callable ``fn(trues, predicts)``, or None (no loss:
        predict only); ``metrics``: names (``"accuracy"`` picks the variant that fits the
        loss; ``"loss"`` is the loss, always reported), Metric objects or callables, or a
        dict of names to any of these (Rindow: ``["loss" => "loss", "accuracy" => fn]``).
        Without ``metrics``: ``["loss", "accuracy"]``.

        With ``jit=True`` (the default) fit, evaluate and predict run compiled steps
        (``g.Function``): the forward pass, the gradients and the optimizer update of a
        training step are one optimised graph. ``jit=False`` runs them eagerly, op by op,
        which is easier to debug and allows Python control flow on values in ``call``."""
        from .. import losses as losses_mod
        from .. import metrics as metrics_mod
        from .. import optimizers as optimizers_mod

        if optimizer is None:
            optimizer = "sgd"
        self.optimizer = optimizers_mod.get(optimizer)
        self.loss = loss
        self._loss_fn = None if loss is None else losses_mod.get(loss)
        if metrics is None:
            metrics = ["loss", "accuracy"]
        if isinstance(metrics, dict) and "class_name" not in metrics:
            named: list[tuple[str | None, Any]] = [(str(k), v) for k, v in metrics.items()]
        elif isinstance(metrics, (str, dict)) or callable(metrics):
            named = [(None, metrics)]
        else:
            named = [(None, m) for m in metrics]
        self._metrics = []
        self._metric_names = []
        idents = []
        for key, ident in named:
            if isinstance(ident, str) and ident.lower() == "loss":
                continue  # the loss is always reported
            if key is not None and callable(ident) and not isinstance(ident, (type, metrics_mod.Metric)):
                metric = metrics_mod.MeanMetricWrapper(ident, key)
            else:
                metric = metrics_mod.get(ident, loss=self._loss_fn)
            if key is not None:
                name = key
            else:
                name = ident if isinstance(ident, str) else str(getattr(metric, "name", None) or type(metric).__name__)
            base, k = name, 1
            while name in self._metric_names or name == "loss":
                name = f"{base}_{k}"
                k += 1
            self._metrics.append(metric)
            self._metric_names.append(name)
            idents.append(ident)
        self._compile_config = {"optimizer": optimizer, "loss": loss, "metrics": idents}
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
    def save(self, path: Any, portable: bool | None = None) -> None:
        """Write the model to one file: its config, weights, compile config and optimizer
        state (atomically; no pickle). Load it with :func:`tapegrad.load_model`.
        ``portable`` (Rindow) is accepted and ignored: the files are always portable."""
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

    def save_weights_to_file(self, path: Any, portable: bool | None = None) -> None:
        """Rindow's name of :meth:`save_weights` (``portable`` is ignored: files are portable)."""
        self.save_weights(path)

    def load_weights_from_file(self, path: Any, portable: bool | None = None) -> None:
        """Rindow's name of :meth:`load_weights`."""
        self.load_weights(path)

    def get_config(self) -> dict[str, Any]:
        return super().get_config()

    @classmethod
    def _from_saved_config(cls, config: dict[str, Any], custom_objects: dict[str, Any] | None, dtype: Any) -> Model:
        """Rebuild from a saved config (:mod:`.loading`); Sequential and AbstractModel need
        more than ``from_config(config)`` and override this."""
        return cls.from_config(config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"




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


def _spec_of(shape: Any, dtype: np.dtype) -> Any:
    """A spec from a TensorSpec (its shape includes the batch axis) or a shape without it."""
    if hasattr(shape, "shape") and hasattr(shape, "dtype") and not isinstance(shape, np.ndarray):
        if len(shape.shape) < 1:
            raise OpValueError(f"build: a TensorSpec needs a batch axis, got shape {shape.shape}")
        return {"shape": [None if n is None else int(n) for n in shape.shape[1:]], "dtype": np.dtype(shape.dtype).name}
    return _spec_from_shape(shape, dtype)


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

