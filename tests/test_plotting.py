"""keras_gans.plotting: readable loss curves, the scikit-learn ROC / confusion displays, the
notebook helpers, and no backend switch on import."""

import os

import numpy as np
import pytest
from PIL import Image

from keras_gans import plotting, reports


def _spiky_log(path, steps=300):
    """A loss log whose first steps reach 78 and 220, then settle near 0.5 and 3."""
    rng = np.random.default_rng(0)
    d = 0.5 + 0.1 * rng.standard_normal(steps)
    g = 3.0 - np.linspace(0, 1, steps) + 0.3 * rng.standard_normal(steps)
    d[:3], g[:3] = (78, 40, 12), (220, 90, 30)
    rows = [{"step": i + 1, "epoch": 0, "D_loss": d[i], "G_loss": g[i]} for i in range(steps)]
    reports.write_csv(path, rows)
    return d, g


def test_loss_axes_leave_out_the_first_spikes_and_draw_a_smoothed_line(tmp_path):
    d, g = _spiky_log(tmp_path / "losses.csv")
    fig = plotting.loss_figure(plotting.read_loss_csv(tmp_path / "losses.csv"))
    for ax, values in zip(fig.axes, (d, g)):
        low, high = ax.get_ylim()
        assert high < 0.1 * values.max()  # the spike is off the axis...
        later = values[30:]
        assert np.mean((later >= low) & (later <= high)) > 0.97  # ...the later steps are on it
        raw, smoothed = ax.get_lines()
        assert raw.get_alpha() < 0.5 and smoothed.get_alpha() in (None, 1.0)
        assert smoothed.get_label() == ax.get_title()
        assert np.std(np.diff(smoothed.get_ydata()[30:])) < 0.2 * np.std(np.diff(later))
        assert any("clipped" in t.get_text() for t in ax.texts)
    assert plotting.plot_losses(tmp_path / "losses.csv", tmp_path / "losses.png")
    assert (tmp_path / "losses.png").stat().st_size > 0


def test_a_short_loss_log_is_drawn_whole(tmp_path):
    reports.write_csv(tmp_path / "l.csv", [{"step": i, "loss": v} for i, v in enumerate((9, 1, 2))])
    (ax,) = plotting.loss_figure(plotting.read_loss_csv(tmp_path / "l.csv")).axes
    assert ax.get_ylim()[0] < 1 and ax.get_ylim()[1] > 9 and not ax.texts
    np.testing.assert_allclose(plotting.smooth_curve([0, 3, 6, 9], 3), [1.5, 3, 6, 7.5])


def test_a_panel_of_curves_of_different_sizes_gets_a_log_axis():
    total, term = np.full(40, 10.0), np.linspace(0.5, 0.2, 40)  # a weighted sum beside a term
    low, high, log = plotting.robust_limits([total, term])
    assert log and low < 0.2 and high > 10
    assert plotting.robust_limits([total, 2 * total])[2] is False
    assert plotting.robust_limits([total - 10.5, term])[2] is False  # not all positive


def test_roc_and_confusion_come_from_scikit_learn_displays(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(plotting, "_save", lambda fig, path: figures.append(fig) or path)
    curves = {"real": ([0, 0.5, 1], [0, 0.75, 1], 0.625), "gan": ([0, 1], [0, 1], 0.5)}
    plotting.plot_roc(curves, str(tmp_path / "roc.png"), title="ROC")
    plotting.plot_confusion([[7, 1], [2, 30]], ["nevus", "melanoma"], str(tmp_path / "c.png"))
    roc, confusion = (fig.axes[0] for fig in figures)
    legend = [t.get_text() for t in roc.get_legend().get_texts()]
    assert legend[:2] == ["real (AUC 0.625)", "gan (AUC 0.500)"] and "Chance" in legend[-1]
    assert roc.get_xlabel().startswith("False Positive Rate")  # scikit-learn's label
    assert sorted(t.get_text() for t in confusion.texts) == ["1", "2", "30", "7"]
    assert [t.get_text() for t in confusion.get_xticklabels()] == ["nevus", "melanoma"]


def test_importing_plotting_keeps_the_backend(tmp_path):
    """A notebook's backend survives the module's import code (run again here) and its figures."""
    import importlib

    import matplotlib

    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        module = importlib.reload(plotting)
        module.save_image_grid([[[[0.0]]]], str(tmp_path / "grid.png"), 1, 1)
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)
    assert (tmp_path / "grid.png").stat().st_size > 0


def test_notebook_helpers_show_and_latest_image(tmp_path, monkeypatch, capsys):
    display = pytest.importorskip("IPython.display")
    shown = []
    monkeypatch.setattr(display, "display", shown.append)
    images = tmp_path / "run" / "images"
    for i, step in enumerate(("000010", "000002")):  # the later grid is the older file
        plotting.save_image_grid(np.zeros((1, 4, 4, 1)), images / f"{step}.png", 1, 1)
        os.utime(images / f"{step}.png", (100 + i, 100 + i))
    assert plotting.latest_image(images) == str(images / "000002.png")
    assert plotting.latest_image(images, "*10.png") == str(images / "000010.png")
    with pytest.raises(FileNotFoundError, match="no \\*.jpg in"):
        plotting.latest_image(images, "*.jpg")
    plotting.show(images / "000010.png", plotting.latest_image(images), base=tmp_path / "run")
    assert capsys.readouterr().out.split() == ["images/000010.png", "images/000002.png"]
    assert [type(s).__name__ for s in shown] == ["Image", "Image"]


def _solid(*colors, size=10):
    """One ``size`` x ``size`` uint8 image of each RGB colour."""
    return np.stack([np.full((size, size, 3), c, np.uint8) for c in colors])


def test_a_grid_puts_each_image_in_its_cell_and_leaves_the_rest_white(tmp_path):
    red, green, blue = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    gray = plotting._prepare(np.zeros((1, 10, 10, 1)), (-1, 1))  # one channel, 0 in [-1, 1]
    mosaic, h, w, gap = plotting._mosaic([_solid(red, green), gray, []], cols=2)
    assert (h, w, gap) == (10, 10, 1) and mosaic.shape == (3 * 11 - 1, 2 * 11 - 1, 3)
    assert (mosaic[:10, :10] == red).all() and (mosaic[:10, 11:] == green).all()
    assert (mosaic[11:21, :10] == gray[0, 0, 0]).all()  # drawn gray in all three channels
    assert (mosaic[11:21, 11:] == 255).all() and (mosaic[22:] == 255).all()  # blank cells
    assert (mosaic[10] == 255).all() and (mosaic[:, 10] == 255).all()  # the gaps

    path = tmp_path / "grid.png"
    plotting.save_image_grid(_solid(blue, red), str(path), 1, 2)
    pixels = np.asarray(Image.open(path).convert("RGB"))
    cols = {c: np.nonzero((pixels == c).all(-1))[1] for c in (blue, red)}
    assert min(len(c) for c in cols.values()) > 50 * 50  # both drawn large, left to right
    assert cols[blue].max() < cols[red].min()
