"""The notebooks in notebooks/ run top to bottom (executed headless with nbclient), and the
outputs stored in them — what the documentation site shows, without running them — are clean:
no errors, nothing on stderr (warnings, logging), no local paths, and a figure wherever a cell
draws one. ``python notebooks/execute.py`` reruns a notebook and stores its outputs."""

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
LOCAL_PATH = re.compile(r"(/work/|/home/|/tmp/|/root/|site-packages|\\Users\\)")
DRAWS = re.compile(r"plt\.show\(\)|\.plot\(|plt\.subplots\(")


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def output_texts(out) -> list[str]:
    data = out.get("data", {})
    return [out.get("text", "")] + [v for k, v in data.items()
                                    if k.startswith("text/") and isinstance(v, str)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_outputs_are_clean(path):
    nb = nbformat.read(path, as_version=4)
    cells = code_cells(nb)
    assert all(c.get("outputs") for c in cells if c.source.strip()), "a cell was stored unrun"
    for i, cell in enumerate(cells):
        for out in cell.outputs:
            assert out.output_type != "error", f"code cell {i}: stored error"
            assert not (out.output_type == "stream" and out.name == "stderr"), (
                f"code cell {i}: stderr stored: {out.text[:300]!r}")
            for text in output_texts(out):
                assert not LOCAL_PATH.search(text), f"code cell {i}: local path in {text[:300]!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_figures_are_stored(path):
    """Every cell that draws shows its figure (a PNG output), as the inline backend does."""
    nb = nbformat.read(path, as_version=4)
    assert not re.search(r"matplotlib\.use\(", "".join(c.source for c in code_cells(nb))), (
        "a non-interactive backend hides the figures: use %matplotlib inline")
    for i, cell in enumerate(code_cells(nb)):
        if DRAWS.search(cell.source):
            assert any("image/png" in out.get("data", {}) for out in cell.outputs), (
                f"code cell {i} draws but stores no figure:\n{cell.source[:200]}")
