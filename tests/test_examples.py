"""Run every example script and check that it prints what its seed document prints."""

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def run(script: str, tmp_path: Path) -> list[str]:
    temporary = tmp_path / "tmp"  # the script's TMPDIR: it must leave nothing behind
    temporary.mkdir()
    # PYTHONPATH: the examples import this checkout's tapegrad, not an installed one. One BLAS
    # thread: the same numbers on every machine, and no two threads fighting over a busy
    # machine's cores (the CNN example ran 6x slower so)
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, MPLBACKEND="Agg", TMPDIR=str(temporary), PYTHONPATH=pythonpath,
               OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, str(EXAMPLES / script)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert not list(temporary.iterdir()), f"{script} left {[p.name for p in temporary.iterdir()]} in TMPDIR"
    return result.stdout.splitlines()


def test_seed_autodiff_prints_the_seed_output(tmp_path):
    # seed 000: every "# ..." result line, in order (then the layers-in-the-tape snippet's lines)
    assert run("seed_autodiff.py", tmp_path)[:13] == [
        "[2,3]", "[2,3]",
        "a=[2,3]", "value=[0,0]", "a=[2,3]",
        "b=[4,5]",
        "c=6",
        "c=6", "da=3", "db=2",
        "c=6", "da=3", "db=2",
    ]


def numbers(line: str) -> float:
    return float(line.rsplit("=", 1)[1])


def test_seed_tutorial_prints_the_seed_values(tmp_path):
    out = run("seed_tutorial.py", tmp_path)
    assert out[:4] == [
        "d.value = 28",
        "The partial derivative of d with respect to a = 11",
        "gradients[b] = 4",
        "gradients[c] = 4",
    ]
    # Analytic gradients equal the tutorial's (pure-Python float) figures to the last digits;
    # the forward-difference estimates agree to what a step of 1e-8 resolves.
    seed_values = [
        ("y with respect to a", -153284.83150602411, 1e-12),
        ("y with respect to b", 3815.0389441500993, 1e-12),
        ("estimate for a", -153284.89243984222, 1e-6),
        ("estimate for b", 3815.069794654846, 1e-6),
        ("y with respect to a", 60.85353612046653, 1e-12),
        ("y with respect to b", 872.2331479536114, 1e-12),
        ("y with respect to c", -3.2853671032530305, 1e-12),
        ("estimate for a", 60.85352186602222, 1e-6),
        ("estimate for b", 872.232160009645, 1e-6),
        ("estimate for c", -3.285367089489455, 1e-6),
    ]
    for line, (words, expected, rel) in zip(out[4:14], seed_values):
        assert words in line
        assert math.isclose(numbers(line), expected, rel_tol=rel), (line, expected)
    match = re.match(r"linear layer: loss ([\d.]+) at step 1, ([\d.]+) at step 100", out[14])
    assert match and float(match.group(2)) < 0.01 * float(match.group(1))


def test_nth_derivatives_match_closed_forms(tmp_path):
    out = run("nth_derivatives.py", tmp_path)
    rows = [line.split() for line in out if re.match(r"^\d\s", line)]
    assert len(rows) == 14
    for n, value, expected in rows:
        assert math.isclose(float(value), float(expected), rel_tol=1e-12, abs_tol=1e-12), (n, value, expected)
    assert "Hessian" in out[-3]


@pytest.mark.parametrize("script", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_every_example_runs(script, tmp_path):
    run(script, tmp_path)


def test_seed_training_prints_the_same_losses_every_run_and_labels_its_plot(tmp_path, monkeypatch, capsys):
    import runpy

    pytest.importorskip("matplotlib")
    runs = []
    for i in range(2):
        monkeypatch.setattr(sys, "argv", ["seed_training.py", str(tmp_path / f"loss{i}.png")])
        namespace = runpy.run_path(str(EXAMPLES / "seed_training.py"), run_name="__main__")
        runs.append(capsys.readouterr().out.splitlines()[:100])
    assert runs[0] == runs[1] and runs[0][0].startswith("epoch 1: loss=")
    (ax,) = namespace["figure"].axes
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("epoch", "loss", "dynamic mode gradient")
    import matplotlib.pyplot as plt

    plt.close("all")
