"""Data-parallel training on 2 MPI ranks (``mpirun -np 2``), compared with one process.

Four jobs run tests/mpi_programs/run.py: ``main`` (collectives, sharding, custom loops,
fit eager and compiled, an uninterrupted checkpointed fit), ``crash`` (that fit, rank 1
raising in its third epoch), ``resume`` (from the crash's last checkpoint) and ``early``
(rank 1 raising before MPI started). The
single-process references are computed here with the same scenarios."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import mpi_launch
import numpy as np
import pytest

PROGRAMS = Path(__file__).resolve().parent / "mpi_programs"
sys.path.insert(0, str(PROGRAMS))

import scenarios  # noqa: E402

pytestmark = pytest.mark.skipif(mpi_launch.missing_mpi() is not None, reason=str(mpi_launch.missing_mpi()))

RUN = str(PROGRAMS / "run.py")
TIMEOUT = 90  # seconds for a job; each takes 2-4 s


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """The three jobs, run once: {mode: (CompletedProcess, directory)}."""
    directory = tmp_path_factory.mktemp("mpi")
    done = {}
    for mode in ("main", "crash", "resume", "early"):
        done[mode] = mpi_launch.run(scenarios.N_RANKS, [RUN, mode, str(directory)], TIMEOUT)
        if mode in ("main", "resume"):
            assert done[mode].returncode == 0, done[mode].stderr[-3000:]
    return done, directory


def ranks(directory: Path, mode: str) -> list:
    return [np.load(directory / f"{mode}-rank{r}.npz") for r in range(scenarios.N_RANKS)]


def weights(npz, prefix: str, count: int = 4) -> list[np.ndarray]:
    return [npz[f"{prefix}{i}"] for i in range(count)]


def assert_same(got: list[np.ndarray], expected: list[np.ndarray]) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_allreduce_over_two_ranks(jobs):
    _, directory = jobs
    a = np.arange(6.0).reshape(2, 3)
    b1, b2 = np.array([1, 10]), np.array([2, 20])
    for out in ranks(directory, "main"):
        np.testing.assert_array_equal(out["allreduce_mean_a"], 1.5 * a)
        np.testing.assert_array_equal(out["allreduce_sum_a"], 3 * a)
        np.testing.assert_array_equal(out["allreduce_max_a"], 2 * a)
        np.testing.assert_array_equal(out["allreduce_min_a"], a)
        assert out["allreduce_mean_b"].dtype == np.float64  # the mean of integers
        np.testing.assert_array_equal(out["allreduce_mean_b"], (b1 + b2) / 2)
        assert out["allreduce_sum_b"].dtype == np.int64
        np.testing.assert_array_equal(out["allreduce_sum_b"], b1 + b2)
        assert out["allreduce_sum_c"].dtype == np.float32 and out["allreduce_sum_c"] == np.float32(2.0)
        np.testing.assert_array_equal(out["allreduce_max_c"], np.float32(1.5))
        np.testing.assert_array_equal(out["allreduce_single"], 1.5 * a)


def test_broadcast_variables_gives_every_rank_the_roots_values(jobs):
    _, directory = jobs
    for out in ranks(directory, "main"):  # root=1: rank 1's values everywhere
        np.testing.assert_array_equal(out["broadcast_v0"], np.full((2, 2), 2.0))
        assert out["broadcast_v1"].dtype == np.float32 and out["broadcast_v1"] == 3.0
        np.testing.assert_array_equal(out["broadcast_v2"], np.arange(3) + 10)
        assert int(out["object"]) == 1


def test_shard_splits_one_shuffled_order_into_per_rank_batches(jobs):
    """22 samples, batch 3 per rank: global batches of 6 from the order a single process with
    batch 6 and the same seed draws; rank 0 takes the first 3 of each, rank 1 the next 3;
    the last global batch of 4 is split 2 + 2."""
    import tapegrad

    _, directory = jobs
    out0, out1 = ranks(directory, "main")
    ids = np.arange(22)
    single = tapegrad.NeuralNetworks(dtype="float64").data.NDArrayDataset(
        ids[:, None].astype(float), tests=ids, batch_size=6, seed=3)
    for epoch in range(2):
        expected = [t for _, t in single]
        assert int(out0["shard_steps"]) == int(out1["shard_steps"]) == len(expected) == 4
        np.testing.assert_array_equal(out0[f"shard_sizes{epoch}"], [3, 3, 3, 2])
        np.testing.assert_array_equal(out1[f"shard_sizes{epoch}"], [3, 3, 3, 2])
        got0, got1 = out0[f"shard_epoch{epoch}"], out1[f"shard_epoch{epoch}"]
        np.testing.assert_array_equal(np.concatenate([t[: len(t) // 2] for t in expected]), got0)
        np.testing.assert_array_equal(np.concatenate([t[len(t) // 2:] for t in expected]), got1)
        assert sorted(np.concatenate([got0, got1]).tolist()) == list(range(22))  # every sample once
    # a plain iterable: batches dealt round-robin, the incomplete last group dropped
    np.testing.assert_array_equal(out0["round_robin"], [0, 2, 4])
    np.testing.assert_array_equal(out1["round_robin"], [1, 3, 5])


@pytest.mark.parametrize("where", ["tape", "optimizer"])
def test_custom_loop_on_two_ranks_equals_one_process_with_twice_the_batch(jobs, where):
    """Ranks start from different weights (rank 0's are broadcast) and average either in
    tapegrad.distributed.GradientTape (the optimizer must not average again) or in
    DistributedOptimizer."""
    _, directory = jobs
    expected, _ = scenarios.custom_loop(False, False)
    for out in ranks(directory, "main"):
        assert_same(weights(out, f"custom_{where}_w"), expected)
        assert int(out[f"custom_{where}_averagings"]) == 8  # one per step: 2 epochs of 4 steps


@pytest.mark.parametrize("jit", [False, True])
def test_fit_on_two_ranks_equals_one_process_with_twice_the_batch(jobs, jit):
    """33 samples, batch 4 per rank: the last step has one sample (rank 1 has none). The
    weights, the loss and the metrics of every epoch equal one process's with batch 8."""
    _, directory = jobs
    expected_history, expected_weights = scenarios.fit_run(jit, scenarios.BATCH * scenarios.N_RANKS)
    for r, out in enumerate(ranks(directory, "main")):
        assert_same(weights(out, f"fit_{jit}_w"), expected_weights)
        history = json.loads((directory / f"main-histories-rank{r}.json").read_text())[str(jit)]
        assert history.keys() == expected_history.keys()
        for key, values in expected_history.items():
            np.testing.assert_allclose(history[key], values, rtol=1e-12, err_msg=key)


def test_fit_on_a_dataset_deals_its_batches_to_the_ranks(jobs):
    """A plain iterable of 5 batches: each step trains on a pair of batches, one per rank,
    weighted by their sizes (the last step on rank 0's batch alone): like one process on
    the pairs merged."""
    _, directory = jobs
    expected = scenarios.dataset_fit(merged=True)
    for out in ranks(directory, "main"):
        assert_same(weights(out, "dataset_w"), expected)


def test_progress_logs_and_checkpoints_come_from_rank_0_only(jobs):
    done, directory = jobs
    stdout = done["main"].stdout
    for epoch in (1, 2, 3):  # two fits, verbose=2: one line per epoch each, not one per rank
        assert stdout.count(f"Epoch {epoch}/3 - ") == 2, stdout
        assert stdout.count(f"callback on rank 0, epoch {epoch}") == 2, stdout
    assert "callback on rank 1" not in stdout  # the other ranks' stdout is discarded during fit
    out0, out1 = ranks(directory, "main")
    for jit in (False, True):
        assert int(out0[f"fit_{jit}_saved"]) == 3 and int(out1[f"fit_{jit}_saved"]) == 0
        assert sorted(p.name for p in directory.glob(f"fit-{jit}-*.tgm")) == [f"fit-{jit}-{e}.tgm" for e in (1, 2, 3)]


def test_a_rank_that_raises_ends_the_job_with_its_error(jobs):
    """Rank 1 raises in its third epoch while rank 0 waits for it in an allreduce: the job
    ends (no hang: the fixture's timeout), non-zero, with the traceback on stderr."""
    done, directory = jobs
    crash = done["crash"]
    assert crash.returncode != 0
    assert "RuntimeError: injected failure on rank 1" in crash.stderr
    assert "tapegrad.distributed: rank 1 of 2 raised RuntimeError; aborting the job on every rank" in crash.stderr
    assert "should not have" not in crash.stdout
    assert sorted(p.name for p in (directory / "crash").iterdir()) == ["ckpt-1.tgm", "ckpt-2.tgm"]


def test_a_rank_that_raises_before_mpi_started_ends_the_job_too(jobs):
    """Rank 1 raises right after ``import tapegrad``, rank 0 goes on into an allreduce: the
    failing rank starts MPI (when rank 0 does) and aborts the job."""
    done, _ = jobs
    early = done["early"]
    assert early.returncode != 0
    assert "RuntimeError: early failure on rank 1" in early.stderr
    assert "tapegrad.distributed: rank 1 of 2 raised RuntimeError; aborting the job on every rank" in early.stderr
    assert "should not have" not in early.stdout


def test_resuming_after_the_crash_gives_the_run_without_it(jobs):
    _, directory = jobs
    uninterrupted = weights(ranks(directory, "main")[0], "full_w")
    for out in ranks(directory, "resume"):
        assert_same(weights(out, "w"), uninterrupted)
    assert not np.allclose(uninterrupted[0], np.load(directory / "main-rank0.npz")["fit_True_w0"])  # it trained
