"""Finding a model's layers and Variables in its attributes, with a cache.

A model (any layer whose class sets ``_tracks_attributes``) owns the layers and Variables
held by its attributes, directly or inside lists, tuples and dicts, to any depth.
:func:`_discover` walks them once and returns a :class:`_Tracking`; afterwards
``_Tracking.valid()`` checks, in about a microsecond, that nothing it depends on has
changed (an attribute of a model set or deleted -- models bump ``_generation`` then --,
a list or dict of layers changed, a layer built or (un)frozen, a Variable's
``trainable`` flag flipped).
"""

from __future__ import annotations

from typing import Any

from ...autodiff.variable import Variable
from ..layers.base import Layer

# Bumped whenever an attribute of any model that may hold layers or Variables is set or
# deleted: every cached variable discovery is then stale.
_generation = [0]
_TRACKED = (Layer, Variable, list, tuple, dict)

# Attributes of the Model class that never hold layers: skipped by discovery.
_NOT_TRACKED = frozenset({
    "_tracking", "optimizer", "loss", "history", "stop_training", "nn", "compiled_metrics",
    "_loss_fn", "_metrics", "_metric_names", "_compile_config", "_input_spec", "_trues_spec",
    "_train_fn", "_test_fn", "_predict_fn", "input_shape", "output_shape", "name", "dtype",
    "built", "_trainable", "_declared_spec", "jit", "_last_shape",
})



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


def _tracks_attributes(obj: Any) -> bool:
    return getattr(obj, "_tracks_attributes", False)


def _discover(root: Layer) -> _Tracking:
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
        skip = _NOT_TRACKED if _tracks_attributes(obj) else ()
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
        if _tracks_attributes(layer):
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
