"""Render the notebooks at their DEMO size into docs/notebooks/ as Markdown pages with their outputs.

    python docs/render_notebooks.py --data-root ../shared/data            # all of them
    python docs/render_notebooks.py --data-root ../shared/data anogan     # one

Each notebook in ``notebooks/`` runs top to bottom on a fresh ``python3`` kernel with
``QUICK = False``, ``DEMO = True`` and ``DATA_DIR`` pointing at a real subset below ``--data-root``
(the layout of ``../shared/data``: ``apple2orange_dev``, ``isic_dev``, ``mnist_dev``). The run's
values go into a cell tagged ``injected-parameters`` after the parameters cell, as papermill does,
so the committed source notebooks stay as they are: without outputs, ``QUICK = True``. Each run
works in its own temporary folder. What is kept is a page, ``docs/notebooks/<name>.md`` (nbconvert's
Markdown export: the code, printed output and tables), with its pictures as PNG files in
``docs/notebooks/<name>_files/``: the repository holds no notebook with outputs. A DEMO run takes
minutes on two CPU cores; the page's first line says how long, on what data, and when.

Needs ``pip install -e ".[docs]"`` (nbconvert, nbclient, ipykernel).
"""

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIR = ROOT / "notebooks"
TARGET_DIR = ROOT / "docs" / "notebooks"
DATA = {
    "cyclegan_apple2orange": "apple2orange_dev",
    "skin_lesion_gans": "isic_dev",
    "lesion_harness": "isic_dev",
    "mnist_imbalance": "mnist_dev",
    "anogan": "mnist_dev",
    "sgan": "mnist_dev",
    "autoencoder": "mnist_dev",
    "latent": "mnist_dev",
    "progan": "isic_dev",
}
CELL_TIMEOUT = 3600
# TensorFlow's C++ log lines (written to the kernel's stderr before any Python setting can stop
# them) and tqdm's note that ipywidgets is missing: noise in a rendered page, not results.
CURSOR_UP = "\x1b[A"
BAR = re.compile(r"^(\S[^|]*?): +\d+%\|")  # a tqdm line: its description, then NN%|
TF_LOG = re.compile(r"[IWEF]\d{4} [\d:.]+ +\d+ \S+:\d+\] .*$")
NOISE = re.compile(
    r"^(WARNING: All log messages before absl.*|To enable the following instructions:.*"
    r"|.*TqdmWarning: IProgress not found.*|\s*from \.autonotebook import tqdm as notebook_tqdm)$"
)


def injected_cell(data_dir):
    source = (
        f"# Parameters of this rendering\nQUICK = False\nDEMO = True\nDATA_DIR = {data_dir!r}\n"
    )
    return nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})


def terminal_text(text):
    """A stream's text, readable: a progress bar's ``\\r`` rewrites end in their last state; a
    nested bar (tqdm moves the cursor up and down, which a page cannot) shows one line per run of
    updates, its last, with no empty line between bars; a bar that cleared itself leaves no line;
    the noise lines above are dropped."""
    kept = []
    for line in text.replace(CURSOR_UP, "").split("\n"):
        line = line.split("\r")[-1]
        cleaned = TF_LOG.sub("", line)
        if NOISE.match(cleaned) or (line and not cleaned.strip()):
            continue
        bar, above = BAR.match(cleaned), BAR.match(kept[-1]) if kept else None
        if bar and above and bar.group(1) == above.group(1):
            kept[-1] = cleaned  # the same bar again: keep its newest state
            continue
        kept.append(cleaned)
    bars = lambda i: 0 < i < len(kept) - 1 and all(BAR.match(kept[j]) for j in (i - 1, i + 1))
    return "\n".join(line for i, line in enumerate(kept) if line or not bars(i))


def clean_outputs(nb, replace=()):
    """Merge each cell's consecutive stream outputs (one per progress-bar update) and keep what a
    terminal would show of them, with each ``(old, new)`` of ``replace`` applied to the text."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        merged = []
        for output in cell.outputs:
            last = merged[-1] if merged else None
            if (
                output.get("output_type") == "stream"
                and last is not None
                and last.get("output_type") == "stream"
                and last["name"] == output["name"]
            ):
                last["text"] += output["text"]
            else:
                merged.append(output)
        for output in merged:
            if output.get("output_type") == "stream":
                output["text"] = terminal_text(output["text"])
                for old, new in replace:
                    output["text"] = output["text"].replace(old, new)
            for mime, value in output.get("data", {}).items():
                if mime.startswith("text/") and isinstance(value, str):
                    for old, new in replace:
                        value = value.replace(old, new)
                    output["data"][mime] = value
        cell.outputs = [o for o in merged if o.get("output_type") != "stream" or o["text"].strip()]
    return nb


def render(name, data_root, target_dir=TARGET_DIR, timeout=CELL_TIMEOUT):
    """Execute ``notebooks/<name>.ipynb`` at its DEMO size; returns (path, seconds)."""
    nb = nbformat.read(SOURCE_DIR / f"{name}.ipynb", as_version=4)
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    at = next(i for i, t in enumerate(tags) if "parameters" in t)
    data_dir = os.path.abspath(os.path.join(data_root, DATA[name]))
    nb.cells.insert(at + 1, injected_cell(data_dir))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"render_{name}_") as work:
        NotebookClient(
            nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": work}}
        ).execute()
    seconds = time.perf_counter() - start
    # Paths of this machine: the reader needs the data folder's name and paths below the notebook.
    shown = f"../shared/data/{DATA[name]}"
    clean_outputs(nb, replace=[(data_dir, shown), (work + os.sep, "")])
    nb.cells[at + 1].source = nb.cells[at + 1].source.replace(repr(data_dir), repr(shown))
    info = {
        "data": DATA[name],
        "seconds": round(seconds),
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d"),
    }
    return write_page(nb, name, info, target_dir), seconds


def write_page(nb, name, info, target_dir=TARGET_DIR):
    """Write the executed ``nb`` as ``<name>.md`` and ``<name>_files/*.png``; ``info``: its data,
    seconds, cpus and date, stated on the page's first line."""
    from nbconvert import MarkdownExporter  # the docs extra; the tests import terminal_text only

    files = f"{name}_files"
    body, resources = MarkdownExporter().from_notebook_node(
        nb, resources={"output_files_dir": files}
    )
    header = (
        f"_Rendered by `docs/render_notebooks.py` from [`notebooks/{name}.ipynb`]"
        f"(../../notebooks/{name}.ipynb) at its DEMO size on `../shared/data/{info['data']}`: "
        f"{info['seconds'] / 60:.1f} min on {info['cpus']} CPU cores, {info['date']}._\n\n"
    )
    target_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target_dir / files, ignore_errors=True)  # no picture of an earlier run stays
    (target_dir / files).mkdir()
    for relative, data in resources["outputs"].items():
        (target_dir / relative).write_bytes(data)
    path = target_dir / f"{name}.md"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(header + body, encoding="utf-8")
    os.replace(tmp, path)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebooks to render (default: all)")
    parser.add_argument(
        "--data-root", default=str(ROOT.parent / "shared" / "data"), help="the dev data's folder"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the kernels inherit it
    available = sorted(p.stem for p in SOURCE_DIR.glob("*.ipynb"))
    names = args.names or available
    for name in names:
        if name not in available or name not in DATA:
            parser.error(f"no notebook {name!r} with known data; choose from {available}")
        folder = os.path.join(args.data_root, DATA[name])
        if not os.path.isdir(folder):
            parser.error(f"{name}: data folder {folder} not found (--data-root)")
    for name in names:
        path, seconds = render(name, args.data_root)
        print(f"{name}: {seconds / 60:.1f} min -> {os.path.relpath(path, ROOT)}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
