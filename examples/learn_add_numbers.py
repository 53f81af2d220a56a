"""Learn to add numbers with a GRU sequence-to-sequence model: Rindow's
"learn-add-numbers" sample (learn-add-numbers-with-rnn.php), ported.

A question such as "12+345 " is a sequence of characters; the answer "357 " another. The
encoder GRU reads the question (backwards, as Rindow's sample does), RepeatVector gives its
final state to every step of the answer, a second GRU unrolls the answer, and a Dense
softmax picks a character at each step. The script reports the per-character accuracy and
the accuracy on exact answers (every character right) for questions it never trained on.

    python examples/learn_add_numbers.py          # a quick run (seconds): ~50 % of the characters
                                                  # and a few % of the answers right
    python examples/learn_add_numbers.py --size 4000 --epochs 20 --batch-size 32 --units 128
                                                  # ~87 % exact answers (about a minute)
    python examples/learn_add_numbers.py --digits 3 --size 20000 --epochs 10 --batch-size 8 --units 128
                                                  # Rindow's sizes
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout: its tapegrad
import tapegrad  # noqa: E402

VOCAB = list("0123456789+ ")
INDEX = {c: i for i, c in enumerate(VOCAB)}


def make_dataset(size: int, digits: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``size`` distinct questions ``a+b`` (a <= b < 10**digits) and their answers,
    as padded index sequences of lengths ``2*digits+1`` and ``digits+1``."""
    top = 10 ** digits
    pairs = rng.choice(top * top, size=min(size * 3, top * top), replace=False)
    questions: dict[str, str] = {}
    for n in pairs:
        a, b = sorted(divmod(int(n), top))
        questions.setdefault(f"{a}+{b}", str(a + b))
        if len(questions) >= size:
            break
    q_len, a_len = 2 * digits + 1, digits + 1
    x = np.array([[INDEX[c] for c in q.ljust(q_len)] for q in questions], dtype=np.int32)
    y = np.array([[INDEX[c] for c in a.ljust(a_len)] for a in questions.values()], dtype=np.int32)
    return x, y


def text(seq: np.ndarray) -> str:
    return "".join(VOCAB[i] for i in seq)


def build_model(nn: tapegrad.NeuralNetworks, digits: int, units: int, word_vector: int) -> tapegrad.Sequential:
    L = nn.layers
    return tapegrad.Sequential([
        L.Embedding(len(VOCAB), word_vector, input_length=2 * digits + 1),
        L.GRU(units, go_backwards=True),                              # encoder
        L.RepeatVector(digits + 1),                                   # its state at every answer step
        L.GRU(units, return_sequences=True, go_backwards=True),       # decoder
        L.Dense(len(VOCAB), activation="softmax"),
    ])


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--digits", type=int, default=2)
    ap.add_argument("--size", type=int, default=3000, help="number of distinct questions")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--units", type=int, default=32)
    ap.add_argument("--word-vector", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--verbose", type=int, default=0)
    args = ap.parse_args(argv)

    tapegrad.set_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    x, y = make_dataset(args.size, args.digits, rng)
    split = len(x) - len(x) // 10  # the last 10% are never trained on
    x_train, y_train, x_val, y_val = x[:split], y[:split], x[split:], y[split:]
    print(f"questions: {len(x)} ({len(x_train)} to train on), e.g. {text(x[0])!r} = {text(y[0])!r}")

    nn = tapegrad.NeuralNetworks()
    model = build_model(nn, args.digits, args.units, args.word_vector)
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    start = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                        validation_data=(x_val, y_val), verbose=args.verbose)
    seconds = time.perf_counter() - start
    predicted = model.predict(x_val).argmax(axis=-1)
    characters = float((predicted == y_val).mean())
    exact = float((predicted == y_val).all(axis=1).mean())
    print(f"trained {args.epochs} epochs in {seconds:.1f} s; loss {history.history['loss'][-1]:.4f}")
    for q, a, p in list(zip(x_val, y_val, predicted))[:8]:
        mark = "*" if np.array_equal(a, p) else " "
        print(f"  {text(q)}= {text(p)} {mark} {text(a)}")
    print(f"validation: character accuracy {characters:.3f}, exact-answer accuracy {exact:.3f}")
    return {"characters": characters, "exact": exact}


if __name__ == "__main__":
    main()
