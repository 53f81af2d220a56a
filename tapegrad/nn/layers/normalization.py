"""BatchNormalization and LayerNormalization (Keras 3 semantics and defaults)."""

from __future__ import annotations

from typing import Any

from ...autodiff.variable import Variable
from ...errors import OpValueError
from ...ops.elementwise import add_p, mul_p, pow_p, square_p, sub_p
from ...ops.reduction import reduce_mean_p
from ...ops.shape import reshape_p
from .. import hyperparams, initializers
from ._util import autocast, full_axes, json_axis, owner, single_shape
from .base import Layer


class _Normalization(Layer):
    """Shared parts: the feature axes, weight shapes and broadcasting."""

    supports_masking = True

    def __init__(
        self,
        axis: Any,
        epsilon: float,
        center: bool,
        scale: bool,
        beta_initializer: Any,
        gamma_initializer: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        who = owner(self)
        self.axis = json_axis(self, axis)
        self.epsilon = hyperparams.epsilon(who, epsilon, self.dtype)
        self.center = hyperparams.flag(who, "center", center)
        self.scale = hyperparams.flag(who, "scale", scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self._init_configs = {"beta_initializer": initializers.serialize(beta_initializer),
                              "gamma_initializer": initializers.serialize(gamma_initializer)}
        self.gamma: Variable | None = None
        self.beta: Variable | None = None
        self._axes: tuple[int, ...] = ()  # the feature axes of the full shape
        self._param_shape: tuple[int, ...] = ()
        self._broadcast_shape: tuple[int, ...] | None = None  # None: params broadcast as they are

    def _setup(self, input_shape: Any) -> tuple:
        shape = single_shape(self, input_shape)
        rank = len(shape) + 1
        if rank < 2:
            raise OpValueError(f"{self.name}: inputs must have a feature axis, got samples of shape {shape}")
        self._axes = full_axes(self, self.axis, rank)
        for a in self._axes:
            if shape[a - 1] is None:
                raise OpValueError(f"{self.name}: axis {a} of the inputs must have a known size, got shape "
                                 f"{('batch',) + shape}")
        self._param_shape = tuple(shape[a - 1] for a in self._axes)
        bshape = tuple(shape[i - 1] if i in self._axes else 1 for i in range(1, rank))
        while bshape and bshape[0] == 1 and len(bshape) > len(self._param_shape):
            bshape = bshape[1:]
        self._broadcast_shape = None if bshape == self._param_shape else bshape
        if self.scale:
            self.gamma = self.add_weight("gamma", self._param_shape, self.gamma_initializer)
        if self.center:
            self.beta = self.add_weight("beta", self._param_shape, self.beta_initializer)
        self.output_shape = shape
        return shape

    def _b(self, v: Any) -> Any:
        """A parameter-shaped value, reshaped to broadcast against the inputs."""
        if self._broadcast_shape is None:
            return v
        return reshape_p.apply(v, shape=self._broadcast_shape)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(axis=self.axis, epsilon=self.epsilon, center=self.center, scale=self.scale,
                      **self._init_configs)
        return config


class BatchNormalization(_Normalization):
    """Normalise each feature over the batch (and every non-feature axis).

    ``training=True`` (and the layer trainable): normalise with the batch mean and the
    biased batch variance, and update the non-trainable moving statistics with Keras'
    formula ``moving = moving * momentum + batch_statistic * (1 - momentum)``.
    Otherwise normalise with the moving statistics (no update). Then
    ``gamma * (x - mean) / sqrt(var + epsilon) + beta``.

    Defaults (Keras): ``axis=-1`` (the feature axes, batch axis included in the count),
    ``momentum=0.99``, ``epsilon=1e-3``, ``center=True``, ``scale=True``.
    """

    def __init__(
        self,
        axis: Any = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        moving_mean_initializer: Any = "zeros",
        moving_variance_initializer: Any = "ones",
        **kwargs: Any,
    ) -> None:
        super().__init__(axis, epsilon, center, scale, beta_initializer, gamma_initializer, **kwargs)
        self.momentum = hyperparams.real(owner(self), "momentum", momentum, low=0.0, high=1.0)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self._init_configs.update(moving_mean_initializer=initializers.serialize(moving_mean_initializer),
                                  moving_variance_initializer=initializers.serialize(moving_variance_initializer))
        self.moving_mean: Variable | None = None
        self.moving_variance: Variable | None = None
        self._reduce_axes: tuple[int, ...] = ()

    def build(self, input_shape: Any) -> None:
        shape = self._setup(input_shape)
        self.moving_mean = self.add_weight("moving_mean", self._param_shape, self.moving_mean_initializer,
                                           trainable=False)
        self.moving_variance = self.add_weight("moving_variance", self._param_shape,
                                               self.moving_variance_initializer, trainable=False)
        self._reduce_axes = tuple(i for i in range(len(shape) + 1) if i not in self._axes)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        x = autocast(inputs, self.dtype)
        if training and self.trainable:
            axes = self._reduce_axes
            mean = reduce_mean_p.apply(x, axis=axes, keepdims=True)
            centered = sub_p.apply2(x, mean)
            variance = reduce_mean_p.apply(square_p.apply1(centered), axis=axes, keepdims=True)
            inv = pow_p.apply2(add_p.apply2(variance, self.epsilon), -0.5)
            if self.gamma is not None:
                inv = mul_p.apply2(inv, self._b(self.gamma))
            y = mul_p.apply2(centered, inv)
            if self.beta is not None:
                y = add_p.apply2(y, self._b(self.beta))
            self._update_moving(mean, variance)
            return y
        inv = pow_p.apply2(add_p.apply2(self.moving_variance, self.epsilon), -0.5)
        if self.gamma is not None:
            inv = mul_p.apply2(inv, self.gamma)
        shift = mul_p.apply2(self.moving_mean, inv)
        shift = sub_p.apply2(self.beta, shift) if self.beta is not None else mul_p.apply2(shift, -1.0)
        return add_p.apply2(mul_p.apply2(x, self._b(inv)), self._b(shift))

    def _update_moving(self, mean: Variable, variance: Variable) -> None:
        # Keras: moving = moving * momentum + batch_statistic * (1 - momentum). Written with ops
        # (not stop_gradient, which makes a constant), so that a compiled graph recomputes the
        # update from each batch; nothing here reaches a loss, so no gradient flows through it.
        m = self.momentum
        batch_mean = reshape_p.apply(mean, shape=self._param_shape)
        batch_var = reshape_p.apply(variance, shape=self._param_shape)
        self.moving_mean.assign(add_p.apply2(mul_p.apply2(self.moving_mean, m), mul_p.apply2(batch_mean, 1.0 - m)))
        self.moving_variance.assign(
            add_p.apply2(mul_p.apply2(self.moving_variance, m), mul_p.apply2(batch_var, 1.0 - m))
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["momentum"] = self.momentum
        return config


class LayerNormalization(_Normalization):
    """Normalise each sample over its feature axes: ``gamma * (x - mean) / sqrt(var + epsilon)
    + beta`` with the mean and biased variance over ``axis``.

    Defaults (Keras): ``axis=-1`` (int or list; batch axis included in the count),
    ``epsilon=1e-3``, ``center=True``, ``scale=True``; ``gamma`` and ``beta`` have the shape
    of the normalised axes.
    """

    def __init__(
        self,
        axis: Any = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        **kwargs: Any,
    ) -> None:
        super().__init__(axis, epsilon, center, scale, beta_initializer, gamma_initializer, **kwargs)

    def build(self, input_shape: Any) -> None:
        self._setup(input_shape)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        x = autocast(inputs, self.dtype)
        axes = self._axes
        mean = reduce_mean_p.apply(x, axis=axes, keepdims=True)
        centered = sub_p.apply2(x, mean)
        variance = reduce_mean_p.apply(square_p.apply1(centered), axis=axes, keepdims=True)
        y = mul_p.apply2(centered, pow_p.apply2(add_p.apply2(variance, self.epsilon), -0.5))
        if self.gamma is not None:
            y = mul_p.apply2(y, self._b(self.gamma))
        if self.beta is not None:
            y = add_p.apply2(y, self._b(self.beta))
        return y
