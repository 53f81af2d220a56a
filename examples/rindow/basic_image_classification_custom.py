"""Rindow's samples/basic-image-classification-custom.php, line by line in Python: the MNIST
classifier of basic_image_classification.py written as a model class (AbstractModel).

    python examples/rindow/basic_image_classification_custom.py [dataset-name] [epochs] [shrink]
                                                                [--small] [--no-plot]

MNIST is read from $TAPEGRAD_DATASETS (see tapegrad.nn.datasets). ``shrink`` keeps 2,000
training and 200 test images, as in Rindow; ``--small`` keeps 300 and 100, for the tests.
The weights are saved to (and, when the file exists, loaded from)
basic-image-classification-custom-<dataset-name>.model in the current directory.
"""

import sys
from pathlib import Path

import numpy as np

import tapegrad
from tapegrad import AbstractModel

nn = tapegrad.NeuralNetworks()
args = [a for a in sys.argv[1:] if not a.startswith("--")]
small = "--small" in sys.argv
plot = "--no-plot" not in sys.argv
if small:
    tapegrad.set_seed(0)  # reproducible runs in the tests

dataset = "mnist"
epochs = 5
shrink = False

if len(args) > 0 and args[0]:
    dataset = args[0]
if len(args) > 1 and args[1]:
    epochs = int(args[1])
if len(args) > 2 and args[2]:
    shrink = True

(train_img, train_label), (test_img, test_label) = nn.datasets().mnist().load_data()
input_shape = [28, 28, 1]
class_names = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]

print(f"dataset={dataset}")
print("train=[" + ",".join(map(str, train_img.shape)) + "]")
print("test=[" + ",".join(map(str, test_img.shape)) + "]")

if shrink or small:
    # Shrink data
    train_size = 300 if small else 2000
    test_size = 100 if small else 200
    print("Shrink data ...")
    train_img = train_img[0:train_size]
    train_label = train_label[0:train_size]
    test_img = test_img[0:test_size]
    test_label = test_label[0:test_size]
    print("Shrink train=[" + ",".join(map(str, train_img.shape)) + "]")
    print("Shrink test=[" + ",".join(map(str, test_img.shape)) + "]")


# flatten images and normalize
def formating_image(train_img):
    data_size = train_img.shape[0]
    image_size = train_img[0].size
    train_img = train_img.reshape([data_size, image_size])
    return np.float32(1.0 / 255.0) * train_img.astype(np.float32)


print("formating train images ...")
train_img = formating_image(train_img)
train_label = train_label.astype(np.int32)
print("formating test images ...")
test_img = formating_image(test_img)
test_label = test_label.astype(np.int32)


class ImageClassification(AbstractModel):
    def __init__(self, builder):
        super().__init__(builder)
        self.dense1 = builder.layers.Dense(
            128,
            input_shape=[int(np.prod([28, 28, 1]))],
            kernel_initializer="he_normal",
            activation="relu",
        )
        self.dense2 = builder.layers.Dense(10)

    def call(self, inputs):
        x = self.dense1.forward(inputs)
        outputs = self.dense2.forward(x)
        return outputs


print("device type: " + nn.device_type())
model = ImageClassification(nn)
print("creating model ...")
model.compile(
    loss=nn.losses().SparseCategoricalCrossentropy(from_logits=True),
    optimizer="adam",
)
model.build(nn.gradient().ArraySpec([1, int(28 * 28 * 1)]))  # This is only needed for summary
model.summary()

model_file_path = Path(f"basic-image-classification-custom-{dataset}.model")

history = None
if model_file_path.exists():
    print("loading model ...")
    model.load_weights_from_file(model_file_path, portable=True)
else:
    print("training model ...")
    history = model.fit(train_img, train_label,
                        epochs=epochs, batch_size=32 if small else 256, validation_data=[test_img, test_label],
                        verbose=2)
    model.save_weights_to_file(model_file_path, portable=True)

images = test_img[0:8]
labels = test_label[0:8]
predicts = model.predict(images)
# for from_logits
predicts = nn.backend.array(predicts)
predicts = nn.backend.softmax(predicts)
predicts = nn.backend.ndarray(predicts)

if history is not None:
    print(f"final: accuracy={history['accuracy'][-1]:.4f} val_accuracy={history['val_accuracy'][-1]:.4f}")
test_accuracy = model.evaluate(test_img, test_label, verbose=0)[1]
print(f"test accuracy={test_accuracy:.4f}")
print("predicted classes: " + " ".join(str(class_names[i]) for i in predicts.argmax(axis=-1)))
print("true classes:      " + " ".join(str(class_names[i]) for i in labels))

if plot:
    try:
        import matplotlib
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no plots)")
        sys.exit(0)
    if history is not None:
        plt.figure()
        for name in ("accuracy", "val_accuracy", "loss", "val_loss"):
            plt.plot(np.array(history[name]), label=name)
        plt.legend()
        plt.title(dataset)
        plt.savefig(f"basic-image-classification-custom-{dataset}-history.png")

    if input_shape[2] == 1:
        input_shape.pop()
    fig, axes = plt.subplots(4, 4)
    axes = axes.ravel()
    for i, predict in enumerate(predicts):
        axes[i * 2].imshow(images[i].reshape(input_shape), origin="upper")
        axes[i * 2].set_axis_off()
        label = labels[i]
        axes[i * 2].set_title(f"{class_names[label]}({label})")
        axes[i * 2 + 1].bar(np.arange(10), predict)
    plt.savefig(f"basic-image-classification-custom-{dataset}-predicts.png")
    if matplotlib.get_backend().lower() != "agg":
        plt.show()
