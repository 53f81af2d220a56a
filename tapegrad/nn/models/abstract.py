"""AbstractModel: the seeds' base class for models written as Python code.

::

    class TestModel(tapegrad.AbstractModel):
        def __init__(self, builder):
            super().__init__(builder)
            self.dense1 = builder.layers.Dense(128, input_shape=[2], activation="sigmoid")
            self.dense2 = builder.layers.Dense(2)

        def call(self, inputs, training=None, trues=None):
            x = self.dense1.forward(inputs, training)
            return self.dense2.forward(x, training)

``model(x, training, trues)`` passes to ``call`` only the arguments it declares (by the
names ``training`` and ``trues``; other names receive them by position, as in Rindow).
Layers, nested models and Variables held by attributes -- directly or inside lists,
tuples and dicts -- are the model's: ``variables()``, ``trainable_variables()``,
``non_trainable_variables()`` and ``layers`` list them in definition order.

To save and load a subclass with :func:`tapegrad.load_model`, register it
(``@tapegrad.register_model``) or pass it in ``custom_objects``; if its constructor
takes arguments besides the builder, return them from ``get_config()``.
"""

from __future__ import annotations

from typing import Any

from .model import Model


class AbstractModel(Model):
    """Base class of user models. ``builder`` is a :class:`tapegrad.NeuralNetworks`
    (kept as ``self.nn``); the model takes its float dtype. Rindow's older
    ``(backend, builder)`` argument order is accepted too."""

    def __init__(self, builder: Any = None, *args: Any, name: str | None = None, dtype: Any = None) -> None:
        from ...builder import NeuralNetworks

        if args and isinstance(args[0], NeuralNetworks) and not isinstance(builder, NeuralNetworks):
            builder = args[0]  # Rindow 1.x: parent::__construct($backend, $builder)
        elif args:
            raise TypeError(f"{type(self).__name__}: AbstractModel takes one builder argument, got {1 + len(args)}")
        if builder is not None and not isinstance(builder, NeuralNetworks):
            raise TypeError(f"{type(self).__name__}: builder must be a tapegrad.NeuralNetworks, "
                            f"got {type(builder).__name__}")
        if builder is None:
            builder = NeuralNetworks() if dtype is None else NeuralNetworks(dtype)
        self.nn = builder
        super().__init__(name=name, dtype=builder.dtype if dtype is None else dtype)

    @property
    def builder(self) -> Any:
        """The NeuralNetworks builder given to the constructor (also ``self.nn``)."""
        return self.nn

    @property
    def backend(self) -> Any:
        """The builder's backend ``K`` (Rindow's ``$this->backend``), unless one was assigned."""
        return self.__dict__.get("_assigned_backend") or self.nn.backend()

    @backend.setter
    def backend(self, value: Any) -> None:
        object.__setattr__(self, "_assigned_backend", value)

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments besides the builder (JSON values). Override it when
        ``__init__`` takes more than the builder; the default is ``{}``."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any], builder: Any = None) -> AbstractModel:
        """``cls(builder, **config)``."""
        return cls(builder, **config)

    @classmethod
    def _from_saved_config(cls, config: dict[str, Any], custom_objects: dict[str, Any] | None,
                           dtype: Any) -> AbstractModel:
        from ...builder import NeuralNetworks

        return cls.from_config(config, NeuralNetworks(dtype or "float32"))
