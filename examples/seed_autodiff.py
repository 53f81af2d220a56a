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

# Layers, losses and optimizers inside the tape (the seed's last snippet): the weights of a
# Dense layer come from trainable_variables(), and SGD updates them in place.
tapegrad.set_seed(0)
a = g.Variable(np.array([[1, 2, 3], [2, 3, 4]], dtype=np.float32))
x = g.Variable(np.array([[4, 5, 6], [5, 6, 7]], dtype=np.float32))
target = g.Variable(np.array([0, 1], dtype=np.int32))

dense = nn.layers().Dense(10)
lossfunc = nn.losses().SparseCategoricalCrossentropy(from_logits=True)


def forward():
    h = g.mul(x, a)
    h = dense.forward(h)
    return lossfunc.forward(target, h)


loss = nn.with_(tape := g.GradientTape(), forward)
weights = dense.trainable_variables()
grads = tape.gradient(loss, weights)
print("weights: " + ", ".join(f"{w.name}{tuple(w.shape)}" for w in weights))
print("grads: " + ", ".join(f"{tuple(gr.shape)}" for gr in grads))

optimizer = nn.optimizers().SGD()
optimizer.update(weights, grads)
after = forward()
print(f"loss={float(loss):.6f} after one SGD step={float(after):.6f} decreased={float(after) < float(loss)}")
