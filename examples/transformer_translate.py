"""A small encoder-decoder Transformer that learns to translate a made-up language:
the shape of Rindow's neural-machine-translation-with-transformer sample, on a corpus the
script generates (no download).

The source language has a dozen words; a sentence's translation replaces every word by
its counterpart and reverses the word order, so the decoder must look at the right source
word (attention) and produce the words one at a time (causal self-attention). Sentences
are padded with 0: Embedding(mask_zero=True) gives the padding mask, InheritMask keeps it
through the positional encoding, MultiHeadAttention ignores padded keys, and the loss skips
padded target positions. Translation is greedy: the decoder's input starts as <start> and
grows by the most likely next word until <end>.

    python examples/transformer_translate.py                    # seconds: ~97 % exact translations
    python examples/transformer_translate.py --sentences 4000 --epochs 30 --d-model 64
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout: its tapegrad
import tapegrad  # noqa: E402

SOURCE = ["the", "a", "red", "blue", "big", "small", "cat", "dog", "bird", "sees", "likes", "eats"]
TARGET = ["le", "un", "rouge", "bleu", "grand", "petit", "chat", "chien", "oiseau", "voit", "aime", "mange"]
PAD, START, END = 0, 1, 2  # token ids; words start at 3


def make_corpus(count: int, max_words: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` sentences of 2..max_words words: source ids (then <end>) and target ids
    (<start>, the translated words in reverse order, <end>), padded with 0."""
    source = np.zeros((count, max_words + 1), np.int32)
    target = np.zeros((count, max_words + 2), np.int32)
    for i in range(count):
        words = rng.integers(0, len(SOURCE), rng.integers(2, max_words + 1))
        source[i, :len(words) + 1] = [*(words + 3), END]
        target[i, :len(words) + 2] = [START, *(words[::-1] + 3), END]
    return source, target


def sentence(ids: np.ndarray, words: list[str]) -> str:
    out = []
    for i in ids:
        if i == END:
            break
        if i > END:
            out.append(words[i - 3])
    return " ".join(out)


def positional_encoding(length: int, depth: int) -> np.ndarray:
    positions = np.arange(length)[:, None]
    rates = 1 / 10000 ** (np.arange(depth // 2) / (depth // 2))
    angles = positions * rates
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=-1).astype(np.float32)


class PositionalEmbedding(tapegrad.AbstractModel):
    def __init__(self, builder, vocab: int, d_model: int, length: int):
        super().__init__(builder)
        self.embedding = builder.layers.Embedding(vocab, d_model, mask_zero=True)
        self.inherit = builder.layers.InheritMask()
        self.scale = float(np.sqrt(d_model))
        self.encoding = positional_encoding(length, d_model)

    def call(self, ids):
        vectors = self.embedding(ids)
        x = tapegrad.add(tapegrad.scale(self.scale, vectors), self.encoding[:ids.shape[1]])  # (ops drop masks)
        return self.inherit([x, vectors])


class Block(tapegrad.AbstractModel):
    """Self-attention (causal in the decoder), cross-attention (decoder only), feed-forward;
    each followed by a residual Add and LayerNormalization."""

    def __init__(self, builder, d_model: int, heads: int, ff: int, dropout: float, cross: bool):
        super().__init__(builder)
        L = builder.layers
        self.self_attention = L.MultiHeadAttention(heads, d_model // heads, dropout=dropout)
        self.cross_attention = L.MultiHeadAttention(heads, d_model // heads, dropout=dropout) if cross else None
        self.ff1, self.ff2 = L.Dense(ff, activation="relu"), L.Dense(d_model)
        self.norms = [L.LayerNormalization() for _ in range(3 if cross else 2)]
        self.add = L.Add()
        self.dropout = L.Dropout(dropout)

    def call(self, inputs, training=None):
        x, context = inputs if isinstance(inputs, list) else (inputs, None)
        causal = self.cross_attention is not None
        x = self.norms[0](self.add([x, self.self_attention([x, x], training, use_causal_mask=causal)]))
        if self.cross_attention is not None:
            x = self.norms[1](self.add([x, self.cross_attention([x, context], training)]))
        ff = self.dropout(self.ff2(self.ff1(x)), training)
        return self.norms[-1](self.add([x, ff]))


class Transformer(tapegrad.AbstractModel):
    def __init__(self, builder, d_model: int = 32, heads: int = 2, ff: int = 64, layers: int = 1,
                 dropout: float = 0.1, length: int = 16):
        super().__init__(builder)
        self.source_embedding = PositionalEmbedding(builder, len(SOURCE) + 3, d_model, length)
        self.target_embedding = PositionalEmbedding(builder, len(TARGET) + 3, d_model, length)
        self.encoder = [Block(builder, d_model, heads, ff, dropout, cross=False) for _ in range(layers)]
        self.decoder = [Block(builder, d_model, heads, ff, dropout, cross=True) for _ in range(layers)]
        self.final = builder.layers.Dense(len(TARGET) + 3)

    def call(self, inputs, training=None):
        source, target = inputs
        context = self.source_embedding(source)
        for block in self.encoder:
            context = block(context, training)
        x = self.target_embedding(target)
        for block in self.decoder:
            x = block([x, context], training)
        return self.final(x)  # logits (batch, target length, vocabulary), masked where the target is padding


def translate(model: Transformer, source: np.ndarray, length: int) -> np.ndarray:
    """Greedy decoding of a batch: the words after <start>, one per step, ``(batch, length)``.
    The decoder's input keeps the training length (the padding is masked and the causal mask
    hides later positions) and is filled in one position per step."""
    decoder_in = np.zeros((len(source), length), np.int32)
    decoder_in[:, 0] = START
    words = np.zeros((len(source), length), np.int32)
    done = np.zeros(len(source), bool)
    for i in range(length):
        logits = model.predict([source, decoder_in], batch_size=len(source))
        nxt = np.where(done, PAD, logits[:, i].argmax(axis=-1)).astype(np.int32)
        words[:, i] = nxt
        if i + 1 < length:
            decoder_in[:, i + 1] = nxt
        done |= nxt == END
        if done.all():
            break
    return words


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sentences", type=int, default=1000)
    ap.add_argument("--max-words", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--d-model", type=int, default=32)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--verbose", type=int, default=0)
    args = ap.parse_args(argv)

    tapegrad.set_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    source, target = make_corpus(args.sentences, args.max_words, rng)
    decoder_in, labels = target[:, :-1], target[:, 1:]  # the decoder predicts the next word
    split = len(source) - len(source) // 10
    nn = tapegrad.NeuralNetworks()
    model = Transformer(nn, d_model=args.d_model, heads=args.heads, ff=2 * args.d_model, layers=args.layers,
                        length=target.shape[1])
    model.compile(optimizer=nn.optimizers.Adam(learning_rate=0.002),
                  loss=nn.losses.SparseCategoricalCrossentropy(from_logits=True))
    start = time.perf_counter()
    history = model.fit([source[:split], decoder_in[:split]], labels[:split], epochs=args.epochs,
                        batch_size=args.batch_size, verbose=args.verbose)
    print(f"{split} sentence pairs, {args.epochs} epochs in {time.perf_counter() - start:.1f} s; "
          f"loss {history.history['loss'][-1]:.4f}")

    test_source, test_labels = source[split:], labels[split:]
    translated = translate(model, test_source, labels.shape[1])
    words = [(sentence(want, TARGET), sentence(got, TARGET)) for want, got in zip(test_labels, translated)]
    exact = float(np.mean([want == got for want, got in words]))
    matches = (translated == test_labels)[test_labels != PAD]
    for s, (want, got) in list(zip(test_source, words))[:5]:
        print(f"  {sentence(s, SOURCE):32s} -> {got:32s} {'*' if got == want else ' '} {want}")
    print(f"held-out sentences: word accuracy {matches.mean():.3f}, exact translations {exact:.3f}")
    return {"words": float(matches.mean()), "exact": exact}


if __name__ == "__main__":
    main()
