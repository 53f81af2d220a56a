"""History (what ``fit`` returns) and loss-curve plots on matplotlib.

matplotlib is an optional dependency (``pip install matplotlib``): it is imported only
when a plot is asked for, and without a display the non-interactive Agg backend is
used, so plots can always be saved to a PNG.
"""

from __future__ import annotations

import os
import sys
from typing import Any, ItemsView, Iterable, Iterator, KeysView, Mapping, Sequence, ValuesView

from .callback_base import Callback


class History(Callback):
    """Records the epoch logs of ``fit``: ``history.history`` maps ``"loss"``, the metric
    names, ``"val_loss"`` and ``"val_<metric>"`` to per-epoch lists of floats;
    ``history.epoch`` lists the epoch indices (0-based) and ``history.params`` the fit
    parameters. As in Rindow, where ``fit`` returns that dict, the History reads like it:
    ``history["accuracy"]``, ``"val_loss" in history``, ``list(history)``, ``history.items()``."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.epoch = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self) -> str:
        return f"<History epochs={len(self.epoch)} keys={list(self.history)}>"

    # -- the dict of curves (Rindow's fit returns it) ---------------------------------------
    def __getitem__(self, key: str) -> list[float]:
        try:
            return self.history[key]
        except KeyError:
            raise KeyError(f"History has no {key!r}; it has {sorted(self.history)}") from None

    def __contains__(self, key: object) -> bool:
        return key in self.history

    def __iter__(self) -> Iterator[str]:
        return iter(self.history)

    def __len__(self) -> int:
        return len(self.history)

    def __bool__(self) -> bool:  # a History is an object first: truthy even before any epoch
        return True

    def keys(self) -> KeysView[str]:
        return self.history.keys()

    def values(self) -> ValuesView[list[float]]:
        return self.history.values()

    def items(self) -> ItemsView[str, list[float]]:
        return self.history.items()

    def get(self, key: str, default: Any = None) -> Any:
        return self.history.get(key, default)

    def plot(
        self,
        keys: Sequence[str] | str | None = None,
        path: str | os.PathLike | None = None,
        *,
        title: str | None = None,
        show: bool | None = None,
    ) -> Any:
        """Plot the per-epoch curves (default: every key), one axes per quantity with
        ``val_x`` beside ``x``. ``history.plot("loss")`` plots one curve;
        ``history.plot("curves.png")`` saves every curve there. See :func:`plot_history`."""
        return plot_history(self, keys=keys, path=path, title=title, show=show)


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ImportError(
            "plotting needs matplotlib, an optional dependency of tapegrad: pip install matplotlib"
        ) from None
    if not os.environ.get("MPLBACKEND") and not _has_display():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _has_display() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _curves(history: Any) -> dict[str, list[float]]:
    if isinstance(history, History):
        return history.history
    if isinstance(history, Mapping):
        return {str(k): list(v) for k, v in history.items()}
    if isinstance(history, Iterable):
        return {"loss": [float(v) for v in history]}
    raise TypeError(f"plot_history: expected a History, a dict of lists or a list of numbers, "
                    f"got {type(history).__name__}")


# A string given as ``keys`` is a path when it ends with one of these (matplotlib's formats).
_IMAGE_SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg", ".eps", ".ps", ".tif", ".tiff", ".webp", ".pgf")


def _keys_and_path(keys: Any, path: Any) -> tuple[list[str] | None, Any]:
    """``plot("loss")`` is one curve and ``plot("out.png")`` a path, not lists of letters."""
    if isinstance(keys, os.PathLike) or (isinstance(keys, str) and keys.lower().endswith(_IMAGE_SUFFIXES)):
        if path is not None:
            raise TypeError(f"plot_history: got two paths, {os.fspath(keys)!r} and {os.fspath(path)!r}")
        return None, keys
    if isinstance(keys, str):
        return [keys], path
    return (None if keys is None else list(keys)), path


def _panels(keys: Sequence[str]) -> dict[str, list[str]]:
    """One panel per quantity: ``val_x`` goes with ``x``, in the order of first appearance."""
    panels: dict[str, list[str]] = {}
    for key in keys:
        panels.setdefault(key.removeprefix("val_"), []).append(key)
    return panels


def plot_history(
    history: History | Mapping[str, Sequence[float]] | Sequence[float],
    keys: Sequence[str] | str | None = None,
    path: str | os.PathLike | None = None,
    *,
    title: str | None = None,
    show: bool | None = None,
) -> Any:
    """Plot loss (and metric) curves per epoch, as Rindow's ``$plt->plot(...)`` does.

    ``history`` is a :class:`History`, a dict of per-epoch lists, or a plain list of
    losses (plotted with the label ``"loss"``). ``keys`` picks the curves (default:
    all): a list of names, or one name as a string; a string ending in an image
    extension (``"curves.png"``) is taken as ``path``. Each quantity gets its own axes
    (loss, accuracy, each metric), with its validation curve (``val_...``) beside it, a
    legend, the quantity as the y label, and whole epochs (from 1) on the x axis.
    With ``path`` the figure is saved there (the format from its extension) and returned
    without being shown; otherwise it is shown when ``show`` is true or, by default,
    when an interactive backend is in use. Returns the matplotlib ``Figure``.
    Raises ``ImportError`` saying ``pip install matplotlib`` when it is missing.
    """
    curves = _curves(history)
    keys, path = _keys_and_path(keys, path)
    if keys is None:
        keys = list(curves)
    else:
        missing = [k for k in keys if k not in curves]
        if missing:
            raise KeyError(f"plot_history: no curve named {missing[0]!r}; available: {list(curves)}")
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    panels = _panels(keys) or {"": []}
    columns = min(len(panels), 3)
    rows = -(-len(panels) // columns)
    fig, grid = plt.subplots(rows, columns, figsize=(5.0 * columns, 3.6 * rows), squeeze=False,
                             layout="constrained")
    axes = list(grid.flat)
    for ax, (quantity, members) in zip(axes, panels.items()):
        for key in members:
            values = curves[key]
            ax.plot(range(1, len(values) + 1), values, marker="." if len(values) < 30 else None, label=key)
        ax.set_xlabel("epoch")
        ax.set_ylabel(quantity)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if members:
            ax.legend()
    for ax in axes[len(panels):]:
        ax.remove()
    if title is not None:
        if len(panels) == 1:
            axes[0].set_title(title)
        else:
            fig.suptitle(title)
    if path is not None:
        fig.savefig(os.fspath(path))
        plt.close(fig)
    elif show or (show is None and "agg" not in plt.get_backend().lower()):
        plt.show()
    return fig


def plot_loss(
    losses: Sequence[float],
    path: str | os.PathLike | None = None,
    *,
    label: str = "loss",
    title: str | None = None,
    show: bool | None = None,
) -> Any:
    """The loss-curve helper for a custom training loop: plot a list of per-epoch
    losses with one legend entry (``label``), as the seeds do."""
    return plot_history({label: list(losses)}, path=path, title=title, show=show)
