"""Rindow's samples/learn-add-numbers-with-rnn.php, line by line in Python: a GRU encoder, a
RepeatVector and a GRU decoder learn to add two numbers written as characters ("12+345 " ->
"357 ").

    python examples/rindow/learn_add_numbers_with_rnn.py [--small] [--no-plot]

The questions are generated (no download) and cached in numaddition-dataset.npz, the model
saved to (and, when the file exists, loaded from) learn-add-numbers-with-rnn.model, both in the
current directory (Rindow: a PHP serialization ``numaddition-dataset.pkl`` and the model beside
the script; NumPy plays the MatrixOperator, so NumAdditionDataset takes no ``$mo``).
``--small`` (for the tests) asks 2-digit questions, 3,000 of them, with 64 GRU units, batches
of 16 and 12 epochs, from a fixed seed. After the PHP's ten sample answers the port prints its
accuracy on the validation questions (``val_accuracy=``, per character, and ``exact=``, whole
answers), which the PHP does not.
"""

import sys
from pathlib import Path

import numpy as np

import tapegrad

small = "--small" in sys.argv
plot = "--no-plot" not in sys.argv

TRAINING_SIZE = 20000
DIGITS = 3
REVERSE = True
WORD_VECTOR = 16
UNITS = 128
EPOCHS = 10
BATCH_SIZE = 8
if small:
    TRAINING_SIZE, DIGITS, UNITS, EPOCHS, BATCH_SIZE = 3000, 2, 64, 12, 16
    tapegrad.set_seed(0)  # reproducible runs in the tests
rng = np.random.default_rng(0 if small else None)  # Rindow: $mo->random()


class NumAdditionDataset:
    def __init__(self, corpus_max, digits):
        self.corpus_max = corpus_max
        self.digits = digits
        self.vocab_input = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "+", " "]
        self.vocab_target = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "+", " "]
        self.dict_input = {c: i for i, c in enumerate(self.vocab_input)}
        self.dict_target = {c: i for i, c in enumerate(self.vocab_target)}
        self.input_length = digits * 2 + 1
        self.output_length = digits + 1

    def dicts(self):
        return [
            self.vocab_input,
            self.vocab_target,
            self.dict_input,
            self.dict_target,
        ]

    def generate(self):
        max_num = 10 ** self.digits
        max_sample = max_num ** 2
        numbers = rng.choice(max_sample, max_sample, replace=False)
        questions = {}
        dups = {}
        size = 0
        for i in range(max_sample):
            num = int(numbers[i])
            x1 = num // max_num
            x2 = num % max_num
            if x1 > x2:
                x1, x2 = x2, x1
            question = f"{x1}+{x2}"
            if question in questions:
                dups[question] += 1
                continue
            dups[question] = 1
            questions[question] = str(x1 + x2)
            size += 1
            if size >= self.corpus_max:
                break
        del numbers
        sequence = np.zeros([size, self.input_length], np.int32)
        target = np.zeros([size, self.output_length], np.int32)
        for i, (question, answer) in enumerate(questions.items()):
            question = question.ljust(self.input_length)
            answer = answer.ljust(self.output_length)
            self.str2seq(question, self.dict_input, sequence[i])
            self.str2seq(answer, self.dict_target, target[i])
        return [sequence, target]

    def str2seq(self, string, dic, buf):
        sseq = list(string.upper())
        length = len(sseq)
        sp = dic[" "]
        for i in range(buf.size):
            if i < length:
                buf[i] = dic[sseq[i]]
            else:
                buf[i] = sp

    def seq2str(self, buf, dic):
        return "".join(dic[int(i)] for i in buf)

    def load_data(self, path=None):
        if path is None:
            path = "numaddition-dataset.npz"
        if Path(path).exists():
            with np.load(path, allow_pickle=False) as saved:
                dataset = [saved["questions"], saved["answers"]]
        else:
            dataset = self.generate()
            np.savez(path, questions=dataset[0], answers=dataset[1])
        return dataset


nn = tapegrad.NeuralNetworks()

input_length = DIGITS * 2 + 1
output_length = DIGITS + 1

dataset = NumAdditionDataset(TRAINING_SIZE, DIGITS)
print("Generating data...")
questions, answers = dataset.load_data()
corpus_size = len(questions)
print(f"Total questions: {corpus_size}")
input_voc, target_voc, input_dic, target_dic = dataset.dicts()


# Explicitly set apart 10% for validation data that we never train over.
split_at = corpus_size - corpus_size // 10
x_train = questions[0:split_at]
x_val = questions[split_at:corpus_size]
y_train = answers[0:split_at]
y_val = answers[split_at:corpus_size]

print(f"train,test: {x_train.shape[0]},{x_val.shape[0]}")

print("device type: " + nn.device_type())
model_file_path = Path("learn-add-numbers-with-rnn.model")

if model_file_path.exists():
    print("loading model ...")
    model = nn.models().load_model(model_file_path)
    model.summary()
else:
    print("Build model...")

    model = nn.models().Sequential([
        nn.layers().Embedding(len(input_dic), WORD_VECTOR,
                              input_length=input_length,
                              ),
        # Encoder
        nn.layers().GRU(UNITS, go_backwards=REVERSE),
        # Expand to answer length and peeking hidden states
        nn.layers().RepeatVector(output_length),
        # Decoder
        nn.layers().GRU(UNITS,
                        return_sequences=True,
                        go_backwards=REVERSE,
                        # reset_after=False,
                        ),
        # Output
        nn.layers().Dense(
            len(target_dic),
            activation="softmax",
        ),
    ])

    print("Compile model...")

    model.compile(
        loss="sparse_categorical_crossentropy",
        optimizer="adam",
    )
    model.summary()

    # Train the model
    print("Train model...")

    history = model.fit(
        x_train,
        y_train,
        epochs=EPOCHS,
        batch_size=BATCH_SIZE,
        validation_data=[x_val, y_val],
        verbose=2 if small else 1,
    )

    model.save(model_file_path)

    if plot:
        try:
            import matplotlib
            import matplotlib.pyplot as plt
        except ImportError:
            print("(matplotlib is not installed: no plots)")
        else:
            for name in ("accuracy", "val_accuracy", "loss", "val_loss"):
                plt.plot(np.array(history[name]), label=name)
            plt.legend()
            plt.title("seq2seq-simple-numaddition")
            plt.savefig("learn-add-numbers-with-rnn.png")
            if matplotlib.get_backend().lower() != "agg":
                plt.show()

for _ in range(10):
    idx = int(rng.integers(corpus_size))
    question = questions[idx]
    input = question.reshape([1, input_length])

    predict = model.predict(input)
    predict_seq = np.argmax(predict[0].reshape([output_length, len(target_dic)]), axis=1)
    predict_str = dataset.seq2str(predict_seq, target_voc)
    question_str = dataset.seq2str(question, input_voc)
    answer_str = dataset.seq2str(answers[idx], target_voc)
    correct = "*" if predict_str == answer_str else " "
    print(f"{question_str}={predict_str} : {correct} {answer_str}")

# (not in the PHP) the accuracy on the questions never trained on
predicted = model.predict(x_val).argmax(axis=-1)
print(f"val_accuracy={(predicted == y_val).mean():.4f} exact={(predicted == y_val).all(axis=1).mean():.4f}")
