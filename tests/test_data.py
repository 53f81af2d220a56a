"""Datasets: NDArrayDataset (Rindow's, with full-permutation shuffling), SequentialDataset and
the streaming CSVDataset."""

import time

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.nn.data import CSVDataset, CSVFormatError, Dataset, DatasetFilter, NDArrayDataset, SequentialDataset

SEED_X = np.array([[1, 3], [1, 4], [2, 4], [3, 1], [4, 1], [4, 2]], dtype=np.float32)
SEED_Y = np.array([0, 0, 0, 1, 1, 1])


def numbered(n, features=2):
    """Rows whose first feature is the row number; labels = row number too (so alignment shows)."""
    x = np.zeros((n, features), dtype=np.float32)
    x[:, 0] = np.arange(n)
    x[:, 1:] = np.arange(n)[:, None] * 10.0
    return x, np.arange(n)


# -- NDArrayDataset -------------------------------------------------------------------------------
def test_seed_example_one_batch_without_shuffle():
    nn = tg.NeuralNetworks()
    ds = nn.data.NDArrayDataset(SEED_X, tests=SEED_Y, batch_size=64, shuffle=False)
    assert isinstance(ds, Dataset) and len(ds) == 1 and ds.dataset_size() == 6 and ds.batch_size == 64
    for _ in range(3):  # every epoch the same
        batches = list(ds)
        assert len(batches) == 1
        inputs, trues = batches[0]
        np.testing.assert_array_equal(inputs, SEED_X)
        np.testing.assert_array_equal(trues, SEED_Y)
        assert np.shares_memory(inputs, SEED_X) and np.shares_memory(trues, SEED_Y)


def test_batches_in_order_are_views_and_last_partial_batch_is_kept():
    x, y = numbered(10)
    ds = NDArrayDataset(x, tests=y, batch_size=4, shuffle=False)
    assert len(ds) == 3
    batches = list(ds)
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    for k, (bx, by) in enumerate(batches):
        np.testing.assert_array_equal(bx, x[4 * k:4 * k + 4])
        np.testing.assert_array_equal(by, y[4 * k:4 * k + 4])
        assert bx.base is x and by.base is y  # slices, no copies
    assert len(NDArrayDataset(x, batch_size=5)) == 2 and len(NDArrayDataset(x, batch_size=1)) == 10


def test_shuffle_is_a_full_permutation_per_epoch_reproducible_for_a_seed():
    x, y = numbered(10)
    ds = NDArrayDataset(x, tests=y, batch_size=4, shuffle=True, seed=7)
    ref = np.random.default_rng(7)
    epochs = []
    for _ in range(3):
        batches = list(ds)
        assert [len(b[1]) for b in batches] == [4, 4, 2]
        order = np.concatenate([b[1] for b in batches])
        np.testing.assert_array_equal(order, ref.permutation(10))  # exactly Generator.permutation
        for bx, by in batches:  # inputs and tests stay aligned
            np.testing.assert_array_equal(bx[:, 0], by)
            np.testing.assert_array_equal(bx[:, 1], by * 10.0)
        epochs.append(order)
    assert not np.array_equal(epochs[0], epochs[1]) or not np.array_equal(epochs[1], epochs[2])
    again = NDArrayDataset(x, tests=y, batch_size=4, seed=7)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in again]), epochs[0])


def test_shuffle_mixes_samples_across_batches():
    # A full permutation, not Rindow's batch-order shuffle: sample 0 must reach every batch.
    x, y = numbered(12)
    ds = NDArrayDataset(x, tests=y, batch_size=4, seed=1)
    where = set()
    for _ in range(40):
        for k, (_, by) in enumerate(ds):
            if 0 in by:
                where.add(k)
    assert where == {0, 1, 2}


def test_shuffle_without_seed_draws_from_the_library_generator():
    x, y = numbered(9)
    ds = NDArrayDataset(x, tests=y, batch_size=4)
    tg.set_seed(123)  # after construction: the generator is looked up at each epoch
    order = np.concatenate([b[1] for b in ds])
    np.testing.assert_array_equal(order, np.random.default_rng(123).permutation(9))
    gen = np.random.default_rng(5)
    ds2 = NDArrayDataset(x, tests=y, batch_size=9, seed=gen)
    np.testing.assert_array_equal(next(iter(ds2))[1], np.random.default_rng(5).permutation(9))


def test_several_inputs_and_tests_give_lists_and_stay_aligned():
    x, y = numbered(7)
    x2 = (np.arange(7) * 100).astype(np.int32)
    y2 = np.arange(7) + 0.5
    ds = NDArrayDataset([x, x2], tests=(y, y2), batch_size=3, seed=0)
    assert len(ds) == 3
    seen = []
    for inputs, trues in ds:
        assert isinstance(inputs, list) and len(inputs) == 2 and isinstance(trues, list) and len(trues) == 2
        np.testing.assert_array_equal(inputs[0][:, 0], trues[0])
        np.testing.assert_array_equal(inputs[1], trues[0] * 100)
        np.testing.assert_array_equal(trues[1], trues[0] + 0.5)
        seen.extend(trues[0].tolist())
    assert sorted(seen) == list(range(7))
    plain = list(NDArrayDataset([x, x2], batch_size=10, shuffle=False))
    assert len(plain) == 1 and plain[0][1] is None and plain[0][0][1] is x2


def test_arrays_of_different_lengths_are_named_in_the_error():
    x, y = numbered(6)
    with pytest.raises(ValueError, match=r"inputs\[0\] has 6, inputs\[1\] has 5, tests has 6"):
        NDArrayDataset([x, x[:5]], tests=y)
    with pytest.raises(ValueError, match=r"NDArrayDataset: .*first dimension.*inputs has 6, tests has 4"):
        NDArrayDataset(x, tests=y[:4])
    with pytest.raises(ValueError, match=r"tests\[1\] has 3"):
        NDArrayDataset(x, tests=[y, y[:3]])
    with pytest.raises(ValueError, match="scalar"):
        NDArrayDataset(np.float32(3.0))


def test_bad_arguments():
    x, y = numbered(4)
    for bs in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size must be a positive int"):
            NDArrayDataset(x, batch_size=bs)
    with pytest.raises(TypeError, match="seed"):
        NDArrayDataset(x, seed="abc")
    with pytest.raises(TypeError, match="filter must be a DatasetFilter"):
        NDArrayDataset(x, filter=42)
    with pytest.raises(ValueError, match="inputs is empty"):
        NDArrayDataset([])


def test_lists_and_variables_are_accepted():
    ds = NDArrayDataset([[1.0, 3.0], [1.0, 4.0]], tests=[0, 1], shuffle=False)
    (bx, by), = list(ds)
    assert bx.dtype == np.float32 and by.dtype.kind == "i"
    np.testing.assert_array_equal(bx, [[1, 3], [1, 4]])
    v = tg.Variable(SEED_X)
    (bx, _), = list(NDArrayDataset(v, batch_size=64, shuffle=False))
    assert isinstance(bx, np.ndarray)
    np.testing.assert_array_equal(bx, SEED_X)


def test_empty_dataset_has_no_batches():
    ds = NDArrayDataset(np.zeros((0, 3)), tests=np.zeros(0), batch_size=4)
    assert len(ds) == 0 and ds.dataset_size() == 0 and list(ds) == []
    assert list(NDArrayDataset(np.zeros((0, 3)), shuffle=False)) == []


class Scale(DatasetFilter):
    def translate(self, inputs, tests=None):
        return inputs * 2.0, None if tests is None else tests + 100


def test_filter_object_or_callable_is_applied_per_batch():
    x, y = numbered(5)
    ds = NDArrayDataset(x, tests=y, batch_size=2, shuffle=False, filter=Scale())
    batches = list(ds)
    assert len(batches) == 3
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x * 2.0)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y + 100)
    calls = []

    def one_hot(inputs, tests):
        calls.append(len(inputs))
        return inputs, np.eye(5)[tests]

    ds.set_filter(one_hot)
    assert ds.filter is one_hot
    out = list(ds)
    assert calls == [2, 2, 1]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in out]), np.eye(5))
    multi = NDArrayDataset([x, x], tests=y, batch_size=5, shuffle=False, filter=lambda i, t: (i[0] + i[1], t))
    np.testing.assert_array_equal(next(iter(multi))[0], 2 * x)
    bad = NDArrayDataset(x, filter=lambda i, t: i, shuffle=False)
    with pytest.raises(TypeError, match=r"filter must return a pair \(inputs, tests\)"):
        list(bad)


def test_seed_example_dataset_overhead_is_a_few_microseconds_per_epoch():
    for shuffle in (False, True):
        ds = NDArrayDataset(SEED_X, tests=SEED_Y, batch_size=64, shuffle=shuffle, seed=0)
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for _epoch in range(100):
                for _inputs, _trues in ds:
                    pass
            best = min(best, time.perf_counter() - start)
        assert best / 100 < 20e-6, f"shuffle={shuffle}: {best / 100 * 1e6:.1f} us per epoch"


def test_package_exports():
    assert tg.data.NDArrayDataset is NDArrayDataset and tg.data.CSVDataset is CSVDataset
    nn = tg.NeuralNetworks()
    assert nn.data.SequentialDataset is SequentialDataset and nn.data.DatasetFilter is DatasetFilter
    assert set(tg.data.__all__) >= {"NDArrayDataset", "SequentialDataset", "CSVDataset", "Dataset", "DatasetFilter"}


# -- SequentialDataset ----------------------------------------------------------------------------
def test_sequential_batches_samples_with_targets():
    samples = [(np.array([i, 10 * i], dtype=np.float32), i) for i in range(7)]
    ds = SequentialDataset(samples, batch_size=3)
    assert len(ds) == 3 and ds.dataset_size() == 7
    batches = list(ds)
    assert [b[0].shape for b in batches] == [(3, 2), (3, 2), (1, 2)]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), np.stack([s[0] for s in samples]))
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), np.arange(7))
    assert batches[0][0].dtype == np.float32


def test_sequential_samples_without_targets_and_python_values():
    ds = SequentialDataset([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], batch_size=2)
    batches = list(ds)
    assert [b[1] for b in batches] == [None, None]
    assert batches[0][0].dtype == np.float32
    np.testing.assert_array_equal(batches[1][0], [[5.0, 6.0]])


def test_sequential_generator_function_runs_every_epoch_but_a_generator_object_once():
    def source():
        for i in range(5):
            yield np.full(2, i, dtype=np.float32), np.int64(i % 2)

    ds = SequentialDataset(source, batch_size=2)
    for _ in range(2):
        batches = list(ds)
        np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), [0, 1, 0, 1, 0])
    with pytest.raises(TypeError, match="total_size"):
        len(ds)
    once = SequentialDataset(source(), batch_size=2)
    assert len(list(once)) == 3
    with pytest.raises(RuntimeError, match="read only once.*callable"):
        list(once)


def test_sequential_several_inputs():
    samples = [([np.array([i, i]), np.array(i * 10)], np.array(i)) for i in range(4)]
    batches = list(SequentialDataset(samples, batch_size=4))
    (inputs, trues), = batches
    assert isinstance(inputs, list) and len(inputs) == 2
    np.testing.assert_array_equal(inputs[0], [[0, 0], [1, 1], [2, 2], [3, 3]])
    np.testing.assert_array_equal(inputs[1], [0, 10, 20, 30])
    np.testing.assert_array_equal(trues, [0, 1, 2, 3])
    unlabelled = list(SequentialDataset([([np.ones(2), np.zeros(3)], None)] * 3, batch_size=2))
    assert unlabelled[0][1] is None and unlabelled[0][0][1].shape == (2, 3)


def test_sequential_chunked_rebatches_across_chunk_boundaries():
    x, y = numbered(10)
    chunks = [(x[0:3], y[0:3]), (x[3:8], y[3:8]), (x[8:10], y[8:10])]
    ds = SequentialDataset(chunks, batch_size=4, chunked=True)
    batches = list(ds)
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)
    big = list(SequentialDataset([x], batch_size=4, chunked=True))  # inside one chunk: views
    assert [len(b[0]) for b in big] == [4, 4, 2] and big[0][0].base is x and big[0][1] is None
    with pytest.raises(ValueError, match="chunk 0 have different first dimensions"):
        list(SequentialDataset([(x, y[:3])], chunked=True))


def test_sequential_shuffle_buffer():
    n = 50
    samples = [(np.array([i]), i) for i in range(n)]
    full = SequentialDataset(samples, batch_size=8, shuffle_buffer=n, seed=3)
    order1 = np.concatenate([b[1] for b in full])
    order2 = np.concatenate([b[1] for b in full])
    assert sorted(order1.tolist()) == list(range(n)) and not np.array_equal(order1, np.arange(n))
    assert not np.array_equal(order1, order2)  # a new order each epoch
    again = SequentialDataset(samples, batch_size=8, shuffle_buffer=n, seed=3)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in again]), order1)
    small = list(SequentialDataset(samples, batch_size=8, shuffle_buffer=4, seed=0))
    order = np.concatenate([b[1] for b in small])
    assert sorted(order.tolist()) == list(range(n)) and not np.array_equal(order, np.arange(n))
    # A buffer of 4 holds at most 4 samples: position p can only hold samples read by then.
    assert all(order[p] <= p + 3 for p in range(n))
    inputs = np.concatenate([b[0] for b in small])[:, 0]
    np.testing.assert_array_equal(inputs, order)
    none = SequentialDataset(samples, batch_size=8, shuffle_buffer=1, seed=0)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in none]), np.arange(n))
    chunked = SequentialDataset([(np.arange(10), np.arange(10))], batch_size=3, chunked=True, shuffle_buffer=10,
                                seed=1)
    out = list(chunked)
    assert [len(b[0]) for b in out] == [3, 3, 3, 1]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in out]), np.concatenate([b[1] for b in out]))
    with pytest.raises(ValueError, match="shuffle_buffer"):
        SequentialDataset(samples, shuffle_buffer=-1)


def test_sequential_total_size_stops_the_epoch():
    def endless():
        i = 0
        while True:
            yield np.array([i], dtype=np.float32), i
            i += 1

    ds = SequentialDataset(endless, batch_size=4, total_size=10)
    assert len(ds) == 3 and ds.dataset_size() == 10
    batches = list(ds)
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), np.arange(10))
    short = SequentialDataset([np.zeros(1)] * 9, batch_size=4, total_size=6)
    assert short.dataset_size() == 6 and len(short) == 2
    assert [len(b[0]) for b in short] == [4, 2]
    assert [len(b[0]) for b in short] == [4, 2]  # a list is read again every epoch
    with pytest.raises(ValueError, match="total_size"):
        SequentialDataset([1], total_size="3")


def test_sequential_errors_name_the_item():
    items = [(np.zeros(2), 0), (np.zeros(2), 1), np.zeros(2)]
    with pytest.raises(ValueError, match="item 2 has one input and no targets, but the first item has one input "
                                         "and one target"):
        list(SequentialDataset(items))
    with pytest.raises(ValueError, match=r"same shapes.*\(2,\).*\(3,\) in sample 1"):
        list(SequentialDataset([np.zeros(2), np.zeros(3)]))
    with pytest.raises(ValueError, match="tuple of 3 values"):
        list(SequentialDataset([(np.zeros(2), 1, 2)]))
    with pytest.raises(TypeError, match="source must be an iterable"):
        SequentialDataset(42)


def test_sequential_filter():
    ds = SequentialDataset([(np.ones(2) * i, i) for i in range(4)], batch_size=2,
                           filter=lambda x, t: (x - 1.0, t * 2))
    batches = list(ds)
    np.testing.assert_array_equal(batches[1][0], [[1.0, 1.0], [2.0, 2.0]])
    np.testing.assert_array_equal(batches[1][1], [4, 6])


# -- CSVDataset -----------------------------------------------------------------------------------
def write(path, text):
    path.write_text(text)
    return path


def test_csv_named_label_column_and_batches(tmp_path):
    p = write(tmp_path / "iris.csv", "a,b,label,c\n1,2,0,3\n4,5,1,6\n7,8,2,9\n10,11,1,12\n13,14,0,15\n")
    ds = CSVDataset(p, batch_size=2, label_column="label", label_dtype="int64")
    assert ds.header == ["a", "b", "label", "c"]
    assert len(ds) == 3 and ds.dataset_size() == 5 and ds.batch_size == 2
    batches = list(ds)
    assert [b[0].shape for b in batches] == [(2, 3), (2, 3), (1, 3)]
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    assert x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(x, [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12], [13, 14, 15]])
    np.testing.assert_array_equal(y, [0, 1, 2, 1, 0])
    assert len(list(ds)) == 3  # each iteration rereads the file


def test_csv_index_label_no_labels_and_several_labels(tmp_path):
    p = write(tmp_path / "d.csv", "0.5;1e-3;-2\n 1.5 ;2;3.25\n")
    (x, y), = list(CSVDataset(p, label_column=-1, delimiter=";"))
    np.testing.assert_allclose(x, [[0.5, 1e-3], [1.5, 2.0]])
    np.testing.assert_allclose(y, [-2.0, 3.25])
    assert y.dtype == np.float32 and y.shape == (2,)
    (x, y), = list(CSVDataset(p, delimiter=";", dtype="float64"))
    assert y is None and x.shape == (2, 3) and x.dtype == np.float64
    (x, y), = list(CSVDataset(p, delimiter=";", label_column=[0, 2]))
    np.testing.assert_allclose(x, [[1e-3], [2.0]])
    np.testing.assert_allclose(y, [[0.5, -2.0], [1.5, 3.25]])


def test_csv_missing_file(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        CSVDataset(missing)
    p = write(tmp_path / "gone.csv", "1,2\n")
    ds = CSVDataset(p)
    p.unlink()
    with pytest.raises(FileNotFoundError, match="gone.csv"):
        list(ds)


def test_csv_malformed_rows_name_file_and_line(tmp_path):
    p = write(tmp_path / "bad.csv", "x,y,t\n1,2,0\n\n3,4\n")
    with pytest.raises(CSVFormatError, match=r"bad\.csv, line 4: expected 3 fields \(as the header\), got 2"):
        list(CSVDataset(p, label_column="t"))
    p = write(tmp_path / "bad2.csv", "1,2,0\n3,4,1\n5,6\n")
    with pytest.raises(CSVFormatError, match=r"bad2\.csv, line 3: expected 3 fields \(as line 1\), got 2"):
        list(CSVDataset(p, label_column=2))
    p = write(tmp_path / "bad3.csv", "x,y,t\n1,2,0\n3,abc,1\n")
    with pytest.raises(CSVFormatError, match=r"bad3\.csv, line 3, column 2 \('y'\): 'abc' is not a number"):
        list(CSVDataset(p, label_column="t"))
    p = write(tmp_path / "bad4.csv", "1,2,0\n3,4,1.5\n")
    with pytest.raises(CSVFormatError, match=r"bad4\.csv, line 2, column 3: '1.5' is not an integer"):
        list(CSVDataset(p, label_column=-1, label_dtype=np.int32))
    p = write(tmp_path / "ok.csv", "1,2,0.0\n3,4,1.0\n")
    (_, y), = list(CSVDataset(p, label_column=-1, label_dtype=np.int32))
    assert y.dtype == np.int32 and y.tolist() == [0, 1]
    p = write(tmp_path / "empty_field.csv", "1,,0\n")
    with pytest.raises(CSVFormatError, match=r"line 1, column 2: '' is not a number"):
        list(CSVDataset(p))


def test_csv_is_read_lazily(tmp_path):
    # The second batch is malformed: the first batch comes out before it is read.
    lines = [f"{i},{i}" for i in range(8)] + ["oops"] + [f"{i},{i}" for i in range(3)]
    p = write(tmp_path / "lazy.csv", "\n".join(lines) + "\n")
    it = iter(CSVDataset(p, batch_size=4))
    x, _ = next(it)
    np.testing.assert_array_equal(x[:, 0], [0, 1, 2, 3])
    next(it)
    with pytest.raises(CSVFormatError, match="line 9"):
        next(it)


def test_csv_bad_column_arguments(tmp_path):
    p = write(tmp_path / "h.csv", "a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"'z' is not in the header.*\['a', 'b'\]"):
        CSVDataset(p, label_column="z")
    with pytest.raises(ValueError, match="out of range for 2 columns"):
        list(CSVDataset(p, label_column=5, skip_header=True))
    with pytest.raises(ValueError, match="needs the header row"):
        CSVDataset(p, label_column="a", skip_header=False)
    with pytest.raises(ValueError, match="no inputs are left"):
        list(CSVDataset(p, label_column=[0, 1], skip_header=True))


def test_csv_size_follows_file_changes_and_shuffle_buffer(tmp_path):
    p = write(tmp_path / "s.csv", "".join(f"{i},{i % 3}\n" for i in range(20)))
    ds = CSVDataset(p, batch_size=6, label_column=1, shuffle_buffer=20, seed=4)
    assert ds.dataset_size() == 20 and len(ds) == 4
    rows = np.concatenate([b[0][:, 0] for b in ds])
    labels = np.concatenate([b[1] for b in ds])
    assert sorted(rows.tolist()) == list(range(20)) and not np.array_equal(rows, np.arange(20))
    assert sorted(labels.tolist()) == sorted([i % 3 for i in range(20)])
    again = CSVDataset(p, batch_size=6, label_column=1, shuffle_buffer=20, seed=4)
    np.testing.assert_array_equal(np.concatenate([b[0][:, 0] for b in again]), rows)
    (x_pairs, y_pairs) = zip(*list(CSVDataset(p, batch_size=6, label_column=1, shuffle_buffer=5, seed=0)))
    np.testing.assert_array_equal(np.concatenate(x_pairs)[:, 0] % 3, np.concatenate(y_pairs))  # aligned
    write(p, "".join(f"{i},{i % 3}\n" for i in range(25)) + "\n")
    assert ds.dataset_size() == 25 and len(ds) == 5
