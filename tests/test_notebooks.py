"""The notebooks: committed without outputs, one ``parameters`` cell each, and each one runs.

Every notebook in ``notebooks/`` is executed top to bottom in quick mode (as committed) on a fresh
``python3`` kernel with nbclient, in a temporary working directory; any cell error fails the test.
The kernel inherits the environment, so ``KERAS_GANS_HOME`` (tests/conftest.py) keeps the built-in
sample data out of the user's cache.
"""

import importlib.util
import io
import os
import re
from pathlib import Path

import nbformat
import pytest
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = (
    "cyclegan_apple2orange",
    "skin_lesion_gans",
    "lesion_harness",
    "mnist_imbalance",
    "anogan",
    "autoencoder",
    "latent",
    "progan",
    "sgan",
)
CELL_TIMEOUT = 600  # seconds per cell; quick mode takes about a minute per notebook in all
# Notebooks whose quick mode trains for hundreds of steps run traced, as a user's run does: there a
# trace costs less than eager steps (autoencoder 35 s instead of 55, sgan 21 instead of 41, latent
# 23 instead of 32, measured on 2 cores). The others take a few steps each and run eagerly, as the
# rest of the suite does (tests/conftest.py's default, inherited by the kernel).
TRACED = ("anogan", "autoencoder", "latent", "mnist_imbalance", "sgan")


def read(name):
    return nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)


def parameter_cells(nb):
    return [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]


def test_every_notebook_is_tested():
    assert sorted(p.stem for p in NOTEBOOK_DIR.glob("*.ipynb")) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_clean(name):
    """Valid nbformat, a python3 kernel, no outputs, one ``parameters`` cell with ``QUICK = True``."""
    nb = read(name)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: a cell has outputs; clear them before committing"
            assert cell.execution_count is None, f"{name}: clear the execution counts"
    params = parameter_cells(nb)
    assert len(params) == 1, f"{name}: expected one cell tagged 'parameters', got {len(params)}"
    assert params[0].cell_type == "code"
    assert re.search(r"^QUICK\s*=\s*True\b", params[0].source, re.M), (
        f"{name}: the parameters cell must set QUICK = True"
    )
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert first_code is params[0], f"{name}: the parameters cell must be the first code cell"
    assert nb.cells[0].cell_type == "markdown", f"{name}: start with the report's story"


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_quick_mode(name, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    # The kernel imports keras_gans from this checkout even when it is not installed.
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), path])))
    if name in TRACED:
        monkeypatch.setenv("KERAS_GANS_RUN_EAGERLY", "0")
    nb = read(name)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    pictures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pictures) >= 3, f"{name} showed {len(pictures)} picture(s)"
    assert (tmp_path / "output").is_dir(), f"{name} wrote nothing under its working directory"


RENDERED_DIR = ROOT / "docs" / "notebooks"
CODE_BLOCK = re.compile(r"^```python\n(.*?)\n```$", re.M | re.S)
PICTURE = re.compile(r"!\[png\]\(([^)]+)\)")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_rendered_page_matches_its_notebook(name):
    """docs/notebooks/<name>.md is this notebook run at its DEMO size (docs/render_notebooks.py):
    the same code after the injected DEMO parameters, its pictures beside it, no error."""
    source = read(name)
    assert re.search(r"^DEMO\s*=\s*False\b", parameter_cells(source)[0].source, re.M), (
        f"{name}: the parameters cell must set DEMO = False"
    )
    path = RENDERED_DIR / f"{name}.md"
    assert path.is_file(), f"{name}: no rendered page; run python docs/render_notebooks.py {name}"
    page = path.read_text(encoding="utf-8")
    blocks = CODE_BLOCK.findall(page)
    injected = [b for b in blocks if b.startswith("# Parameters of this rendering")]
    assert len(injected) == 1 and re.search(r"^DEMO = True$", injected[0], re.M)
    code = [c.source for c in source.cells if c.cell_type == "code"]
    assert [b for b in blocks if b not in injected] == code, (
        f"{name}: the rendered page is stale; run python docs/render_notebooks.py {name}"
    )
    assert "Traceback" not in page and "\x1b[" not in page, f"{name}: an error or a raw escape code"
    pictures = PICTURE.findall(page)
    assert len(pictures) >= 3, f"{name} shows {len(pictures)} picture(s)"
    for picture in pictures:
        assert (RENDERED_DIR / picture).is_file(), picture
    assert page.startswith("_Rendered by `docs/render_notebooks.py`") and "DEMO size" in page


def test_a_rendered_page_shows_each_run_of_a_nested_progress_bar_once():
    """tqdm draws a bar inside a loop's bar by moving the cursor up and down, which a page cannot:
    docs/render_notebooks.py keeps each run of updates as one line, its last."""
    spec = importlib.util.spec_from_file_location("renderer", ROOT / "docs" / "render_notebooks.py")
    renderer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(renderer)
    out = io.StringIO()
    for digit in tqdm(range(2), desc="normal digits", file=out, mininterval=0):
        for name in ("anogan", "dae"):
            with tqdm(total=50, desc=name, file=out, mininterval=0) as bar:
                for _ in range(50):
                    bar.update(1)
        print(f"digit {digit} done", file=out)
    lines = renderer.terminal_text(out.getvalue()).splitlines()
    names = [line.split(":")[0] for line in lines]
    assert names == ["normal digits", "anogan", "dae", "digit 0 done"] + [
        "normal digits",
        "anogan",
        "dae",
        "digit 1 done",
        "normal digits",
    ]
    assert "50/50" in lines[1] and "2/2" in lines[-1] and "\x1b" not in "".join(lines)
