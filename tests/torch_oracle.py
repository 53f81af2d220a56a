"""PyTorch as the oracle of an op, in float64: values, gradients, torch.func's jvp, vmap and
jacfwd, and Hessian-vector products (forward over reverse), one check per function.

A :class:`Case` pairs a tapegrad function with its torch twin, both of the same float
arguments (integer arguments, such as indices, live in the functions' closures), and makes
its inputs from a seed derived from its id. Every function returns one array.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest

import tapegrad as tg

torch = pytest.importorskip("torch")
func = pytest.importorskip("torch.func")

TOL = {"rtol": 1e-9, "atol": 1e-11}
BATCH = 3


@dataclass
class Case:
    id: str
    fn: Callable[..., Any]
    torch_fn: Callable[..., Any]
    make: Callable[[np.random.Generator], list[np.ndarray]]
    tol: dict | None = None

    def inputs(self, salt: int = 0) -> list[np.ndarray]:
        return [np.asarray(a, dtype=np.float64) for a in
                self.make(np.random.default_rng(zlib.crc32(self.id.encode()) + salt))]

    def close(self, got: Any, want: Any, what: str) -> None:
        got = got.numpy() if isinstance(got, tg.Variable) else np.asarray(got)
        want = want.detach().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
        assert got.shape == want.shape, f"{self.id}, {what}: shape {got.shape} != torch's {want.shape}"
        np.testing.assert_allclose(got, want, err_msg=f"{self.id}, {what}", **(self.tol or TOL))


def tensors(arrays: list[np.ndarray], grad: bool = False) -> list[Any]:
    return [torch.tensor(a, dtype=torch.float64, requires_grad=grad) for a in arrays]


def weights(case: Case, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(zlib.crc32(case.id.encode()) + 99).uniform(0.5, 1.5, shape)


def check_values_and_gradients(case: Case) -> None:
    xs = case.inputs()
    out = case.fn(*[tg.Variable(x) for x in xs])
    ts = tensors(xs, grad=True)
    want = case.torch_fn(*ts)
    case.close(out, want, "value")
    w = weights(case, tuple(want.shape))
    variables = [tg.Variable(x) for x in xs]
    with tg.GradientTape() as tape:
        total = tg.reduce_sum(case.fn(*variables) * w)
    got = tape.gradient(total, variables, unconnected_gradients="zero")
    expected = torch.autograd.grad((want * torch.from_numpy(w)).sum(), ts, allow_unused=True)
    for k, (g, e) in enumerate(zip(got, expected)):
        case.close(g, np.zeros(xs[k].shape) if e is None else e, f"gradient of argument {k}")


def check_jvp(case: Case) -> None:
    xs, vs = case.inputs(), case.inputs(salt=1)
    out, tangent = tg.jvp(case.fn, tuple(xs), tuple(vs))
    want, want_tangent = func.jvp(case.torch_fn, tuple(tensors(xs)), tuple(tensors(vs)))
    case.close(out, want, "jvp's value")
    case.close(tangent, want_tangent, "jvp's tangent")


def check_vmap(case: Case) -> None:
    examples = [case.inputs(salt=10 + k) for k in range(BATCH)]
    stacked = [np.stack([ex[i] for ex in examples]) for i in range(len(examples[0]))]
    got = tg.vmap(case.fn)(*stacked)
    case.close(got, func.vmap(case.torch_fn)(*tensors(stacked)), "vmap")
    # the batch on the last axis of the first argument, the others shared
    last = np.stack([ex[0] for ex in examples], axis=-1)
    shared = examples[0][1:]
    in_axes = (last.ndim - 1,) + (None,) * len(shared)
    got = tg.vmap(case.fn, in_axes=in_axes)(last, *shared)
    case.close(got, func.vmap(case.torch_fn, in_dims=in_axes)(*tensors([last] + shared)), "vmap on the last axis")


def check_jacfwd(case: Case) -> None:
    xs = case.inputs()
    nums = tuple(range(len(xs)))
    got = tg.jacfwd(case.fn, argnums=nums)(*xs)
    want = func.jacfwd(case.torch_fn, argnums=nums)(*tensors(xs))
    for k, (g, w) in enumerate(zip(got, want)):
        case.close(g, w, f"jacfwd, argument {k}")


def check_hessian_vector_product(case: Case) -> None:
    xs, vs = case.inputs(), case.inputs(salt=2)
    nums = tuple(range(len(xs)))
    shape = tuple(case.torch_fn(*tensors(xs)).shape)
    w = weights(case, shape)
    tw = torch.from_numpy(w)

    def scalar(*args: Any) -> Any:
        return tg.reduce_sum(case.fn(*args) * w)

    def torch_scalar(*args: Any) -> Any:
        return (case.torch_fn(*args) * tw).sum()

    _, got = tg.jvp(tg.grad(scalar, argnums=nums), tuple(xs), tuple(vs))
    _, want = func.jvp(func.grad(torch_scalar, argnums=nums), tuple(tensors(xs)), tuple(tensors(vs)))
    for k, (g, e) in enumerate(zip(got, want)):
        case.close(g, e, f"Hessian-vector product, argument {k}")


def check_gradcheck(case: Case) -> None:
    tg.gradcheck(case.fn, case.inputs(), order=2)


CHECKS = {
    "values_and_gradients": check_values_and_gradients,
    "jvp": check_jvp,
    "vmap": check_vmap,
    "jacfwd": check_jacfwd,
    "hessian_vector_product": check_hessian_vector_product,
}
