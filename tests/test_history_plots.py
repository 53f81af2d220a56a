"""History.plot / plot_history: what the figure holds (axes, labels, ticks, legends), on the
Agg backend; no pixels are compared."""

import matplotlib
import numpy as np
import pytest

from tapegrad.nn.models import History, plot_history, plot_loss

matplotlib.use("Agg")


def history(**curves):
    h = History()
    for epoch in range(len(next(iter(curves.values())))):
        h.on_epoch_end(epoch, {key: values[epoch] for key, values in curves.items()})
    return h


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def labels(ax):
    return [line.get_label() for line in ax.get_lines()]


@pytest.fixture
def fitted():
    return history(loss=[1.0, 0.6, 0.4], accuracy=[0.5, 0.7, 0.8], val_loss=[1.1, 0.8, 0.7],
                   val_accuracy=[0.4, 0.6, 0.7])


def test_a_string_is_one_curve_not_letters(fitted):
    fig = fitted.plot("loss")
    (ax,) = fig.axes
    assert labels(ax) == ["loss"]
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), [1.0, 0.6, 0.4])
    with pytest.raises(KeyError, match="no curve named 'los'"):
        fitted.plot("los")
    (ax,) = plot_history(fitted, "val_loss").axes  # the function too
    assert labels(ax) == ["val_loss"] and ax.get_ylabel() == "loss"


def test_a_string_with_an_image_extension_is_the_path(fitted, tmp_path):
    target = tmp_path / "out.png"
    fig = fitted.plot(str(target))
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [labels(ax) for ax in fig.axes] == [["loss", "val_loss"], ["accuracy", "val_accuracy"]]
    fitted.plot(tmp_path / "curves.PNG")  # a Path as the first argument, any case of the extension
    assert (tmp_path / "curves.PNG").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_one_labelled_axes_per_quantity_with_integer_epoch_ticks_and_legends(fitted):
    fig = fitted.plot(title="run 1")
    loss_ax, accuracy_ax = fig.axes
    assert fig.get_suptitle() == "run 1"
    for ax, quantity in ((loss_ax, "loss"), (accuracy_ax, "accuracy")):
        assert ax.get_xlabel() == "epoch"
        assert ax.get_ylabel() == quantity
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [quantity, f"val_{quantity}"]
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [1, 2, 3])  # epochs from 1


def test_each_metric_gets_its_own_axes_and_a_lone_curve_keeps_the_title_on_its_axes():
    h = history(loss=[2.0, 1.0], mse=[4.0, 3.0], accuracy=[0.1, 0.2], val_mse=[5.0, 4.0])
    assert [ax.get_ylabel() for ax in h.plot().axes] == ["loss", "mse", "accuracy"]
    assert labels(h.plot().axes[1]) == ["mse", "val_mse"]
    fig = plot_loss([3.0, 2.0, 1.0], title="dynamic mode gradient")
    (ax,) = fig.axes
    assert ax.get_title() == "dynamic mode gradient" and ax.get_ylabel() == "loss"
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert all(float(t).is_integer() for t in ticks)


def test_two_paths_are_refused(fitted, tmp_path):
    with pytest.raises(TypeError, match="two paths"):
        fitted.plot("a.png", tmp_path / "b.png")
