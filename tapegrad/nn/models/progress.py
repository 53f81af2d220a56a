"""The progress display of ``fit`` / ``evaluate`` / ``predict`` (Keras style).

* verbose 1: a bar per epoch, ``12/45 [=====>........] - ETA: 2s - loss: 0.3456``,
  redrawn in place with carriage returns on a terminal (at most every 0.1 s, so the
  display costs nothing measurable); when stdout is not a terminal (a log file, a
  pipe, a captured stream) only the final line of each bar is printed.
* verbose 2: one line per epoch: ``Epoch 3/10 - 1s - 12ms/step - loss: ... - val_loss: ...``.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any, Callable

_WIDTH = 30
_INTERVAL = 0.1


def format_value(value: float) -> str:
    """Keras' number format: 4 decimals, scientific for tiny magnitudes."""
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.4e}"


def format_logs(logs: dict[str, Any]) -> str:
    return "".join(f" - {k}: {format_value(float(v))}" for k, v in logs.items() if _is_number(v))


def _is_number(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def format_duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{int(seconds)}s"


def _per_step(seconds: float, steps: int) -> str:
    per = seconds / max(steps, 1)
    if per >= 1:
        return f"{per:.0f}s/step"
    if per >= 1e-3:
        return f"{per * 1e3:.0f}ms/step"
    return f"{per * 1e6:.0f}us/step"


def is_interactive(stream: IO[str]) -> bool:
    """Whether carriage-return updates are shown: a terminal, or a Jupyter kernel."""
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):
        return False
    return "ipykernel" in sys.modules


class Progbar:
    """One progress bar (one epoch, or one evaluate/predict pass) for ``target`` steps
    (``None`` when unknown, e.g. a dataset without ``len``)."""

    def __init__(self, target: int | None, verbose: int = 1, stream: IO[str] | None = None) -> None:
        self.target = target
        self.verbose = verbose
        self.stream = sys.stdout if stream is None else stream
        self.dynamic = is_interactive(self.stream)
        self.start = time.perf_counter()
        self._last = 0.0
        self._width = 0

    def due(self) -> bool:
        """Whether an in-place redraw is due now (cheap: call it after every step)."""
        if not self.dynamic or self.verbose != 1:
            return False
        now = time.perf_counter()
        if now - self._last < _INTERVAL:
            return False
        self._last = now
        return True

    def _bar(self, current: int) -> str:
        if self.target:
            digits = len(str(self.target))
            if current >= self.target:
                fill = "=" * _WIDTH
            else:
                fill = "=" * min(int(_WIDTH * current / self.target), _WIDTH - 1) + ">"
            return f"{current:{digits}d}/{self.target} [{fill}{'.' * (_WIDTH - len(fill))}]"
        return f"{current}/Unknown"

    def update(self, current: int, logs: dict[str, Any]) -> None:
        """Redraw the bar in place (verbose 1 on a terminal only)."""
        elapsed = time.perf_counter() - self.start
        if self.target and current:
            eta = f" - ETA: {format_duration(elapsed / current * (self.target - current))}"
        else:
            eta = f" - {format_duration(elapsed)}"
        self._write("\r" + self._bar(current) + eta + format_logs(logs), final=False)

    def finish(self, current: int, logs: dict[str, Any]) -> None:
        """The final line of the bar (verbose 1) with the elapsed time and step time."""
        if self.verbose != 1:
            return
        elapsed = time.perf_counter() - self.start
        line = f"{self._bar(current)} - {format_duration(elapsed)} {_per_step(elapsed, current)}" + format_logs(logs)
        self._write(("\r" if self.dynamic else "") + line, final=True)

    def _write(self, text: str, final: bool) -> None:
        # pad over the remains of a longer previous line
        visible = len(text.lstrip("\r"))
        pad = " " * max(self._width - visible, 0) if self.dynamic else ""
        self._width = 0 if final else visible
        self.stream.write(text + pad + ("\n" if final else ""))
        self.stream.flush()


def epoch_line(epoch: int, epochs: int, seconds: float, steps: int, logs: dict[str, Any]) -> str:
    """The verbose-2 line of one epoch."""
    return (f"Epoch {epoch + 1}/{epochs} - {format_duration(seconds)} - {_per_step(seconds, steps)}"
            + format_logs(logs))


Printer = Callable[[str], None]
