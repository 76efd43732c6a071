"""Every figure keras_gans writes: image grids, loss curves, ROC curves, confusion matrices, and the
notebooks' image display (:func:`show`, :func:`latest_image`).

Models and trainers never call matplotlib themselves; they hand arrays to these functions.
Images are float arrays in [-1, 1] (or uint8) shaped ``(n, h, w, c)``.

Figures are :class:`matplotlib.figure.Figure` objects drawn by the Agg canvas, never pyplot's: the
files come out the same on a server without a display, and importing this module leaves the
backend a notebook chose untouched.
"""

import csv
import glob
import io
import os

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay

from data_loaders.images import to_uint8
from keras_gans import reports

SKIP_FRACTION = 0.1  # the first 10% of a loss curve (the start-up spikes) does not set the y-axis
GAP = 0.06  # the white between the cells of an image grid, as a share of a cell


def _prepare(images, value_range):
    images = np.asarray(images)
    images = images if images.dtype == np.uint8 else to_uint8(images, value_range)
    return images[..., 0] if images.shape[-1] == 1 else images


def _figure(figsize):
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path):
    """Write ``fig`` atomically (:func:`keras_gans.reports.write_bytes`)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=os.path.splitext(path)[1][1:] or "png", bbox_inches="tight", dpi=100)
    return reports.write_bytes(path, buffer.getvalue())


def _mosaic(rows, cols):
    """``(mosaic, cell_h, cell_w, gap)``: every image of ``rows`` in its cell of one RGB array
    (row-major, each row left-aligned), white between and after the images."""
    cell_h = max(im.shape[0] for r in rows for im in r)
    cell_w = max(im.shape[1] for r in rows for im in r)
    gap = max(1, round(GAP * max(cell_h, cell_w)))
    shape = (len(rows) * (cell_h + gap) - gap, cols * (cell_w + gap) - gap, 3)
    mosaic = np.full(shape, 255, dtype=np.uint8)
    for r, images in enumerate(rows):
        for c, im in enumerate(images):
            h, w = im.shape[:2]
            y = r * (cell_h + gap) + (cell_h - h) // 2
            x = c * (cell_w + gap) + (cell_w - w) // 2
            mosaic[y : y + h, x : x + w] = im[..., None] if im.ndim == 2 else im
    return mosaic, cell_h, cell_w, gap


def save_image_grid(images, path, rows, cols, titles=None, row_labels=None, value_range=(-1, 1)):
    """Save ``rows * cols`` images as one grid (row-major), optional column titles / row labels."""
    images = images[: rows * cols]
    grid = [images[r * cols : (r + 1) * cols] for r in range(rows)]
    return save_image_rows(grid, path, titles, row_labels, value_range, cols=cols)


def save_image_rows(rows, path, titles=None, row_labels=None, value_range=(-1, 1), cols=None):
    """Save rows of images of different lengths as one grid, each row left-aligned (blank cells
    after it); ``titles`` name the columns, ``row_labels`` the rows (a latent-arithmetic figure).

    One picture on one axes, not an axes per image: an axes costs about 9 ms to make, which made
    a 5x5 grid of 16 px images 0.24 s to write (0.09 s now), and ProGAN writes one per phase."""
    rows = [_prepare(r, value_range) if len(r) else [] for r in rows]
    cols = cols or max(len(r) for r in rows)
    mosaic, cell_h, cell_w, gap = _mosaic(rows, cols)
    fig = _figure((1.3 * cols, 1.3 * len(rows)))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(mosaic, interpolation="nearest")
    ax.axis("off")
    for c, title in enumerate(titles or []):
        x = c * (cell_w + gap) + cell_w / 2
        ax.text(x, -gap, title, ha="center", va="bottom", fontsize=9)
    for r, label in enumerate(row_labels or []):
        y = r * (cell_h + gap) + cell_h / 2
        ax.text(-2 * gap, y, label, ha="right", va="center")
    return _save(fig, path)


def read_loss_csv(csv_path):
    """The columns of a losses CSV as ``{name: np.ndarray}`` (missing cells become NaN)."""
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    columns = {}
    for key in rows[0]:
        columns[key] = np.array(
            [float(r[key]) if r.get(key) not in ("", None) else np.nan for r in rows]
        )
    return columns


def smooth_curve(values, window):
    """The centred moving average of ``values`` over ``window`` points (fewer at the two ends)."""
    values = np.asarray(values, dtype=np.float64)
    n, half = len(values), max(int(window), 1) // 2
    sums = np.concatenate([[0.0], np.cumsum(values)])
    lo, hi = np.maximum(np.arange(n) - half, 0), np.minimum(np.arange(n) + half + 1, n)
    return (sums[hi] - sums[lo]) / (hi - lo)


def robust_limits(curves, skip=SKIP_FRACTION):
    """``(low, high, log)``: y-limits that show every curve's trend after the first steps.

    The 1st to 99th percentile of the values after each curve's first ``skip`` share, with a
    margin; on a log axis (``log`` True) when all those values are positive and the curves' medians
    lie over 10x apart, as a weighted sum's beside its terms. ``None`` if nothing is left.
    """
    later = [c[int(len(c) * skip) :] if len(c) >= 20 else c for c in curves]
    later = [c for c in later if len(c)]
    if not later:
        return None
    values, medians = np.concatenate(later), [np.median(c) for c in later]
    log = bool(values.min() > 0 and max(medians) > 10 * min(medians))
    lo, hi = np.percentile(np.log10(values) if log else values, [1, 99])
    margin = 0.1 * (hi - lo) or 0.1 * max(abs(hi), 1.0)
    lo, hi = lo - margin, hi + margin
    return (10**lo, 10**hi, True) if log else (lo, hi, False)


def loss_figure(data, x="step", groups=None, smooth=None):
    """The loss curves of ``data`` (``{column: values}``, as :func:`read_loss_csv` returns).

    Each column is drawn faint as logged and solid as its moving average over ``smooth`` points
    (default: a 25th of the curve). The y-axis of each panel follows the later steps, on a log
    scale for curves of different sizes (:func:`robust_limits`), so neither the first steps'
    spikes nor a large loss squash a trend; a note says how far the clipped values reach.
    """
    names = [k for k in data if k not in (x, "epoch", "time")]
    groups = groups or {name: [name] for name in names}
    groups = {t: [c for c in cols if c in data] for t, cols in groups.items()}
    groups = {t: cols for t, cols in groups.items() if cols}
    if not groups:
        return None
    fig = _figure((8, 2.4 * len(groups)))
    axes = fig.subplots(len(groups), 1, squeeze=False)
    for ax, (title, cols) in zip(axes[:, 0], groups.items()):
        shown = []
        for col in cols:
            mask = np.isfinite(data[col])
            steps, values = data[x][mask], data[col][mask]
            window = smooth or max(len(values) // 25, 1)
            (raw,) = ax.plot(steps, values, lw=0.6, alpha=0.25 if window > 1 else 1.0)
            if window > 1:
                ax.plot(steps, smooth_curve(values, window), color=raw.get_color(), label=col)
            else:
                raw.set_label(col)
            shown.append(values)
        limits = robust_limits(shown)
        if limits is not None:
            low, high, log = limits
            ax.set_yscale("log" if log else "linear")
            ax.set_ylim(low, high)
            top = max((v.max() for v in shown if len(v)), default=high)
            if top > high:
                note = f"y-axis clipped: values reach {top:.3g}"
                ax.text(0.01, 0.96, note, transform=ax.transAxes, fontsize=7, va="top")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc="upper right")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel(x)
    fig.tight_layout()
    return fig


def plot_losses(csv_path, path, x="step", groups=None, smooth=None):
    """Save :func:`loss_figure` of a losses CSV to ``path``; ``groups`` maps a panel title to a list
    of column names (default: one panel per column). Returns ``path``, or ``None`` with no data."""
    data = read_loss_csv(csv_path) if os.path.exists(csv_path) else {}
    fig = loss_figure(data, x, groups, smooth) if x in data else None
    return None if fig is None else _save(fig, path)


def plot_roc(curves, path, title="ROC"):
    """``curves``: ``{label: (fpr, tpr, auc)}``; one line each plus the chance diagonal."""
    fig = _figure((5, 5))
    ax = fig.subplots()
    for i, (label, (fpr, tpr, auc)) in enumerate(curves.items()):
        display = RocCurveDisplay(fpr=np.asarray(fpr), tpr=np.asarray(tpr))
        display.plot(ax=ax, name=f"{label} (AUC {auc:.3f})", plot_chance_level=i == len(curves) - 1)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def plot_confusion(matrix, labels, path, title="Confusion matrix"):
    """A confusion matrix with counts in the cells (rows: true class, columns: predicted)."""
    matrix = np.asarray(matrix)
    fig = _figure((1.2 * len(labels) + 2, 1.2 * len(labels) + 1.5))
    ax = fig.subplots()
    display = ConfusionMatrixDisplay(matrix, display_labels=list(labels))
    display.plot(ax=ax, cmap="Blues", values_format="g", colorbar=False)
    ax.set_title(title)
    return _save(fig, path)


def plot_bars(values, errors, path, title="", ylabel=""):
    """Grouped bar chart: ``values[group][series]`` with symmetric ``errors`` of the same shape."""
    groups = list(values)
    series = list(next(iter(values.values())))
    width = 0.8 / len(series)
    fig = _figure((max(5, 1.5 * len(groups)), 3.5))
    ax = fig.subplots()
    for k, name in enumerate(series):
        xs = np.arange(len(groups)) + k * width
        ys = [values[g][name] for g in groups]
        es = [errors[g][name] for g in groups] if errors else None
        ax.bar(xs, ys, width, yerr=es, capsize=3, label=name)
    ax.set_xticks(np.arange(len(groups)) + width * (len(series) - 1) / 2, groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def overlay_heatmap(image, heat, alpha=0.5, value_range=(-1, 1)):
    """Blend a [0, 1] heat map (jet colormap) over an image; returns uint8 RGB."""
    base = _prepare(image[None], value_range)[0]
    base = np.stack([base] * 3, -1) if base.ndim == 2 else base
    heat = np.asarray(heat, dtype=np.float32)
    heat = heat[..., 0] if heat.ndim == 3 else heat
    colored = (matplotlib.colormaps["jet"](np.clip(heat, 0, 1))[..., :3] * 255).astype(np.float32)
    return (alpha * colored + (1 - alpha) * base).astype(np.uint8)


# --- notebooks ------------------------------------------------------------------------------------
def latest_image(folder, pattern="*.png"):
    """The newest file of ``folder`` matching ``pattern`` (a trainer's last sample grid in its
    ``images/``); ties go to the last name, so a step-numbered grid wins over an earlier one."""
    paths = glob.glob(os.path.join(folder, pattern))
    if not paths:
        raise FileNotFoundError(f"no {pattern} in {folder}")
    return max(paths, key=lambda p: (os.path.getmtime(p), p))


def show(*paths, base=None):
    """Display image files in a notebook, each under its path relative to ``base`` (as given when
    ``base`` is ``None``). Returns nothing, so that a cell ending in it shows only the images."""
    from IPython.display import Image, display  # only notebooks have (and need) IPython

    for path in paths:
        print(os.path.relpath(path, base) if base else path)
        display(Image(filename=os.fspath(path)))
