"""Text to integer sequences: :class:`Tokenizer`, :class:`Preprocessor` (``pad_sequences``)
and :class:`TextFilter`, as Rindow's (and Keras's) text preprocessing.

A tokenizer lower-cases a text, turns the characters of ``filters`` into separators,
splits it into words and numbers the words by frequency (1 the most frequent; ties in
the order first seen; 0 is left for padding). With ``num_words``, only the words of
index below it are kept (the others become the out-of-vocabulary token, or are dropped).
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from ... import _dtypes
from ...errors import OpTypeError, OpValueError
from .base import DatasetFilter

DEFAULT_FILTERS = "!\"'#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n"


class Tokenizer:
    """Words to indices (Rindow's and Keras's ``Tokenizer``).

    Attributes (Keras): ``word_counts`` (word -> count, most frequent first after a fit),
    ``word_index`` (word -> index, from 1), ``index_word`` (index -> word),
    ``document_count``, ``num_words`` (the constructor argument). Rindow's methods
    ``get_words()`` (index -> word), ``word_to_index``, ``index_to_word``, ``save`` and
    ``load`` are there too.
    """

    def __init__(
        self,
        analyzer: Callable[[str], Iterable[str]] | None = None,
        num_words: int | None = None,
        filters: str | None = DEFAULT_FILTERS,
        specials: str | None = None,
        lower: bool = True,
        split: str = " ",
        char_level: bool = False,
        oov_token: str | None = None,
        document_count: int = 0,
    ) -> None:
        if num_words is not None and (isinstance(num_words, bool) or not isinstance(num_words, (int, np.integer))
                                      or num_words < 1):
            raise OpValueError(f"Tokenizer: num_words must be None or an int >= 1, got {num_words!r}")
        if analyzer is not None and not callable(analyzer):
            raise OpTypeError(f"Tokenizer: analyzer must be a function of a text, got {type(analyzer).__name__}")
        if not isinstance(split, str) or not split:
            raise OpValueError(f"Tokenizer: split must be a non-empty string, got {split!r}")
        self.analyzer = analyzer
        self.num_words = None if num_words is None else int(num_words)
        self.filters = filters or ""
        self.specials = specials or ""
        self.lower = bool(lower)
        self.split = split
        self.char_level = bool(char_level)
        self.oov_token = oov_token
        self.document_count = int(document_count)
        self.word_counts: dict[str, int] = {}
        self.word_index: dict[str, int] = {}
        self.index_word: dict[int, str] = {}

    # -- words of a text -------------------------------------------------------------------
    def text_to_word_sequence(self, text: str) -> list[str]:
        """The tokens of one text (the analyzer's, if one was given)."""
        if self.analyzer is not None:
            return [str(w) for w in self.analyzer(text)]
        if not isinstance(text, str):
            raise OpTypeError(f"Tokenizer: texts must be strings, got {type(text).__name__}")
        if self.lower:
            text = text.lower()
        if self.char_level:
            return list(text)
        table = {ord(c): self.split for c in self.filters}
        table.update({ord(c): f"{self.split}{c}{self.split}" for c in self.specials})
        return [w for w in text.translate(table).split(self.split) if w]

    def fit_on_texts(self, texts: Iterable[str]) -> None:
        """Count the words of ``texts`` and renumber the vocabulary by frequency."""
        if isinstance(texts, str):
            raise OpTypeError("Tokenizer.fit_on_texts: texts must be a list of strings, got one string")
        for text in texts:
            self.document_count += 1
            for w in self.text_to_word_sequence(text):
                self.word_counts[w] = self.word_counts.get(w, 0) + 1
        ordered = sorted(self.word_counts.items(), key=lambda item: item[1], reverse=True)  # stable
        self.word_counts = dict(ordered)
        vocabulary = [w for w, _ in ordered if w != self.oov_token]
        if self.oov_token is not None:
            vocabulary.insert(0, self.oov_token)
        self.word_index = {w: i for i, w in enumerate(vocabulary, start=1)}
        self.index_word = {i: w for w, i in self.word_index.items()}

    # -- texts <-> sequences ------------------------------------------------------------------
    def texts_to_sequences_generator(self, texts: Iterable[str]) -> Iterator[list[int]]:
        if isinstance(texts, str):
            raise OpTypeError("Tokenizer.texts_to_sequences: texts must be a list of strings, got one string")
        oov = self.word_index.get(self.oov_token) if self.oov_token is not None else None
        limit = self.num_words
        for text in texts:
            seq = []
            for w in self.text_to_word_sequence(text):
                i = self.word_index.get(w)
                if i is not None and (limit is None or i < limit):
                    seq.append(i)
                elif oov is not None:
                    seq.append(oov)
            yield seq

    def texts_to_sequences(self, texts: Iterable[str]) -> list[list[int]]:
        """Each text as the list of its words' indices."""
        return list(self.texts_to_sequences_generator(texts))

    def sequences_to_texts_generator(self, sequences: Iterable[Iterable[int]]) -> Iterator[str]:
        oov = self.word_index.get(self.oov_token) if self.oov_token is not None else None
        limit = self.num_words
        for k, seq in enumerate(sequences):
            if isinstance(seq, (str, bytes)) or not hasattr(seq, "__iter__"):
                raise OpTypeError(f"Tokenizer.sequences_to_texts: sequence {k} is {type(seq).__name__}, "
                                  "not a list of indices")
            words = []
            for i in seq:
                if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
                    raise OpTypeError(f"Tokenizer.sequences_to_texts: sequence {k} holds {i!r}, not an int index")
                w = self.index_word.get(int(i))
                if w is not None and (limit is None or i < limit):
                    words.append(w)
                elif oov is not None:
                    words.append(self.oov_token)
            yield self.split.join(words)

    def sequences_to_texts(self, sequences: Iterable[Iterable[int]]) -> list[str]:
        """Each sequence of indices as a text (the words joined by ``split``)."""
        return list(self.sequences_to_texts_generator(sequences))

    # -- Rindow's accessors ----------------------------------------------------------------------
    def get_words(self) -> dict[int, str]:
        """index -> word (Rindow's ``getWords``)."""
        return self.index_word

    def word_to_index(self, word: str) -> int:
        try:
            return self.word_index[word]
        except KeyError:
            raise OpValueError(f"Tokenizer: no word {word!r} in the vocabulary") from None

    def index_to_word(self, index: int) -> str:
        try:
            return self.index_word[int(index)]
        except KeyError:
            raise OpValueError(f"Tokenizer: no word of index {index!r} (indices 1-{len(self.index_word)})") from None

    def vocabulary_size(self) -> int:
        """The input size an Embedding needs: the largest index produced, plus one."""
        n = len(self.index_word) + 1
        return n if self.num_words is None else min(n, self.num_words)

    def save(self) -> str:
        """The fitted state as a JSON string (for :meth:`load`)."""
        return json.dumps({"document_count": self.document_count, "word_counts": self.word_counts,
                           "word_index": self.word_index})

    def load(self, state: str) -> None:
        """Restore the state written by :meth:`save`."""
        try:
            data = json.loads(state)
            self.document_count = int(data["document_count"])
            self.word_counts = {str(k): int(v) for k, v in data["word_counts"].items()}
            self.word_index = {str(k): int(v) for k, v in data["word_index"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise OpValueError(f"Tokenizer.load: not a saved tokenizer state ({exc})") from None
        self.index_word = {i: w for w, i in self.word_index.items()}


def pad_sequences(
    sequences: Iterable[Sequence[Any]],
    maxlen: int | None = None,
    dtype: Any = "int32",
    padding: str = "pre",
    truncating: str = "pre",
    value: Any = 0,
) -> np.ndarray:
    """The sequences as one ``(len(sequences), maxlen)`` array (default ``maxlen``: the
    longest), padded with ``value`` and cut: ``"pre"`` pads or cuts at the start, ``"post"``
    at the end. As Keras's: the width is always ``maxlen`` (Rindow's ``padSequences`` stops
    at the longest sequence when it is shorter, so a test set could get another width than
    its training set)."""
    for arg, mode in (("padding", padding), ("truncating", truncating)):
        if mode not in ("pre", "post"):
            raise OpValueError(f"pad_sequences: {arg} must be 'pre' or 'post', got {mode!r}")
    if maxlen is not None and (isinstance(maxlen, bool) or not isinstance(maxlen, (int, np.integer)) or maxlen < 0):
        raise OpValueError(f"pad_sequences: maxlen must be None or an int >= 0, got {maxlen!r}")
    seqs = []
    for k, seq in enumerate(sequences):
        if isinstance(seq, (str, bytes)) or not hasattr(seq, "__len__"):
            raise OpTypeError(f"pad_sequences: sequence {k} is {type(seq).__name__}, not a list of numbers")
        seqs.append(seq)
    longest = max((len(s) for s in seqs), default=0)
    width = longest if maxlen is None else int(maxlen)
    dt = _dtypes.as_dtype(dtype, "pad_sequences")
    out = np.full((len(seqs), width), value, dtype=dt)
    for i, seq in enumerate(seqs):
        if not len(seq) or not width:
            continue
        cut = seq[-width:] if truncating == "pre" else seq[:width]
        row = np.asarray(cut, dtype=dt)
        if padding == "pre":
            out[i, width - len(row):] = row
        else:
            out[i, :len(row)] = row
    return out


class Preprocessor:
    """Rindow's ``Preprocessor``: ``pad_sequences(sequences, maxlen=None, dtype="int32",
    padding="pre", truncating="pre", value=0)``."""

    def pad_sequences(self, sequences: Iterable[Sequence[Any]], maxlen: int | None = None, dtype: Any = "int32",
                      padding: str = "pre", truncating: str = "pre", value: Any = 0) -> np.ndarray:
        return pad_sequences(sequences, maxlen=maxlen, dtype=dtype, padding=padding, truncating=truncating,
                             value=value)


class TextFilter(DatasetFilter):
    """Texts and class names to ``(padded sequences, class ids)`` (Rindow's TextFilter,
    the filter of :class:`~tapegrad.nn.data.TextClassifiedDataset`). Class names not in
    ``classnames`` get the next free id when first seen. Sequences are padded and cut at
    the end (``"post"``) by default."""

    def __init__(
        self,
        tokenizer: Tokenizer | None = None,
        classnames: Sequence[str] | None = None,
        analyzer: Callable[[str], Iterable[str]] | None = None,
        num_words: int | None = None,
        tokenizer_filters: str | None = DEFAULT_FILTERS + "\r",
        specials: str | None = None,
        lower: bool = True,
        split: str = " ",
        char_level: bool = False,
        oov_token: str | None = None,
        document_count: int = 0,
        preprocessor: Preprocessor | None = None,
        maxlen: int | None = None,
        dtype: Any = "int32",
        padding: str = "post",
        truncating: str = "post",
        value: Any = 0,
    ) -> None:
        self.tokenizer = tokenizer if tokenizer is not None else Tokenizer(
            analyzer=analyzer, num_words=num_words, filters=tokenizer_filters, specials=specials, lower=lower,
            split=split, char_level=char_level, oov_token=oov_token, document_count=document_count)
        self.preprocessor = preprocessor if preprocessor is not None else Preprocessor()
        self.labels: dict[str, int] = {str(name): i for i, name in enumerate(classnames or [])}
        self.maxlen, self.dtype, self.padding, self.truncating, self.value = maxlen, dtype, padding, truncating, value

    def get_tokenizer(self) -> Tokenizer:
        return self.tokenizer

    def get_preprocessor(self) -> Preprocessor:
        return self.preprocessor

    def classnames(self) -> list[str]:
        """The class names in the order of their ids."""
        return [name for name, _ in sorted(self.labels.items(), key=lambda item: item[1])]

    def class_id(self, name: str) -> int:
        label = self.labels.get(name)
        if label is None:
            label = self.labels[name] = len(self.labels)
        return label

    def translate(self, inputs: Any, tests: Any = None, options: Any = None) -> tuple[np.ndarray, np.ndarray]:
        if tests is None:
            raise OpValueError("TextFilter: the class names (tests) of the texts are required")
        sequences = self.tokenizer.texts_to_sequences(inputs)
        padded = self.preprocessor.pad_sequences(sequences, maxlen=self.maxlen, dtype=self.dtype,
                                                 padding=self.padding, truncating=self.truncating, value=self.value)
        ids = np.array([self.class_id(str(t)) for t in tests], dtype=_dtypes.as_dtype(self.dtype, "TextFilter"))
        return padded, ids
