"""The inputs of the recurrent primitives: which are differentiable, which are optional,
and how a primitive's positional inputs map to names. Shared by the fused primitives
(recurrent.py) and their step-by-step reference (recurrent_reference.py)."""

from __future__ import annotations

from typing import Any

DIFFERENTIABLE = {"lstm": ("x", "W", "R", "b", "h0", "c0"), "gru": ("x", "W", "R", "b", "h0"),
                  "simple_rnn": ("x", "W", "R", "b", "h0")}
OPTIONAL = ("b", "h0", "c0", "mask", "in_drop", "rec_drop")
GATES = {"lstm": 4, "gru": 3, "simple_rnn": 1}


def named_inputs(cell: str, inputs: tuple, parts: tuple[str, ...]) -> dict[str, Any]:
    """``{"x": ..., "W": ..., "R": ..., "b": ... or None, ...}`` from a primitive's inputs."""
    named: dict[str, Any] = dict.fromkeys(OPTIONAL)
    named.update(x=inputs[0], W=inputs[1], R=inputs[2])
    named.update(zip(parts, inputs[3:]))
    return named
