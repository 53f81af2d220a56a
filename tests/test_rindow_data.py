"""API §9, data: SequentialDataset(inputs_filter=, shuffle=, total_size=), Tokenizer, Preprocessor,
the class-folder datasets (ClassifiedDirectoryDataset, TextClassifiedDataset, ImageClassifiedDataset),
ImageFilter / ImageDataGenerator, and the datasets' load_data() objects."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from rindow_fixtures import write_cifar10, write_mnist

import tapegrad as tg
from tapegrad.nn.data import (
    ClassifiedDirectoryDataset,
    DatasetFilter,
    ImageClassifiedDataset,
    ImageDataGenerator,
    ImageFilter,
    ImageFormatError,
    NDArrayDataset,
    Preprocessor,
    SequentialDataset,
    TextClassifiedDataset,
    Tokenizer,
    pad_sequences,
)
from tapegrad.nn.data.image_files import read_image, resize

nn = tg.NeuralNetworks()


# -- SequentialDataset, Rindow's way --------------------------------------------------------------------
class Normalise(DatasetFilter):
    def __init__(self):
        self.calls = 0

    def translate(self, inputs, tests=None, options=None):
        self.calls += 1
        return inputs.reshape(len(inputs), -1).astype(np.float32) / 255.0, tests.astype(np.int32)


def chunks():
    rng = np.random.default_rng(0)
    return [(rng.integers(0, 256, (n, 2, 2), dtype=np.uint8), np.arange(n, dtype=np.uint8) + 10 * k)
            for k, n in enumerate((5, 4, 6))]


def test_sequential_dataset_inputs_filter_total_size_and_shuffle_per_chunk():
    data = chunks()
    f = Normalise()
    ds = nn.data.SequentialDataset(data, batch_size=4, inputs_filter=f, total_size=12)
    batches = list(ds)
    assert f.calls == 3 and len(ds) == 3 and ds.dataset_size() == 12
    x = np.concatenate([b[0] for b in batches])
    t = np.concatenate([b[1] for b in batches])
    assert x.shape == (12, 4) and x.dtype == np.float32 and t.dtype == np.int32
    want_x = np.concatenate([c[0] for c in data]).reshape(-1, 4)[:12] / 255.0
    np.testing.assert_allclose(x, want_x, rtol=1e-6)
    np.testing.assert_array_equal(t, np.concatenate([c[1] for c in data])[:12])
    shuffled = list(SequentialDataset(data, batch_size=4, inputs_filter=Normalise(), shuffle=True, seed=3))
    ts = np.concatenate([b[1] for b in shuffled])
    assert sorted(ts[:5].tolist()) == list(range(5))  # samples move within their chunk only
    assert sorted(ts[5:9].tolist()) == list(range(10, 14)) and ts.tolist() != sorted(ts.tolist())
    with pytest.raises(ValueError, match="shuffle=True shuffles the samples of each chunk"):
        SequentialDataset(data, shuffle=True, chunked=False)


def test_cifar10_load_data_feeds_a_sequential_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("TAPEGRAD_DATASETS", str(tmp_path))
    write_cifar10(tmp_path / "cifar10", per_file=3)
    train, test = nn.datasets().cifar10().load_data()
    assert len(train) == 5 and len(test) == 1 and train.dataset_size() == 15
    images, labels = next(iter(train))
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8 and labels.shape == (3,)
    ds = nn.data.SequentialDataset(train, batch_size=4, inputs_filter=Normalise(), total_size=10)
    assert sum(len(x) for x, _ in ds) == 10
    (x_train, y_train), (x_test, y_test) = tg.datasets.cifar10()  # and the Keras tuple
    np.testing.assert_array_equal(x_train[:3], images)
    assert x_train.shape == (15, 32, 32, 3) and y_test.shape == (3,)


def test_mnist_object_has_load_data(tmp_path, monkeypatch):
    monkeypatch.setenv("TAPEGRAD_DATASETS", str(tmp_path))
    written = write_mnist(tmp_path / "mnist", n_train=7, n_test=3)
    loaded = nn.datasets().mnist()
    (x, y), (xt, yt) = loaded.load_data()
    np.testing.assert_array_equal(x, written["train_images"])
    np.testing.assert_array_equal(yt, written["test_labels"])
    (x2, _), _ = loaded
    assert x2 is x and tg.datasets.mnist.load_data()[0][0].shape == (7, 28, 28)
    (xd, _), _ = nn.datasets().digits().load_data()  # scikit-learn's digits, offline
    assert xd.shape[1:] == (8, 8)


# -- Tokenizer and Preprocessor ---------------------------------------------------------------------
TEXTS = ["The cat sat on the mat.", "The dog ate the cat's food!", "A dog, a cat"]


def test_tokenizer_numbers_words_by_frequency_like_keras():
    tok = Tokenizer()
    tok.fit_on_texts(TEXTS)
    assert tok.document_count == 3
    assert list(tok.word_index)[:4] == ["the", "cat", "dog", "a"]  # 4, 3, 2, 2 uses; ties: first seen
    assert tok.word_index["the"] == 1 and tok.index_word[2] == "cat" and tok.get_words() is tok.index_word
    assert tok.word_counts["the"] == 4 and tok.word_counts["s"] == 1  # "'" is a filter: cat's -> cat, s
    seqs = tok.texts_to_sequences(["the cat ate a fish"])
    assert seqs == [[1, 2, tok.word_index["ate"], 4]]  # unknown words are dropped
    assert tok.sequences_to_texts(seqs) == ["the cat ate a"]
    small = Tokenizer(num_words=3, oov_token="<unk>")
    small.fit_on_texts(TEXTS)
    assert small.word_index["<unk>"] == 1 and small.word_index["the"] == 2
    assert small.texts_to_sequences(["the cat dog fish"]) == [[2, 1, 1, 1]]  # index >= 3: out of vocabulary
    assert small.vocabulary_size() == 3 and tok.vocabulary_size() == len(tok.index_word) + 1
    assert small.sequences_to_texts([[2, 5]]) == ["the <unk>"]
    assert tok.word_to_index("dog") == 3 and tok.index_to_word(3) == "dog"
    with pytest.raises(ValueError, match="no word 'zebra'"):
        tok.word_to_index("zebra")


def test_tokenizer_options_and_save_load():
    specials = Tokenizer(specials="?", filters="")
    specials.fit_on_texts(["why? not"])
    assert set(specials.word_index) == {"why", "?", "not"}
    chars = Tokenizer(char_level=True, filters="")
    chars.fit_on_texts(["abca"])
    assert chars.word_index == {"a": 1, "b": 2, "c": 3}
    words = Tokenizer(analyzer=lambda t: t.split("-"), lower=False)
    words.fit_on_texts(["X-y-X"])
    assert words.word_index == {"X": 1, "y": 2}
    tok = Tokenizer()
    tok.fit_on_texts(TEXTS)
    again = Tokenizer()
    again.load(tok.save())
    assert again.word_index == tok.word_index and again.texts_to_sequences(TEXTS) == tok.texts_to_sequences(TEXTS)
    with pytest.raises(ValueError, match="not a saved tokenizer state"):
        again.load("{}")
    with pytest.raises(TypeError, match="one string"):
        tok.fit_on_texts("the cat")
    with pytest.raises(TypeError, match="holds 'x', not an int index"):
        tok.sequences_to_texts([["x"]])
    with pytest.raises(ValueError, match="num_words must be None or an int >= 1"):
        Tokenizer(num_words=0)


def test_pad_sequences_pre_post_truncating_value():
    seqs = [[1, 2, 3], [4], [5, 6, 7, 8, 9]]
    np.testing.assert_array_equal(pad_sequences(seqs), [[0, 0, 1, 2, 3], [0, 0, 0, 0, 4], [5, 6, 7, 8, 9]])
    np.testing.assert_array_equal(Preprocessor().pad_sequences(seqs, maxlen=3, padding="post", truncating="post",
                                                              value=-1), [[1, 2, 3], [4, -1, -1], [5, 6, 7]])
    np.testing.assert_array_equal(pad_sequences(seqs, maxlen=2), [[2, 3], [0, 4], [8, 9]])
    assert pad_sequences(seqs).dtype == np.int32 and pad_sequences(seqs, dtype="float32").dtype == np.float32
    assert pad_sequences([[1], [2, 3]], maxlen=4).tolist() == [[0, 0, 0, 1], [0, 0, 2, 3]]  # always maxlen wide
    assert pad_sequences([]).shape == (0, 0)
    with pytest.raises(ValueError, match="padding must be 'pre' or 'post', got 'mid'"):
        pad_sequences(seqs, padding="mid")
    with pytest.raises(TypeError, match="sequence 0 is str"):
        pad_sequences(["abc"])


# -- class folders ---------------------------------------------------------------------------------------
def write_tree(root, files):
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def test_classified_directory_dataset(tmp_path):
    write_tree(tmp_path, {"pos/1_9.txt": "good", "pos/2_8.txt": "great", "neg/3_1.txt": "bad",
                          "neg/sub/4_2.txt": "awful", "unsup/5_0.txt": "meh", "README": "top-level files have no class",
                          "pos/notes.md": "x"})
    ds = ClassifiedDirectoryDataset(tmp_path, pattern="@[0-9_]*\\.txt@", batch_size=2)
    assert [(p.name, c) for p, c in ds.files()] == [("3_1.txt", "neg"), ("4_2.txt", "neg"), ("1_9.txt", "pos"),
                                                   ("2_8.txt", "pos"), ("5_0.txt", "unsup")]
    batches = list(ds)
    assert len(ds) == 3 and ds.dataset_size() == 5
    assert batches[0] == ([b"bad", b"awful"], ["neg", "neg"])
    only = ClassifiedDirectoryDataset(tmp_path, pattern=r"\.txt$", batch_size=0, restricted_by_class=["pos"])
    assert list(only) == [(b"good", "pos"), (b"great", "pos")]
    limited = ClassifiedDirectoryDataset(tmp_path, pattern=r"\.txt$", batch_size=4, shuffle=True, seed=1, limit=3,
                                         unclassified=True)
    (contents,) = list(limited)
    assert len(contents) == 3 and set(contents) <= {b"good", b"great", b"bad", b"awful", b"meh"}
    with pytest.raises(ValueError, match="does not exist"):
        ClassifiedDirectoryDataset(tmp_path / "nope").files()
    with pytest.raises(ValueError, match="not a valid regular expression"):
        ClassifiedDirectoryDataset(tmp_path, pattern="[")


def test_text_classified_dataset_load_data_and_tokenizer_reuse(tmp_path):
    write_tree(tmp_path / "train", {"neg/0_1.txt": "a bad bad film", "neg/1_2.txt": "bad plot", "pos/2_9.txt":
                                    "a good film", "pos/3_8.txt": "good good acting <br /> fine"})
    write_tree(tmp_path / "test", {"neg/0_3.txt": "bad acting", "pos/1_7.txt": "good unknownword"})
    train = nn.data.TextClassifiedDataset(tmp_path / "train", pattern="@[0-9_]*\\.txt@", maxlen=4, num_words=100,
                                          classnames=["neg", "pos"], restricted_by_class=["neg", "pos"])
    x, y = train.load_data()
    tok = train.get_tokenizer()
    assert tok.word_index["bad"] == 1 and tok.word_index["good"] == 2  # 3 uses each, "bad" seen first
    assert x.shape == (4, 4) and x.dtype == np.int32 and y.dtype == np.int32
    texts = {p.read_text(): c for p, c in train.files()}
    for row, label, (path, cls) in zip(x, y, train.files()):
        want = tok.texts_to_sequences([path.read_text()])[0][:4]
        assert row.tolist() == want + [0] * (4 - len(want))  # padded and cut at the end ("post")
        assert label == ["neg", "pos"].index(cls)
    assert len(texts) == 4 and train.classnames() == ["neg", "pos"]
    shuffled = TextClassifiedDataset(tmp_path / "train", shuffle=True, seed=0, classnames=["neg", "pos"])
    assert sorted(shuffled.files()) == sorted(train.files()) and shuffled.files() != train.files()
    test = TextClassifiedDataset(tmp_path / "test", pattern=r"\.txt$", tokenizer=tok, maxlen=4,
                                 classnames=train.classnames())
    xt, yt = test.load_data()
    assert tok.document_count == 4  # the reused tokenizer is not refitted
    assert xt.tolist() == [[1, tok.word_index["acting"], 0, 0], [2, 0, 0, 0]] and yt.tolist() == [0, 1]
    batches = list(TextClassifiedDataset(tmp_path / "test", batch_size=1, tokenizer=tok, classnames=["pos", "neg"]))
    assert [b[1].tolist() for b in batches] == [[1], [0]]


# -- images ---------------------------------------------------------------------------------------------
def images_batch(n=3, h=5, w=6, c=2):
    return np.arange(n * h * w * c, dtype=np.int32).reshape(n, h, w, c)


def rindow_imagecopy(image, dy, dx, flip_y, flip_x):
    """rindow-math-matrix's imagecopy, element by element."""
    h, w, _ = image.shape
    out = np.empty_like(image)
    for y in range(h):
        for x in range(w):
            sy = (h - 1 - y + dy) if flip_y else y - dy
            sx = (w - 1 - x + dx) if flip_x else x - dx
            out[y, x] = image[min(max(sy, 0), h - 1), min(max(sx, 0), w - 1)]
    return out


def test_image_filter_shifts_and_flips_as_rindows_imagecopy():
    x = images_batch()
    f = ImageFilter(height_shift=2, width_shift=0.5, vertical_flip=True, horizontal_flip=True, seed=7)
    out, t = f.translate(x, "labels")
    assert t == "labels" and out.shape == x.shape and out.dtype == x.dtype
    rng = np.random.default_rng(7)  # the filter's draws, in its order
    dy, dx = rng.integers(-2, 3, 3), rng.integers(-3, 4, 3)
    fy, fx = rng.integers(0, 2, 3).astype(bool), rng.integers(0, 2, 3).astype(bool)
    for i in range(3):
        np.testing.assert_array_equal(out[i], rindow_imagecopy(x[i], dy[i], dx[i], fy[i], fx[i]))
    first = ImageFilter(data_format="channels_first", height_shift=1, seed=2).translate(x.transpose(0, 3, 1, 2))[0]
    last = ImageFilter(height_shift=1, seed=2).translate(x)[0]
    np.testing.assert_array_equal(first, last.transpose(0, 3, 1, 2))
    with pytest.raises(ValueError, match="height_shift must be a number >= 0"):
        ImageFilter(height_shift=-1)
    with pytest.raises(ValueError, match=r"a batch of images \(n, height, width, channels\), got shape \(5, 6\)"):
        f.translate(np.zeros((5, 6)))


def test_image_filter_rotations():
    x = np.zeros((1, 7, 7, 1), np.float32)
    x[0, 3, :, 0] = 1.0  # a horizontal bar
    out, _ = ImageFilter(rotation_range=90, seed=0).translate(np.repeat(x, 50, axis=0))
    angles = np.random.default_rng(0).uniform(-90, 90, 50)
    near_vertical = np.abs(np.abs(angles) - 90) < 5
    assert near_vertical.any()
    for img in out[near_vertical]:
        assert img[:, 3, 0].sum() == 7  # the bar is turned upright
    for img in out:
        assert img[3, 3, 0] == 1.0  # the centre stays
        assert img.sum() >= 7
    np.testing.assert_array_equal(ImageFilter(rotation_range=0).translate(x)[0], x)


def test_image_data_generator_on_arrays_and_on_a_dataset():
    x = images_batch(8)
    y = np.arange(8)
    ds = nn.data.ImageDataGenerator(x, tests=y, batch_size=3, shuffle=True, height_shift=1, horizontal_flip=True,
                                    seed=4)
    assert isinstance(ds, NDArrayDataset) and isinstance(ds.filter, ImageFilter) and len(ds) == 3
    seen = np.concatenate([t for _, t in ds])
    assert sorted(seen.tolist()) == list(range(8))
    base = NDArrayDataset(x, tests=y, batch_size=8, shuffle=False)
    same = ImageDataGenerator(base, width_shift=1, seed=1)
    assert same is base and isinstance(base.filter, ImageFilter)
    xb, _ = next(iter(base))
    dx = np.random.default_rng(1).integers(-1, 2, 8)
    for i in range(8):
        np.testing.assert_array_equal(xb[i], rindow_imagecopy(x[i], 0, dx[i], False, False))


def save_image(path, array, fmt, **options):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).save(path, fmt, **options)


def test_image_files_png_bmp_ppm_and_others_through_pillow(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    smooth = (np.add.outer(np.arange(9), np.arange(11))[..., None] * np.array([10, 5, 2])).astype(np.uint8)
    noisy = rng.integers(0, 256, (9, 11, 4), dtype=np.uint8)
    gray = rng.integers(0, 256, (9, 11, 1), dtype=np.uint8)
    for name, array, fmt, opts in [("a.png", smooth, "PNG", {"optimize": True}), ("b.png", noisy, "PNG", {}),
                                   ("c.png", gray, "PNG", {}), ("d.bmp", smooth, "BMP", {}),
                                   ("e.ppm", smooth, "PPM", {}), ("f.pgm", gray, "PPM", {})]:
        save_image(tmp_path / name, array, fmt, **opts)
        np.testing.assert_array_equal(read_image(tmp_path / name), array, err_msg=name)
    from PIL import Image

    Image.fromarray(smooth).convert("P").save(tmp_path / "g.png")  # palette
    np.testing.assert_array_equal(read_image(tmp_path / "g.png"), np.asarray(Image.open(tmp_path / "g.png")
                                                                              .convert("RGB")))
    save_image(tmp_path / "h.gif", smooth, "GIF")
    assert read_image(tmp_path / "h.gif").shape == (9, 11, 3)
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImageFormatError, match=r"h.gif: not a PNG, BMP or PGM/PPM file; .* need Pillow"):
        read_image(tmp_path / "h.gif")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 5)
    with pytest.raises(ImageFormatError, match="broken.png: cannot read the image"):
        read_image(tmp_path / "broken.png")


def png_bytes(image, filter_type):
    """A PNG of an RGB image whose rows all use one filter type (the encoder side of the PNG spec)."""
    import struct
    import zlib

    h, w, c = image.shape
    rows, prior = [], np.zeros(w * c, np.int32)
    for y in range(h):
        line = image[y].astype(np.int32).reshape(-1)
        left = np.concatenate([np.zeros(c, np.int32), line[:-c]])
        up_left = np.concatenate([np.zeros(c, np.int32), prior[:-c]])
        p = left + prior - up_left
        pa, pb, pc = abs(p - left), abs(p - prior), abs(p - up_left)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prior, up_left))
        pred = [0, left, prior, (left + prior) // 2, paeth][filter_type]
        rows.append(bytes([filter_type]) + ((line - pred) & 0xFF).astype(np.uint8).tobytes())
        prior = line

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))


@pytest.mark.parametrize("filter_type", [0, 1, 2, 3, 4])
def test_png_rows_of_every_filter_type(filter_type, tmp_path):
    image = np.random.default_rng(filter_type).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    (tmp_path / "x.png").write_bytes(png_bytes(image, filter_type))
    np.testing.assert_array_equal(read_image(tmp_path / "x.png"), image)


def test_resize_averages_when_shrinking_and_interpolates_when_growing():
    image = np.arange(16, dtype=np.uint8).reshape(4, 4, 1) * 10
    np.testing.assert_array_equal(resize(image, 2, 2)[..., 0], [[25, 45], [105, 125]])  # 2x2 block means
    grown = resize(np.array([[[0], [100]]], np.uint8), 1, 4)[0, :, 0]
    assert grown.tolist() == [0, 25, 75, 100]


def test_image_classified_dataset(tmp_path):
    red = np.zeros((8, 16, 3), np.uint8)
    red[..., 0] = 200
    blue = np.zeros((16, 16, 3), np.uint8)
    blue[..., 2] = 100
    save_image(tmp_path / "cats" / "1.png", red, "PNG")
    save_image(tmp_path / "dogs" / "2.bmp", blue, "BMP")
    save_image(tmp_path / "dogs" / "3.png", blue, "PNG")
    ds = nn.data.ImageClassifiedDataset(tmp_path, height=8, width=8, classnames=["dogs"], batch_size=2)
    x, y = ds.load_data()
    assert x.shape == (3, 8, 8, 3) and x.dtype == np.uint8 and y.dtype == np.int32
    assert y.tolist() == [1, 0, 0] and ds.classnames() == ["dogs", "cats"]
    # the 8x16 red image fits the 8x8 box as 4x8, centred between black bands
    np.testing.assert_array_equal(x[0, 2:6, :, 0], np.full((4, 8), 200))
    assert x[0, :2].sum() == 0 and x[0, 6:].sum() == 0
    np.testing.assert_array_equal(x[1], np.broadcast_to([0, 0, 100], (8, 8, 3)))
    batches = list(ds)
    assert [b[0].shape[0] for b in batches] == [2, 1] and batches[1][1].tolist() == [0]
    cropped = ImageClassifiedDataset(tmp_path, height=4, width=20, fit=False, channels=1,
                                     dtype="float32").load_data()[0]
    assert cropped.shape == (3, 4, 20, 1) and cropped.dtype == np.float32
    assert cropped[0, :, 2:18, 0].min() > 0 and cropped[0, :, :2].sum() == 0  # centre crop, black padding
    with pytest.raises(ValueError, match="channels must be 1, 3 or 4"):
        ImageClassifiedDataset(tmp_path, channels=2)
