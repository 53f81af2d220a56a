"""tapegrad.distributed in one process (no mpirun): imports, the single-process
semantics of every call, errors, and the machinery -- bucket plans, the order in which
buckets start, buffer reuse, sharding for N ranks, the abort hook -- with stand-in
communicators. The runs on real MPI ranks are in test_distributed_mpi.py."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tapegrad
import tapegrad.distributed as dist
from tapegrad.distributed import _launch, buckets, faults, sharding
from tapegrad.errors import OpTypeError, OpValueError, TracingError

LAUNCH_VARIABLES = _launch.SIZE_VARIABLES + _launch.RANK_VARIABLES + ("PMI_FD", "PMI_PORT")


def plain_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(tapegrad.__file__)),
                                         *filter(None, [env.get("PYTHONPATH")])])
    return env


def run_python(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, env=env or plain_env())


# -- imports and the environment -------------------------------------------------------------
def test_import_tapegrad_and_fit_outside_mpirun_import_no_mpi():
    done = run_python("""
        import sys
        import numpy as np
        import tapegrad
        assert "tapegrad.distributed" not in sys.modules
        nn = tapegrad.NeuralNetworks()
        model = nn.models.Sequential([nn.layers.Dense(2, input_shape=[3])])
        model.compile(optimizer="sgd", loss="mse")
        model.fit(np.ones((4, 3)), np.ones((4, 2)), epochs=1, verbose=0)
        assert "mpi4py" not in sys.modules and "tapegrad.distributed.comm" not in sys.modules, sorted(sys.modules)
        import tapegrad.distributed as dist
        assert (dist.rank(), dist.size(), dist.is_main()) == (0, 1, True)
        assert "mpi4py" not in sys.modules
        print("ok")
    """)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_the_launchers_variables_say_how_many_ranks(monkeypatch):
    for name in LAUNCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert _launch.launched_size() is None and not _launch.launched_by_mpirun()
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "1")
    assert _launch.launched_size() == 1 and not _launch.several_ranks()
    monkeypatch.setenv("PMI_SIZE", "4")
    assert _launch.launched_size() == 4 and _launch.several_ranks()


def test_under_mpirun_without_mpi4py_init_and_fit_say_what_to_install(monkeypatch):
    from tapegrad.distributed import comm

    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # not installed
    monkeypatch.setattr(comm, "_world", None)
    nn = tapegrad.NeuralNetworks()
    model = nn.models.Sequential([nn.layers.Dense(2, input_shape=[3])])
    model.compile(optimizer="sgd", loss="mse", jit=False)
    with pytest.raises(dist.DistributedError, match=r"^tapegrad.distributed: this process was launched by mpirun "
                                                    r"as one of 2 ranks, but mpi4py cannot be imported .*; install "
                                                    r"the mpi extra: pip install 'tapegrad\[mpi\]'"):
        model.fit(np.ones((4, 3)), np.ones((4, 2)), epochs=1, verbose=0)
    assert comm._world is None and model._gradient_sync is None


# -- one process: every collective is the identity ----------------------------------------------
def test_in_one_process_collectives_are_the_identity():
    a = np.arange(6.0).reshape(2, 3)
    for op in ("mean", "sum", "max", "min", "prod"):
        got = dist.allreduce([a, np.int32(3), tapegrad.Variable(np.float32(2.5))], op=op)
        np.testing.assert_array_equal(got[0], a)
        assert got[1] == 3 and got[1].dtype == (np.float64 if op == "mean" else np.int32)
        assert got[2] == np.float32(2.5) and got[2].dtype == np.float32
    single = dist.allreduce(a)
    assert isinstance(single, np.ndarray) and single is not a
    v = tapegrad.Variable(np.ones(3))
    dist.broadcast_variables([v])
    np.testing.assert_array_equal(v.value(), np.ones(3))
    assert dist.broadcast_object({"x": 1}) == {"x": 1}
    nn = tapegrad.NeuralNetworks()
    dataset = nn.data.NDArrayDataset(np.ones((4, 2)), batch_size=2)
    assert dist.shard(dataset) is dataset


def test_collective_errors_name_the_call_and_the_value():
    with pytest.raises(OpValueError, match=r"allreduce: op must be one of 'mean', 'sum', 'max', 'min', 'prod', "
                                           r"got 'avg'"):
        dist.allreduce(np.ones(2), op="avg")
    with pytest.raises(OpTypeError, match=r"allreduce: arrays\[1\] has dtype bool"):
        dist.allreduce([np.ones(2), np.ones(2, bool)])
    with pytest.raises(OpTypeError, match=r"allreduce: the array must be an array, a Variable or a number, got str"):
        dist.allreduce("x")
    with pytest.raises(OpValueError, match=r"broadcast_variables: root must be a rank, an int in \[0, 1\), got 1"):
        dist.broadcast_variables([tapegrad.Variable(1.0)], root=1)
    with pytest.raises(OpTypeError, match=r"broadcast_variables: variables\[0\] must be a Variable"):
        dist.broadcast_variables([np.ones(2)])
    with pytest.raises(OpTypeError, match=r"broadcast_optimizer_state: expects an optimizer .* got int"):
        dist.broadcast_optimizer_state(3)
    with pytest.raises(OpTypeError, match=r"shard: expects a dataset .* got ndarray; wrap arrays in "
                                          r"nn.data.NDArrayDataset"):
        dist.shard(np.ones((4, 2)))
    with pytest.raises(OpTypeError, match=r"DistributedOptimizer: expects an optimizer .* got str"):
        dist.DistributedOptimizer("adam")


def test_broadcast_variables_takes_a_model():
    nn = tapegrad.NeuralNetworks()
    model = nn.models.Sequential([nn.layers.Dense(2, input_shape=[3])])
    model.build()
    before = model.get_weights()
    dist.broadcast_variables(model)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


# -- the distributed tape and optimizer in one process -------------------------------------------
def test_the_distributed_tape_gives_the_local_gradients_in_one_process():
    x = tapegrad.Variable(np.array([1.0, 2.0, 3.0]))
    w = tapegrad.Variable(np.array([[0.5], [-1.0], [2.0]]))
    unused = tapegrad.Variable(np.array(4.0))
    with dist.GradientTape(persistent=True) as tape:
        y = tapegrad.reduce_sum(tapegrad.matmul(x[None, :] * x, w) ** 2)
    with tapegrad.GradientTape() as local:
        y2 = tapegrad.reduce_sum(tapegrad.matmul(x[None, :] * x, w) ** 2)
    got = tape.gradient(y, {"x": x, "w": [w, unused]})
    expected = local.gradient(y2, {"x": x, "w": [w, unused]})
    assert isinstance(got["w"], list) and got["w"][1] is None
    np.testing.assert_allclose(got["x"].value(), expected["x"].value(), rtol=1e-15)
    np.testing.assert_allclose(got["w"][0].value(), expected["w"][0].value(), rtol=1e-15)
    zero = tape.gradient(y, [unused], unconnected_gradients="zero")
    assert zero[0].value() == 0.0


def test_the_distributed_tape_refuses_to_run_inside_a_compiled_function():
    w = tapegrad.Variable(np.ones(2))

    @tapegrad.Function
    def step(x):
        with dist.GradientTape() as tape:
            loss = tapegrad.reduce_sum(w * x)
        return tape.gradient(loss, w)

    with pytest.raises(TracingError, match="use tapegrad.GradientTape there and "
                                           "tapegrad.distributed.DistributedOptimizer"):
        step(np.ones(2))


def _mlp(nn, seed):
    tapegrad.set_seed(seed)
    model = nn.models.Sequential([nn.layers.Dense(4, input_shape=[3], activation="tanh"), nn.layers.Dense(2)])
    model.build()
    return model


@pytest.mark.parametrize("compiled", [False, True])
def test_distributed_optimizer_in_one_process_updates_like_its_optimizer(compiled):
    nn = tapegrad.NeuralNetworks(dtype="float64")
    g = nn.gradient()
    x = np.random.default_rng(0).standard_normal((5, 3))
    lossf = nn.losses.MeanSquaredError()
    results = []
    for wrap in (False, True):
        model = _mlp(nn, 3)
        optimizer = nn.optimizers.Adam(0.05)
        if wrap:
            optimizer = dist.DistributedOptimizer(optimizer)
        params = model.trainable_variables()

        def step(inputs, model=model, optimizer=optimizer, params=params):
            with g.GradientTape() as tape:
                loss = lossf(np.zeros((5, 2)), model(inputs, True))
            optimizer.update(params, tape.gradient(loss, params))
            return loss

        run = g.Function(step) if compiled else step
        for _ in range(3):
            run(x)
        results.append((model.get_weights(), optimizer.iterations))
    assert results[1][1] == results[0][1] == 3
    for a, b in zip(results[0][0], results[1][0]):
        np.testing.assert_array_equal(a, b)


def test_distributed_optimizer_does_not_average_the_distributed_tapes_gradients_again():
    nn = tapegrad.NeuralNetworks(dtype="float64")
    model = _mlp(nn, 4)
    optimizer = dist.DistributedOptimizer(nn.optimizers.SGD(0.1))
    params = model.trainable_variables()
    averager = optimizer.averager
    x = np.ones((2, 3))
    before = averager.steps
    with dist.GradientTape() as tape:
        loss = tapegrad.reduce_sum(model(x, True))
    grads = tape.gradient(loss, params)
    assert averager.steps == before + 1
    optimizer.update(params, grads)  # averages already: passed on as they are
    optimizer.apply_gradients(zip(grads, params))
    assert averager.steps == before + 1
    with tapegrad.GradientTape() as tape:
        loss = tapegrad.reduce_sum(model(x, True))
    optimizer.update(params, tape.gradient(loss, params))  # local gradients: averaged
    assert averager.steps == before + 2
    assert optimizer.iterations == 3


def test_distributed_optimizer_is_its_optimizer_otherwise():
    nn = tapegrad.NeuralNetworks()
    inner = nn.optimizers.Adam(0.01)
    optimizer = dist.DistributedOptimizer(inner)
    assert optimizer.learning_rate == pytest.approx(0.01) and optimizer.name == inner.name
    optimizer.learning_rate = 0.5
    assert inner.learning_rate == 0.5
    assert optimizer.get_config() == inner.get_config()
    assert "iterations" in optimizer.get_state()
    with pytest.raises(OpTypeError, match="is a DistributedOptimizer already"):
        dist.DistributedOptimizer(optimizer)
    with pytest.raises(OpValueError, match=r"DistributedOptimizer.update: got 1 parameters but 2 gradients"):
        optimizer.update([tapegrad.Variable(np.ones(2))], [np.ones(2), np.ones(2)])


# -- buckets ----------------------------------------------------------------------------------
class RecordingWorld:
    """A one-rank communicator that records the sums started, in order."""

    rank, size = 0, 1

    def __init__(self):
        self.started: list[int] = []
        self.polls = 0

    def start_sum(self, buffer):
        self.started.append(buffer.size)
        return None

    def test_all(self, requests):
        self.polls += 1
        return True

    def wait_all(self, requests):
        pass


def _plan(shapes, dtypes=None, bucket_bytes=None):
    dtypes = dtypes or [np.float32] * len(shapes)
    return buckets._Plan([tuple(s) for s in shapes], [np.dtype(d) for d in dtypes], bucket_bytes)


def test_buckets_hold_parameters_in_reverse_order_by_dtype_and_size():
    # the benchmark MLP: W1 b1 W2 b2 W3 b3, 269,322 float32 = 1.08 MB: buckets of a quarter, >= 256 KiB
    plan = _plan([(784, 256), (256,), (256, 256), (256,), (256, 10), (10,)])
    assert plan.members == [[5, 4, 3], [2, 1], [0]]
    assert plan.bucket_bytes == [4 * (10 + 2560 + 256), 4 * (65536 + 256), 4 * 200704]
    small = _plan([(10,), (10,), (10,), (10,)], [np.float32, np.float64, np.float64, np.float32], bucket_bytes=160)
    assert small.members == [[3], [2, 1], [0]]  # a new bucket at each dtype change
    big = _plan([(100,), (30,), (5,)], bucket_bytes=140)  # a parameter above the cap has a bucket of its own
    assert big.members == [[2, 1], [0]]


def test_a_bucket_starts_as_soon_as_it_is_full_and_never_before_an_earlier_one():
    plan = _plan([(4,), (3,), (2,), (1,)], bucket_bytes=12)  # buckets [3, 2] [1] [0]
    assert plan.members == [[3, 2], [1], [0]]
    world = RecordingWorld()
    step = buckets.AveragingStep(plan, plan.acquire(), 1.0, world, "test")
    step.put(1, np.ones(3))  # bucket 1 is full, but bucket 0 has not started: it waits
    assert world.started == []
    step.put(3, np.ones(1))
    assert world.started == []
    step.put(2, np.ones(2))  # bucket 0 full: it starts, then bucket 1
    assert world.started == [3, 3]
    step.put(0, None)
    assert world.started == [3, 3, 4]
    grads, loss, total = step.finish(loss=2.5)
    assert world.started == [3, 3, 4, 2 + 4]  # the header last
    assert grads[0] is None and loss == 2.5 and total == 1.0
    np.testing.assert_array_equal(grads[1], np.ones(3))


def test_a_weighted_step_divides_by_the_total_weight():
    plan = _plan([(2,), (3,)], [np.float64, np.float64])
    step = buckets.AveragingStep(plan, plan.acquire(), 4.0, RecordingWorld(), "test")
    step.put(1, np.array([1.0, 2.0, 3.0]))
    step.put(0, tapegrad.Variable(np.array([0.5, -0.5])))
    grads, loss, total = step.finish(loss=0.25)
    assert total == 4.0 and loss == 0.25
    np.testing.assert_array_equal(grads[0], [0.5, -0.5])
    np.testing.assert_array_equal(grads[1], [1.0, 2.0, 3.0])


def test_gradients_kept_across_steps_are_never_overwritten():
    averager = buckets.GradientAverager()
    params = [tapegrad.Variable(np.zeros(3)), tapegrad.Variable(np.zeros(2))]
    first, _, _ = averager.average(params, [np.full(3, 1.0), np.full(2, 1.0)])
    kept = [g.copy() for g in first]
    second, _, _ = averager.average(params, [np.full(3, 2.0), np.full(2, 2.0)])
    assert second[0] is not first[0]  # the first result is still referenced: new buffers
    for a, b in zip(first, kept):
        np.testing.assert_array_equal(a, b)
    del first, a  # (the loop variable held the last view too)
    third, _, _ = averager.average(params, [np.full(3, 3.0), np.full(2, 3.0)])
    assert len(averager.plan(params).sets) == 2  # the first set was free again: reused
    np.testing.assert_array_equal(third[0], np.full(3, 3.0))
    np.testing.assert_array_equal(second[0], np.full(3, 2.0))


def test_a_gradient_of_the_wrong_shape_is_refused_naming_the_parameter():
    averager = buckets.GradientAverager()
    with pytest.raises(OpValueError, match=r"DistributedOptimizer.update: the gradient of parameter 1 has shape "
                                           r"\(3,\), but the parameter has shape \(2,\)"):
        averager.average([tapegrad.Variable(np.zeros(2)), tapegrad.Variable(np.zeros(2))],
                         [np.zeros(2), np.zeros(3)], owner="DistributedOptimizer.update")
    with pytest.raises(OpValueError, match="bucket_bytes must be a positive int or None, got 0"):
        buckets.GradientAverager(0)


# -- sharding for N ranks, with stand-in communicators ----------------------------------------
class FakeRank:
    """Rank ``rank`` of ``size``; broadcasts return what rank 0 broadcast (make rank 0 first)."""

    def __init__(self, rank, size, shared):
        self.rank, self.size, self._shared = rank, size, shared

    def broadcast(self, obj, root):
        if self.rank == root:
            self._shared.append(obj)
            return obj
        return self._shared[-1]


def _ranks(size):
    shared = []
    return [FakeRank(r, size, shared) for r in range(size)]


@pytest.mark.parametrize("samples", [30, 25, 19])
def test_shards_of_three_ranks_are_the_global_batches_of_one_process(samples):
    """Batch 2 per rank on 3 ranks: one process's batches of 6 from the same order, cut in
    three; a last global batch of m samples is split as evenly as possible (19 = 3*6 + 1:
    ranks 1 and 2 have nothing in that step -- fit keeps it, shard drops it)."""
    nn = tapegrad.NeuralNetworks(dtype="float64")
    ids = np.arange(samples)
    tapegrad.set_seed(11)
    shards = [sharding.ShardedArrays(nn.data.NDArrayDataset(ids[:, None] * 1.0, tests=ids, batch_size=2), world,
                                     keep_partial=True) for world in _ranks(3)]
    tapegrad.set_seed(11)
    single = nn.data.NDArrayDataset(ids[:, None] * 1.0, tests=ids, batch_size=6)
    for _ in range(2):
        expected = [t for _, t in single]
        per_rank = [list(s) for s in shards]
        assert all(len(steps) == len(expected) == len(s) for steps, s in zip(per_rank, shards))
        for k, batch in enumerate(expected):
            parts = [steps[k] for steps in per_rank]
            got = [t for x, t in parts if x is not sharding.NO_BATCH]
            np.testing.assert_array_equal(np.concatenate(got), batch)
            assert max(len(t) for t in got) - min(len(t) for t in got) <= 1
            for x, t in parts:
                if x is not sharding.NO_BATCH:
                    np.testing.assert_array_equal(x[:, 0], t)
    dropped = sharding.ShardedArrays(nn.data.NDArrayDataset(ids[:, None] * 1.0, tests=ids, batch_size=2),
                                     _ranks(3)[0])
    assert len(dropped) == len(shards[0]) - (1 if samples % 6 and samples % 6 < 3 else 0)


def test_sharded_arrays_skip_the_orders_of_the_epochs_already_trained():
    nn = tapegrad.NeuralNetworks(dtype="float64")
    ids = np.arange(10)
    dataset = nn.data.NDArrayDataset(ids[:, None] * 1.0, tests=ids, batch_size=5, seed=4)
    fresh = sharding.ShardedArrays(dataset, _ranks(1)[0])
    for _ in range(2):
        list(fresh)
    resumed = sharding.ShardedArrays(dataset, _ranks(1)[0], skip_epochs=2)
    np.testing.assert_array_equal(np.concatenate([t for _, t in fresh]), np.concatenate([t for _, t in resumed]))


def test_round_robin_shards_of_a_plain_iterable():
    batches = [(np.full((1, 1), i), np.array([i])) for i in range(7)]
    got = [[int(t[0]) for _, t in sharding.ShardedBatches(batches, world)] for world in _ranks(3)]
    assert got == [[0, 3], [1, 4], [2, 5]]  # the incomplete last group (6) dropped
    kept = [list(sharding.ShardedBatches(batches, world, keep_partial=True)) for world in _ranks(3)]
    assert [len(k) for k in kept] == [3, 3, 3]
    assert int(kept[0][2][1][0]) == 6 and kept[1][2][0] is sharding.NO_BATCH and kept[2][2][0] is sharding.NO_BATCH


# -- fit's data-parallel path, run on one rank -----------------------------------------------
@pytest.mark.parametrize("jit", [False, True])
def test_the_data_parallel_fit_on_one_rank_is_the_plain_fit(jit):
    from tapegrad.distributed.fit import support

    nn = tapegrad.NeuralNetworks(dtype="float64")
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((13, 3)), rng.integers(0, 2, 13)
    results = []
    for parallel in (False, True):
        model = _mlp(nn, 6)
        model.compile(optimizer=nn.optimizers.Adam(0.02), loss=nn.losses.SparseCategoricalCrossentropy(
            from_logits=True), metrics=["accuracy"], jit=jit)
        tapegrad.set_seed(9)
        arguments = {"x": x, "y": y, "epochs": 2, "batch_size": 4, "verbose": 0}
        history = support().fit(model, model.fit, arguments) if parallel else model.fit(**arguments)
        results.append((history.history, model.get_weights()))
        assert model._gradient_sync is None
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_array_equal(a, b)


# -- the abort hook -------------------------------------------------------------------------
def test_the_abort_hook_prints_the_error_then_aborts():
    """Under mpirun, ``import tapegrad`` installs the hook for errors before MPI starts
    (without importing MPI); init() replaces it by the one that aborts at once."""
    env = plain_env()
    env.update(PMI_SIZE="4", PMI_RANK="1")
    done = run_python("""
        import os, sys
        import tapegrad
        assert sys.excepthook._tapegrad_abort == "early" and "mpi4py" not in sys.modules
        from tapegrad.distributed import faults

        class World:
            rank, size = 1, 4
            def abort(self, code):
                print("abort", code, flush=True)
                os._exit(7)

        faults.install(World())
        faults.install(World())  # idempotent
        assert sys.excepthook._tapegrad_abort == "started"
        print("before", flush=True)
        raise ValueError("rank failure")
    """, env)
    assert done.returncode == 7
    assert done.stdout.split() == ["before", "abort", "1"]
    assert "ValueError: rank failure" in done.stderr
    assert done.stderr.rstrip().endswith("tapegrad.distributed: rank 1 of 4 raised ValueError; aborting the job "
                                         "on every rank")
    assert "before MPI started" not in done.stderr


def test_draining_waits_until_a_pipe_is_read():
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"12345")
        assert faults._unread_bytes(write_end) == 5
        os.read(read_end, 5)
        assert faults._unread_bytes(write_end) == 0
    finally:
        os.close(read_end)
        os.close(write_end)


def test_the_bucket_cap_can_be_set_from_the_environment(monkeypatch):
    monkeypatch.setattr(buckets, "_default", None)
    monkeypatch.setenv("TAPEGRAD_MPI_BUCKET_MB", "0.5")
    assert buckets.default_averager().bucket_bytes == 1 << 19
    monkeypatch.setattr(buckets, "_default", None)
    monkeypatch.setenv("TAPEGRAD_MPI_BUCKET_MB", "many")
    with pytest.raises(OpValueError, match="TAPEGRAD_MPI_BUCKET_MB must be a number of megabytes > 0, got 'many'"):
        buckets.default_averager()


def test_fit_refuses_a_dataset_sharded_already():
    from tapegrad.distributed.fit import support

    nn = tapegrad.NeuralNetworks()
    model = _mlp(nn, 1)
    model.compile(optimizer="sgd", loss="mse")
    ids = np.arange(6.0)
    sharded = sharding.ShardedArrays(nn.data.NDArrayDataset(ids[:, None], tests=ids, batch_size=2), _ranks(2)[0])

    class Cast:  # what fit hands over: the user's dataset, wrapped
        dataset = sharded

    with pytest.raises(OpValueError, match=r"fit: x is the result of tapegrad.distributed.shard\(\); under mpirun "
                                           r"fit shards by itself"):
        support().prepare(model, Cast(), 0)


def test_the_progress_thread_runs_across_machines_unless_the_environment_says(monkeypatch):
    from tapegrad.distributed import comm

    monkeypatch.delenv("TAPEGRAD_MPI_PROGRESS", raising=False)
    assert comm._progress_interval(lambda: True) == comm.PROGRESS_SECONDS
    assert comm._progress_interval(lambda: False) == 0.0
    monkeypatch.setenv("TAPEGRAD_MPI_PROGRESS", "0.001")
    assert comm._progress_interval(lambda: False) == 0.001
    monkeypatch.setenv("TAPEGRAD_MPI_PROGRESS", "often")
    with pytest.raises(OpValueError, match="TAPEGRAD_MPI_PROGRESS must be a number of seconds .* got 'often'"):
        comm._progress_interval(lambda: True)
