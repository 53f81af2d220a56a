"""Attention layers: Attention (Luong, dot or concat scores) and MultiHeadAttention (Keras 3).

Both take Keras's and Rindow's call forms. Masks (bool, True where a step is real) come
from ``mask=`` when given, else from the inputs' own masks (``x.mask``): masked keys get
no attention (their scores are lowered by 1e9 before the softmax, as in Keras), a masked
query's output is zeroed (Attention) and the output carries the query's mask on. Sequence
lengths may change from call to call (greedy decoding); only the feature sizes are fixed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...autodiff.variable import Variable
from ...errors import OpTypeError, OpValueError
from ...ops import sequence_rules  # noqa: F401 - installs the vmap and forward-mode rules of the ops
from ...ops.activation import softmax_p
from ...ops.attention import MASKED, dot_product_attention, packed_self_attention, reference_attention
from ...ops.elementwise import add_p, logical_and_p, mul_p, sub_p, tanh_p, where_p
from ...ops.linalg import matmul_p
from ...ops.nn_ops import RandomSource, dropout_mask_p
from ...ops.reduction import reduce_sum_p
from ...ops.shape import concat_p, expand_dims_p, reshape_p
from .. import hyperparams, initializers
from ..hyperparams import MAX_DIM
from ._masks import checked_mask, mask_of
from ._util import autocast, owner, shape_list, value_of
from .base import Layer


def _causal(tq: int, tv: int) -> np.ndarray:
    """``(1, Tq, Tv)``: query i may attend to keys j <= i."""
    return np.tril(np.ones((tq, tv), dtype=bool))[None]


def _seed(owner: str, seed: Any) -> int | None:
    if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)):
        raise OpTypeError(f"{owner}: seed must be an int or None, got {seed!r}")
    return None if seed is None else int(seed)


def _rate(owner: str, value: Any) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise OpTypeError(f"{owner}: dropout must be a float in [0, 1), got {value!r}") from None
    if isinstance(value, bool) or not 0.0 <= rate < 1.0:
        raise OpValueError(f"{owner}: dropout must be in [0, 1), got {value!r}")
    return rate


def _mask_list(owner: str, mask: Any, inputs: list[Any]) -> list[Any]:
    """[query_mask, value_mask(, key_mask)]: ``mask`` when given (a list), else the inputs' masks."""
    if mask is None:
        return [mask_of(x) for x in inputs]
    if not isinstance(mask, (list, tuple)) or not 2 <= len(mask) <= 3:
        raise OpValueError(f"{owner}: mask must be a list [query_mask, value_mask] or [query_mask, value_mask, "
                           f"key_mask], got {type(mask).__name__}")
    masks = list(mask) + [None] * (3 - len(mask))
    return [None if m is None else checked_mask(owner, m, *value_of(x).shape[:2], arg=f"mask[{i}]")
            for i, (m, x) in enumerate(zip(masks, inputs + [inputs[1]]))][:len(inputs)]


def _and(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return logical_and_p.apply2(a, b)


class Attention(Layer):
    """Dot-product (Luong) attention: ``Attention(use_scale=False, score_mode="dot", dropout=0.0)``.

    ``layer([query, value] or [query, value, key], training=None, mask=None,
    return_attention_scores=False, use_causal_mask=False)`` with query ``(batch, Tq, dim)``
    and value/key ``(batch, Tv, dim)``: scores ``query key^T`` (``"dot"``, times the trainable
    scalar ``scale`` with ``use_scale``) or ``concat_score_weight * sum(tanh(scale * (q + k)))``
    (``"concat"``), the softmax over Tv (masked keys and, with ``use_causal_mask``, later
    positions excluded), dropout on it in training, then ``weights value``. With
    ``return_attention_scores`` the result is ``[output, weights]``. ``mask`` is
    ``[query_mask, value_mask]``; a masked query's output is zero.
    """

    def __init__(self, use_scale: bool = False, score_mode: str = "dot", dropout: float = 0.0, seed: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(use_scale, (bool, np.bool_)):
            raise OpTypeError(f"{owner(self)}: use_scale must be True or False, got {use_scale!r}")
        if score_mode not in ("dot", "concat"):
            raise OpValueError(f"{owner(self)}: score_mode must be 'dot' or 'concat', got {score_mode!r}")
        self.use_scale = bool(use_scale)
        self.score_mode = score_mode
        self.dropout = _rate(owner(self), dropout)
        self.seed = _seed(owner(self), seed)
        self._rng = None if self.seed is None else np.random.default_rng(self.seed)
        self.scale: Variable | None = None
        self.concat_score_weight: Variable | None = None

    def build(self, input_shape: Any) -> None:
        shapes = shape_list(self, input_shape, exactly=3)
        if any(len(s) != 2 for s in shapes):
            raise OpValueError(f"{self.name}: Attention takes [query, value] or [query, value, key], each of shape "
                               f"(batch, time, dim); got shapes {shapes} (batch axis excluded)")
        q, v, k = shapes
        if q[1] != k[1] or (v[0] is not None and k[0] is not None and v[0] != k[0]):
            raise OpValueError(f"{self.name}: query {q} and key {k} need the same dim, and value {v} and key the "
                               f"same number of steps (batch axis excluded)")
        if self.use_scale:
            self.scale = self.add_weight("scale", (), "ones")
        if self.score_mode == "concat":
            self.concat_score_weight = self.add_weight("concat_score_weight", (), "ones")
        self.input_shape = [(None, s[1]) for s in shapes]  # any number of steps
        self.output_shape = (q[0], v[1])

    def __call__(self, inputs: Any, training: bool | None = None, mask: Any = None,
                 return_attention_scores: bool = False, use_causal_mask: bool = False, **kwargs: Any) -> Any:
        if not isinstance(inputs, (list, tuple)) or not 2 <= len(inputs) <= 3:
            raise OpTypeError(f"{self.name}: Attention takes a list [query, value] or [query, value, key], got "
                              f"{type(inputs).__name__}")
        inputs = list(inputs)
        if len(inputs) == 2:
            inputs.append(inputs[1])  # the key is the value
        return super().__call__(inputs, training, mask=mask, return_attention_scores=return_attention_scores,
                                use_causal_mask=use_causal_mask, **kwargs)

    forward = __call__

    def call(self, inputs: Any, training: bool | None = None, mask: Any = None,
             return_attention_scores: bool = False, use_causal_mask: bool = False) -> Any:
        masks = _mask_list(self.name, mask, list(inputs))
        q, v = autocast(inputs[0], self.dtype), autocast(inputs[1], self.dtype)
        k = v if inputs[2] is inputs[1] else autocast(inputs[2], self.dtype)
        q_mask, v_mask = masks[0], masks[1]
        if self.score_mode == "dot":
            scores = matmul_p.apply(q, k, transpose_a=False, transpose_b=True)
            if self.scale is not None:
                scores = mul_p.apply2(scores, self.scale)
        else:
            total = add_p.apply2(expand_dims_p.apply(q, axes=(2,)), expand_dims_p.apply(k, axes=(1,)))
            if self.scale is not None:
                total = mul_p.apply2(total, self.scale)
            scores = mul_p.apply2(reduce_sum_p.apply(tanh_p.apply1(total), axis=(3,), keepdims=False),
                                  self.concat_score_weight)
        tq, tv = value_of(scores).shape[1:]
        score_mask = None if v_mask is None else expand_dims_p.apply(v_mask, axes=(1,))
        if use_causal_mask:
            score_mask = _and(score_mask, _causal(tq, tv))
        if score_mask is not None:
            scores = where_p.apply(score_mask, scores, sub_p.apply2(scores, -MASKED))
        weights = softmax_p.apply(scores, axis=2)
        dropped = weights
        if training and self.dropout:
            dropped = mul_p.apply2(weights, dropout_mask_p.apply(weights, rate=self.dropout, noise_shape=None,
                                                                 generator=RandomSource(self._rng)))
        output = matmul_p.apply2(dropped, v)
        if q_mask is not None:
            output = mul_p.apply2(output, expand_dims_p.apply(q_mask, axes=(2,)))
            output.mask = q_mask
        if return_attention_scores:
            return [output, dropped]
        return output

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(use_scale=self.use_scale, score_mode=self.score_mode, dropout=self.dropout, seed=self.seed)
        return config


class MultiHeadAttention(Layer):
    """``MultiHeadAttention(num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True,
    output_shape=None)`` (Keras 3, attention over the time axis).

    Keras's call ``layer(query, value, key=None, attention_mask=None,
    return_attention_scores=False, use_causal_mask=False, training=None)`` and Rindow's
    ``layer([query, value(, key)], training=None, mask=None, ...)``. Query ``(batch, T, dq)``,
    value ``(batch, S, dv)``, key ``(batch, S, dk)`` (default: value). Weights, in order:
    query, key and value kernels ``(d, heads, key_dim or value_dim)`` with biases
    ``(heads, key_dim or value_dim)``, the output kernel ``(heads, value_dim, out)`` and its
    bias ``(out,)``, ``out`` being ``output_shape`` or dq. The attention mask is the AND of
    ``attention_mask`` ``(batch, T, S)``, the query mask ``(batch, T, 1)``, the value and key
    masks ``(batch, 1, S)`` and the causal mask; the output carries the query's mask. With
    ``return_attention_scores`` the result is ``[output, scores]``, scores being the softmax
    ``(batch, heads, T, S)`` before dropout.
    """

    def __init__(self, num_heads: int, key_dim: int, value_dim: int | None = None, dropout: float = 0.0,
                 use_bias: bool = True, output_shape: Any = None, kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for arg, value in (("num_heads", num_heads), ("key_dim", key_dim), ("value_dim", value_dim)):
            if value is None and arg == "value_dim":
                continue
            if isinstance(value, (float, np.floating)):
                raise OpValueError(f"{owner(self)}: {arg} must be a positive int, got {value!r}")
            hyperparams.integer(owner(self), arg, value, low=1)
        self.num_heads = int(num_heads)
        self.key_dim = int(key_dim)
        self.value_dim = int(value_dim) if value_dim is not None else self.key_dim
        self.dropout = _rate(owner(self), dropout)
        if not isinstance(use_bias, (bool, np.bool_)):
            raise OpTypeError(f"{owner(self)}: use_bias must be True or False, got {use_bias!r}")
        self.use_bias = bool(use_bias)
        if output_shape is not None:
            dims = (output_shape,) if isinstance(output_shape, (int, np.integer)) else tuple(output_shape)
            if not dims or any(not isinstance(n, (int, np.integer)) or isinstance(n, bool) or not 0 < n <= MAX_DIM
                               for n in dims):
                raise OpValueError(f"{owner(self)}: output_shape must be a positive int or a tuple of them, got "
                                   f"{output_shape!r}")
            output_shape = tuple(int(n) for n in dims)
        self._output_dims: tuple[int, ...] | None = output_shape
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self._init_configs = {"kernel_initializer": initializers.serialize(kernel_initializer),
                              "bias_initializer": initializers.serialize(bias_initializer)}
        self.seed = _seed(owner(self), seed)
        self._rng = None if self.seed is None else np.random.default_rng(self.seed)
        self._scale = 1.0 / math.sqrt(float(self.key_dim))

    # -- weights ------------------------------------------------------------------------
    def build(self, input_shape: Any) -> None:
        shapes = shape_list(self, input_shape, exactly=3)
        if any(len(s) != 2 or s[1] is None for s in shapes):
            raise OpValueError(f"{self.name}: MultiHeadAttention takes query, value (and key) of shape (batch, "
                               f"time, features) with known features; got shapes {shapes} (batch axis excluded)")
        q, v, k = shapes
        if v[0] is not None and k[0] is not None and v[0] != k[0]:
            raise OpValueError(f"{self.name}: value {v} and key {k} need the same number of steps")
        H, K, V = self.num_heads, self.key_dim, self.value_dim
        out = self._output_dims or (q[1],)
        self.query_kernel = self.add_weight("query/kernel", (q[1], H, K), self.kernel_initializer)
        self.query_bias = self.add_weight("query/bias", (H, K), self.bias_initializer) if self.use_bias else None
        self.key_kernel = self.add_weight("key/kernel", (k[1], H, K), self.kernel_initializer)
        self.key_bias = self.add_weight("key/bias", (H, K), self.bias_initializer) if self.use_bias else None
        self.value_kernel = self.add_weight("value/kernel", (v[1], H, V), self.kernel_initializer)
        self.value_bias = self.add_weight("value/bias", (H, V), self.bias_initializer) if self.use_bias else None
        self.output_kernel = self.add_weight("attention_output/kernel", (H, V) + out, self.kernel_initializer)
        self.output_bias = (self.add_weight("attention_output/bias", out, self.bias_initializer)
                            if self.use_bias else None)
        self.input_shape = [(None, s[1]) for s in shapes]  # any number of steps
        self.output_shape = (q[0],) + out

    def _project(self, x: Any, kernel: Variable, bias: Variable | None) -> Variable:
        """(batch, T, d) -> (batch, T, heads, dim): one 2-D product."""
        batch, time, d = value_of(x).shape
        heads, dim = kernel.shape[1:]
        y = matmul_p.apply2(reshape_p.apply(x, shape=(batch * time, d)),
                            reshape_p.apply(kernel, shape=(d, heads * dim)))
        if bias is not None:
            y = add_p.apply2(y, reshape_p.apply(bias, shape=(heads * dim,)))
        return reshape_p.apply(y, shape=(batch, time, heads, dim))

    # -- calling ------------------------------------------------------------------------
    def __call__(self, query: Any, value: Any = None, key: Any = None, attention_mask: Any = None,
                 return_attention_scores: bool = False, use_causal_mask: bool = False, training: bool | None = None,
                 mask: Any = None, **kwargs: Any) -> Any:
        if isinstance(query, (list, tuple)):  # Rindow's form: [query, value(, key)], training, mask
            if not 2 <= len(query) <= 3:
                raise OpValueError(f"{self.name}: the list form takes [query, value] or [query, value, key], got "
                                   f"{len(query)} inputs")
            if value is not None and training is None and isinstance(value, (bool, np.bool_)):
                training, value = bool(value), None
            if value is not None or key is not None:
                raise OpTypeError(f"{self.name}: with a list of inputs, give value and key inside the list")
            inputs = list(query)
        else:
            if value is None:
                raise OpTypeError(f"{self.name}: MultiHeadAttention needs a value: layer(query, value) or "
                                  f"layer([query, value])")
            inputs = [query, value] if key is None else [query, value, key]
        if len(inputs) == 2:
            inputs.append(inputs[1])  # the key is the value (and its mask is not used twice)
        return super().__call__(inputs, training, attention_mask=attention_mask,
                                return_attention_scores=return_attention_scores, use_causal_mask=use_causal_mask,
                                mask=mask, **kwargs)

    forward = __call__

    def call(self, inputs: Any, training: bool | None = None, attention_mask: Any = None,
             return_attention_scores: bool = False, use_causal_mask: bool = False, mask: Any = None) -> Any:
        masks = _mask_list(self.name, mask, list(inputs))
        query = autocast(inputs[0], self.dtype)
        value = autocast(inputs[1], self.dtype)
        key = value if inputs[2] is inputs[1] else autocast(inputs[2], self.dtype)
        if inputs[2] is inputs[1]:
            masks[2] = None  # Keras ignores the key's mask when key is value
        batch, tq = value_of(query).shape[:2]
        tv = value_of(value).shape[1]
        combined = self._attention_mask(masks, attention_mask, use_causal_mask, batch, tq, tv)
        heads_mask = None if combined is None else expand_dims_p.apply(combined, axes=(1,))
        if (inputs[0] is inputs[1] and inputs[2] is inputs[1] and self.value_dim == self.key_dim
                and not return_attention_scores):
            # self-attention: q, k and v from one product with the three kernels side by side
            drop = self._dropout_mask(expand_dims_p.apply(query, axes=(1,)), tq, tv) if (
                training and self.dropout) else None
            out = packed_self_attention(self._project_packed(query), self._scale, heads_mask, drop)
            return self._output(out, masks[0], batch, tq)
        q = self._project(query, self.query_kernel, self.query_bias)
        k = self._project(key, self.key_kernel, self.key_bias)
        v = self._project(value, self.value_kernel, self.value_bias)
        scores = None
        if return_attention_scores:
            out, scores = reference_attention({"q": q, "k": k, "v": v, "mask": heads_mask, "drop": None},
                                              self._scale, return_probabilities=True)
            if training and self.dropout:
                drop = self._dropout_mask(q, tq, tv)
                out = reference_attention({"q": q, "k": k, "v": v, "mask": heads_mask, "drop": drop}, self._scale)
        else:
            drop = self._dropout_mask(q, tq, tv) if training and self.dropout else None
            out = dot_product_attention(q, k, v, self._scale, heads_mask, drop)
        y = self._output(out, masks[0], batch, tq)
        if return_attention_scores:
            return [y, scores]
        return y

    def _project_packed(self, x: Any) -> Variable:
        """(batch, T, d) -> (batch, T, 3, heads, dim): q, k and v of self-attention, one product."""
        batch, time, d = value_of(x).shape
        H, K = self.num_heads, self.key_dim
        kernels = [reshape_p.apply(w, shape=(d, H * K)) for w in (self.query_kernel, self.key_kernel,
                                                                    self.value_kernel)]
        y = matmul_p.apply2(reshape_p.apply(x, shape=(batch * time, d)), concat_p.apply(*kernels, axis=1))
        if self.use_bias:
            biases = [reshape_p.apply(b, shape=(H * K,)) for b in (self.query_bias, self.key_bias, self.value_bias)]
            y = add_p.apply2(y, concat_p.apply(*biases, axis=0))
        return reshape_p.apply(y, shape=(batch, time, 3, H, K))

    def _output(self, out: Variable, query_mask: Any, batch: int, tq: int) -> Variable:
        """The output projection of the heads' results ``(batch, T, heads, value_dim)``."""
        H, V = self.num_heads, self.value_dim
        dims = self.output_kernel.shape[2:]
        n = int(np.prod(dims))
        y = matmul_p.apply2(reshape_p.apply(out, shape=(batch * tq, H * V)),
                            reshape_p.apply(self.output_kernel, shape=(H * V, n)))
        if self.output_bias is not None:
            y = add_p.apply2(y, reshape_p.apply(self.output_bias, shape=(n,)))
        y = reshape_p.apply(y, shape=(batch, tq) + dims)
        if query_mask is not None:
            y.mask = query_mask
        return y

    def _dropout_mask(self, template: Any, tq: int, tv: int) -> Variable:
        """A dropout mask ``(batch, heads, T, S)`` on the attention weights (``template``: any
        4-D array of the batch's size)."""
        return dropout_mask_p.apply(template, rate=self.dropout, noise_shape=(None, self.num_heads, tq, tv),
                                    generator=RandomSource(self._rng))

    def _attention_mask(self, masks: list[Any], attention_mask: Any, causal: bool, batch: int, tq: int,
                        tv: int) -> Any:
        combined = None
        if masks[0] is not None:
            combined = expand_dims_p.apply(masks[0], axes=(2,))
        for m in masks[1:]:
            if m is not None:
                combined = _and(combined, expand_dims_p.apply(m, axes=(1,)))
        if causal:
            combined = _and(combined, _causal(tq, tv))
        if attention_mask is not None:
            value = attention_mask._value if isinstance(attention_mask, Variable) else np.asarray(attention_mask)
            try:
                np.broadcast_shapes(np.shape(value), (batch, tq, tv))
            except ValueError:
                raise OpValueError(f"{self.name}: attention_mask has shape {np.shape(value)}, expected (batch, T, S) "
                                   f"= ({batch}, {tq}, {tv})") from None
            if value.dtype.kind != "b":
                attention_mask = (attention_mask != 0) if isinstance(attention_mask, Variable) else value != 0
            combined = _and(combined, attention_mask)
        return combined

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(num_heads=self.num_heads, key_dim=self.key_dim, value_dim=self.value_dim, dropout=self.dropout,
                      use_bias=self.use_bias,
                      output_shape=None if self._output_dims is None else list(self._output_dims),
                      **self._init_configs, seed=self.seed)
        return config

