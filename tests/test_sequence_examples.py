"""The sequence examples learn: run at a small size, each must beat chance by a stated margin."""

from __future__ import annotations

import importlib.util
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_learn_add_numbers_beats_chance(capsys) -> None:
    # 12 symbols: chance is 1/12 per character and ~1/12**3 per exact answer
    result = _example("learn_add_numbers").main([])
    assert result["characters"] >= 0.35, result  # > 4x chance
    assert result["exact"] >= 0.01, result  # > 10x chance
    assert "exact-answer accuracy" in capsys.readouterr().out


def test_transformer_translate_beats_chance(capsys) -> None:
    # 15 possible words (12, <end>, and two never right): chance is about 1/15 per word
    result = _example("transformer_translate").main(["--sentences", "600", "--epochs", "8"])
    assert result["words"] >= 0.4, result  # 6x chance
    assert result["exact"] >= 0.1, result
    assert "exact translations" in capsys.readouterr().out
