"""Seed 004 ("reverse-mode automatic differentiation from scratch") in tapegrad.

The tutorial builds a scalar tape by hand; here the same functions run on tapegrad
Variables in float64, and print what the tutorial prints."""

import numpy as np

import tapegrad as tg

# to_string prints like the tutorial's Python ints (28, not 28.0); float() prints the
# full float64 repr.

# d = a * (a + b)
a = tg.Variable(4.0, dtype="float64")
b = tg.Variable(3.0, dtype="float64")
with tg.GradientTape(persistent=True) as tape:
    c = a + b  # = 4 + 3 = 7
    d = a * c  # = 4 * 7 = 28
print("d.value =", tg.to_string(d))
print("The partial derivative of d with respect to a =", tg.to_string(tape.gradient(d, a)))
print("gradients[b] =", tg.to_string(tape.gradient(d, b)))
print("gradients[c] =", tg.to_string(tape.gradient(d, c)))


# A rational function, checked against numerical estimates
def f(a, b):
    return (a / b - a) * (b / a + a + b) * (a - b)


a = tg.Variable(230.3, dtype="float64")
b = tg.Variable(33.2, dtype="float64")
with tg.GradientTape() as tape:
    y = f(a, b)
da, db = tape.gradient(y, [a, b])
print("The partial derivative of y with respect to a =", float(da))
print("The partial derivative of y with respect to b =", float(db))

delta = 1e-8
numerical_grad_a = (f(a + delta, b) - f(a, b)) / delta
numerical_grad_b = (f(a, b + delta) - f(a, b)) / delta
print("The numerical estimate for a =", float(numerical_grad_a))
print("The numerical estimate for b =", float(numerical_grad_b))


# sin, exp and log
def f(a, b, c):
    f = tg.sin(a * b) + tg.exp(c - (a / b))
    return tg.log(f * f) * c


a, b, c = (tg.Variable(v, dtype="float64") for v in (43.0, 3.0, 2.0))
with tg.GradientTape() as tape:
    y = f(a, b, c)
da, db, dc = tape.gradient(y, [a, b, c])
print("The partial derivative of y with respect to a =", float(da))
print("The partial derivative of y with respect to b =", float(db))
print("The partial derivative of y with respect to c =", float(dc))

numerical_grad_a = (f(a + delta, b, c) - f(a, b, c)) / delta
numerical_grad_b = (f(a, b + delta, c) - f(a, b, c)) / delta
numerical_grad_c = (f(a, b, c + delta) - f(a, b, c)) / delta
print("The numerical estimate for a =", float(numerical_grad_a))
print("The numerical estimate for b =", float(numerical_grad_b))
print("The numerical estimate for c =", float(numerical_grad_c))

# The tutorial's single linear layer (fitting noise to noise), vectorised: one
# matmul instead of an array of scalar nodes.
np.random.seed(0)
input_size, output_size, lrate = 50, 10, 0.001
x = np.random.random(input_size)
y_true = np.random.random(output_size)
weights = tg.Variable(np.random.random((input_size, output_size)))

loss_vals = []
for _ in range(100):
    with tg.GradientTape() as tape:
        y_pred = tg.matmul(x, weights)
        loss = tg.reduce_sum((y_true - y_pred) * (y_true - y_pred))
    loss_vals.append(float(loss))
    gradient = tape.gradient(loss, weights)
    weights.assign(weights.value() - lrate * gradient.value())

print(f"linear layer: loss {loss_vals[0]:.4f} at step 1, {loss_vals[-1]:.6f} at step 100")
try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.plot(loss_vals)
    plt.xlabel("Time step")
    plt.ylabel("Loss")
    plt.title("Single linear layer learning")
    plt.savefig("linear_layer_loss.png")
    print("saved linear_layer_loss.png")
except ImportError:
    pass
