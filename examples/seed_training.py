"""Seed 003's custom training loop in tapegrad (shared/seeds/003_*.txt, "Model training").

An AbstractModel (Dense(128, sigmoid) -> Dense(2)) trained for 100 epochs on six points
with SparseCategoricalCrossentropy(from_logits=True) and Adam, the forward pass recorded
by a GradientTape: ``nn.with_(tape, fn)`` is Rindow's ``$nn->with($tape, fn)``.
Prints the loss of every epoch (the same in every run: the weights are drawn after
``tapegrad.set_seed(0)``) and saves the loss curve ("dynamic mode gradient", loss against
epoch) as a PNG when matplotlib is installed (Rindow's ``$plt->plot(...)``).

    python examples/seed_training.py [loss.png]
"""

import os
import sys

import numpy as np

import tapegrad

tapegrad.set_seed(0)  # the same initial weights, so every run prints the same losses
nn = tapegrad.NeuralNetworks()
K = nn.backend()
g = nn.gradient()


class TestModel(tapegrad.AbstractModel):
    def __init__(self, builder):
        super().__init__(builder)
        self.dense1 = builder.layers.Dense(128, input_shape=[2], activation="sigmoid")
        self.dense2 = builder.layers.Dense(2)

    def call(self, inputs, training=None, trues=None):
        x = self.dense1.forward(inputs, training)
        outputs = self.dense2.forward(x, training)
        return outputs


model = TestModel(nn)
lossfunc = nn.losses.SparseCategoricalCrossentropy(from_logits=True)
optimizer = nn.optimizers.Adam()
train_inputs = np.array([[1, 3], [1, 4], [2, 4], [3, 1], [4, 1], [4, 2]], dtype=np.float32)
train_tests = np.array([0, 0, 0, 1, 1, 1], dtype=np.int32)
history = []
dataset = nn.data.NDArrayDataset(train_inputs, tests=train_tests, batch_size=64, shuffle=False)

for epoch in range(100):
    total_loss = 0.0
    for inputs, trues in dataset:
        x = g.Variable(inputs)
        t = g.Variable(trues)

        def forward():
            predicts = model(x, True, t)
            return lossfunc(trues, predicts), predicts

        loss, predicts = nn.with_(tape := g.GradientTape(), forward)
        params = model.trainable_variables()
        gradients = tape.gradient(loss, params)

        optimizer.update(params, gradients)
        total_loss += K.scalar(loss.value())
    history.append(total_loss)
    print(f"epoch {epoch + 1}: loss={total_loss:.6f}")

# $plt->plot($mo->array($history),null,null,'loss'); $plt->legend(); $plt->title('dynamic mode gradient');
path = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "seed_training_loss.png")
try:
    from tapegrad.nn.models import plot_loss

    # the loss per epoch: x axis "epoch" (whole epochs from 1), y axis "loss"
    figure = plot_loss(history, path, label="loss", title="dynamic mode gradient")
    print(f"saved the loss plot to {path}")
except ImportError:
    print("matplotlib is not installed: no loss plot (pip install matplotlib)")
