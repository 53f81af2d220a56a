"""Seed 000 (Rindow's "Automatic Differentiation" page) in Python: Variables,
functions and the GradientTape. Prints exactly what the seed prints."""

import numpy as np

import tapegrad
from tapegrad import to_string  # Rindow's $mo->toString()

nn = tapegrad.NeuralNetworks()
g = nn.gradient()

# Variables: a NumPy array is a constant; a Variable copies it.
value = np.array([2, 3], dtype=np.float32)
print(to_string(value))

a = g.Variable(value)
print(to_string(a))

value = np.array([2, 3], dtype=np.float32)
a = g.Variable(value)
print("a=" + to_string(a))
value[0] = 0
value[1] = 0
print("value=" + to_string(value))
print("a=" + to_string(a))

b = g.Variable([4, 5])
print("b=" + to_string(b))

# Functions
a = g.Variable(2.0)
b = g.Variable(3.0)
c = g.mul(a, b)
print("c=" + to_string(c))

# Gradient calculation: nn.with_(tape, fn) is Rindow's $nn->with($tape, fn)
a = g.Variable(2.0)
b = g.Variable(3.0)
c = nn.with_(tape := g.GradientTape(), lambda: g.mul(a, b))
print("c=" + to_string(c))

da, db = tape.gradient(c, [a, b])
print("da=" + to_string(da))
print("db=" + to_string(db))

# The most basic usage, with Python's own `with` statement
a = g.Variable(2.0)
b = g.Variable(3.0)
with g.GradientTape() as tape:
    c = g.mul(a, b)
grads = tape.gradient(c, [a, b])

print("c=" + to_string(c))
print("da=" + to_string(grads[0]))
print("db=" + to_string(grads[1]))
