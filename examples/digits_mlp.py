"""The Keras-level workflow on a small real dataset: compile, fit, evaluate, predict,
save and load an MLP on the 8x8 handwritten digits (``nn.datasets.digits()``, which
needs scikit-learn). Reaches about 97 % test accuracy in a couple of seconds.

    python examples/digits_mlp.py [model.tgm]
"""

import os
import sys
import tempfile

import numpy as np

import tapegrad

tapegrad.set_seed(0)
nn = tapegrad.NeuralNetworks()
(x_train, y_train), (x_test, y_test) = nn.datasets.digits(flatten=True)
print(f"digits: {len(x_train)} training and {len(x_test)} test images of {x_train.shape[1]} pixels")

model = tapegrad.Sequential([
    nn.layers.Dense(128, input_shape=[64], activation="relu"),
    nn.layers.Dense(64, activation="relu"),
    nn.layers.Dense(10),
])
model.compile(
    optimizer=nn.optimizers.Adam(learning_rate=0.002),
    loss=nn.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
model.summary()

history = model.fit(x_train, y_train, epochs=25, batch_size=32, validation_split=0.1, verbose=2)

loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
print(f"test loss: {loss:.4f}")
print(f"test accuracy: {accuracy:.4f}")

predictions = model.predict(x_test)
assert np.isclose((predictions.argmax(axis=1) == y_test).mean(), accuracy)



def save_and_reload(path):
    model.save(path)
    loaded = tapegrad.load_model(path)
    same = np.array_equal(loaded.predict(x_test), predictions)
    print(f"saved to {path} ({os.path.getsize(path)} bytes); the reloaded model predicts identically: {same}")
    return same


if len(sys.argv) > 1:
    same = save_and_reload(sys.argv[1])
else:
    with tempfile.TemporaryDirectory() as folder:  # removed with the file when done
        same = save_and_reload(os.path.join(folder, "digits_mlp.tgm"))
sys.exit(0 if same and accuracy >= 0.95 else 1)
