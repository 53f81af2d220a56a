"""Nth derivatives by nesting GradientTapes: every VJP rule is written in
differentiable ops, so the gradient of a gradient is just another gradient.

Prints the first six derivatives of sin(x) and of tanh(x) at x = 0.5 next to their
closed forms, and the Hessian of a two-variable function."""

import math

import numpy as np

import tapegrad as tg


def derivatives(f, x0, order):
    """[f(x0), f'(x0), ..., f^(order)(x0)] with one tape per order."""
    x = tg.Variable(x0, dtype="float64")
    tapes = [tg.GradientTape() for _ in range(order)]
    for tape in tapes:  # outermost first
        tape.__enter__()
    values = [f(x)]
    for tape in reversed(tapes):  # the innermost tape differentiates first
        tape.__exit__(None, None, None)
        values.append(tape.gradient(values[-1], x))
    return [float(v) for v in values]


x0 = 0.5
print("n   d^n/dx^n sin(x)      sin(x + n*pi/2)")
for n, value in enumerate(derivatives(tg.sin, x0, 6)):
    print(f"{n}  {value: .15f}  {math.sin(x0 + n * math.pi / 2): .15f}")

t = math.tanh(x0)
# Closed forms of the tanh derivatives as polynomials in t = tanh(x).
tanh_closed = [
    t,
    1 - t**2,
    -2 * t * (1 - t**2),
    -2 * (1 - t**2) * (1 - 3 * t**2),
    8 * t * (1 - t**2) * (2 - 3 * t**2),
    8 * (1 - t**2) * (2 - 15 * t**2 + 15 * t**4),
    -16 * t * (1 - t**2) * (17 - 60 * t**2 + 45 * t**4),
]
print("n   d^n/dx^n tanh(x)     closed form")
for n, (value, expected) in enumerate(zip(derivatives(tg.tanh, x0, 6), tanh_closed)):
    print(f"{n}  {value: .15f}  {expected: .15f}")


def f(v):
    x, y = v[0], v[1]
    return x**3 * y + tg.sin(x * y)


v0 = np.array([1.0, 2.0])
print("Hessian of x^3 y + sin(xy) at (1, 2):")
print(tg.hessian(f)(v0).value())
