"""Seed 004's computation graphs, drawn with tapegrad.draw.

    python examples/draw_graph.py [folder]

1. d = a * (a + b) at a = 4, b = 3, recorded on a tape: the nodes show 4, 3, c = 7 and
   d = 28; the edges show the seed's local derivatives, dc/da = dc/db = 1, dd/da = c = 7
   and dd/dc = a = 4.
2. The seed's sin/exp/log function, f = sin(a*b) + exp(c - a/b), y = log(f*f) * c at
   a = 43, b = 3, c = 2, compiled as a Function and drawn from its traced graph.

Each graph is written as DOT source (seed004_*.dot) into the folder (default: the current
directory), and as SVG too when Graphviz's dot program is installed. Prints where.
"""

import os
import shutil
import sys

import tapegrad as tg

folder = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
os.makedirs(folder, exist_ok=True)
render = shutil.which("dot") is not None


def save(target, name, **options):
    """Write the drawing of ``target`` as DOT (and SVG when Graphviz is installed)."""
    dot_path = os.path.join(folder, f"{name}.dot")
    tg.draw(target, dot_path, format="dot", **options)
    print(f"wrote {dot_path}")
    if render:
        svg_path = os.path.join(folder, f"{name}.svg")
        tg.draw(target, svg_path, **options)
        print(f"wrote {svg_path}")


# 1. d = a * (a + b): naming c and d puts "∂d/∂a = 7" on the edges, as in the seed's figure.
a = tg.Variable(4.0, dtype="float64", name="a")
b = tg.Variable(3.0, dtype="float64", name="b")
with tg.GradientTape(persistent=True) as tape:
    c = a + b  # = 4 + 3 = 7
    c.name = "c"
    d = a * c  # = 4 * 7 = 28
    d.name = "d"
print("d.value =", tg.to_string(d))
print("The partial derivative of d with respect to a =", tg.to_string(tape.gradient(d, a)))
print(tg.draw(tape, outputs=d, title="d = a * (a + b)"), end="")
save(tape, "seed004_d", outputs=d, title="d = a * (a + b)")


# 2. The sin/exp/log function, as a compiled Function.
def f(a, b, c):
    f = tg.sin(a * b) + tg.exp(c - (a / b))
    return tg.log(f * f) * c


a = tg.Variable(43.0, dtype="float64", name="a")
b = tg.Variable(3.0, dtype="float64", name="b")
c = tg.Variable(2.0, dtype="float64", name="c")
compiled = tg.Function(f)
print("y =", float(compiled(a, b, c)))
save(compiled, "seed004_sin_exp_log", args=(a, b, c), title="y = log(f * f) * c, f = sin(a*b) + exp(c - a/b)")
if not render:
    print("Graphviz's dot was not found: install it (e.g. apt install graphviz) to get SVG files too")
