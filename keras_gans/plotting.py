"""Every figure keras_gans writes: image grids, loss curves, ROC curves, confusion matrices.

Models and trainers never call matplotlib themselves; they hand arrays to these functions.
Images are float arrays in [-1, 1] (or uint8) shaped ``(n, h, w, c)``.
"""

import csv
import os

import matplotlib

matplotlib.use("Agg")  # files only: trainers run on servers and in CI without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from data_loaders.images import to_uint8  # noqa: E402


def _prepare(images, value_range):
    images = np.asarray(images)
    images = images if images.dtype == np.uint8 else to_uint8(images, value_range)
    return images[..., 0] if images.shape[-1] == 1 else images


def _save(fig, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, bbox_inches="tight", dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def save_image_grid(images, path, rows, cols, titles=None, row_labels=None, value_range=(-1, 1)):
    """Save ``rows * cols`` images as one grid (row-major), optional column titles / row labels."""
    images = _prepare(images, value_range)
    fig, axes = plt.subplots(rows, cols, figsize=(1.8 * cols, 1.8 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < len(images):
            ax.imshow(images[i], cmap="gray" if images[i].ndim == 2 else None, vmin=0, vmax=255)
        ax.axis("off")
    for c, title in enumerate(titles or []):
        axes[0, c].set_title(title, fontsize=9)
    for r, label in enumerate(row_labels or []):
        axes[r, 0].text(-0.1, 0.5, label, transform=axes[r, 0].transAxes, ha="right", va="center")
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


def plot_losses(csv_path, path, x="step", groups=None, smooth=0):
    """Plot the columns of a losses CSV against ``x``; ``groups`` puts columns on shared panels.

    ``groups`` maps a panel title to a list of column names; by default every column gets one panel.
    ``smooth`` > 1 overlays a moving average of that many steps.
    """
    data = read_loss_csv(csv_path) if os.path.exists(csv_path) else {}
    if not data or x not in data:
        return None
    names = [k for k in data if k not in (x, "epoch", "time")]
    groups = groups or {name: [name] for name in names}
    groups = {t: [c for c in cols if c in data] for t, cols in groups.items()}
    groups = {t: cols for t, cols in groups.items() if cols}
    fig, axes = plt.subplots(len(groups), 1, figsize=(8, 2.4 * len(groups)), squeeze=False)
    for ax, (title, cols) in zip(axes[:, 0], groups.items()):
        for col in cols:
            mask = np.isfinite(data[col])
            ax.plot(data[x][mask], data[col][mask], label=col, alpha=0.4 if smooth > 1 else 1)
            if smooth > 1 and mask.sum() >= smooth:
                kernel = np.ones(smooth) / smooth
                ax.plot(data[x][mask][smooth - 1 :], np.convolve(data[col][mask], kernel, "valid"))
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc="upper right")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel(x)
    fig.tight_layout()
    return _save(fig, path)


def plot_roc(curves, path, title="ROC"):
    """``curves``: ``{label: (fpr, tpr, auc)}``; one line each plus the chance diagonal."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for label, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, label=f"{label} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def plot_confusion(matrix, labels, path, title="Confusion matrix"):
    """A confusion matrix with counts in the cells (rows: true class, columns: predicted)."""
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2, 1.2 * len(labels) + 1.5))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        color = "white" if v > matrix.max() / 2 else "black"
        ax.text(j, i, f"{v:g}", ha="center", va="center", color=color)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return _save(fig, path)


def plot_bars(values, errors, path, title="", ylabel=""):
    """Grouped bar chart: ``values[group][series]`` with symmetric ``errors`` of the same shape."""
    groups = list(values)
    series = list(next(iter(values.values())))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(5, 1.5 * len(groups)), 3.5))
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
    colored = (plt.get_cmap("jet")(np.clip(heat, 0, 1))[..., :3] * 255).astype(np.float32)
    return (alpha * colored + (1 - alpha) * base).astype(np.uint8)
