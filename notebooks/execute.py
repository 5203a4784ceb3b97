"""Run notebooks top to bottom and store their outputs in place (what the docs site shows).

    python notebooks/execute.py                      # every notebook
    python notebooks/execute.py notebooks/05_cox_frailty.ipynb

Each notebook runs in a fresh kernel whose working directory is an empty temporary folder, so
no local path reaches a stored output. The run fails (and the file is left as it was) when a cell
raises, writes to stderr (a warning, a logging message) or prints a local path; it prints each
notebook's wall time (tests/test_notebooks.py runs them again and checks the stored outputs).
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
LOCAL_PATH = re.compile(r"(/work/|/home/|/tmp/|/root/|site-packages|\\Users\\)")


def problems(nb) -> list[str]:
    """Stored outputs that a reader should not see: errors, stderr, local paths."""
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            kind = out.get("output_type")
            if kind == "error":
                found.append(f"cell {i}: error {out.get('ename')}")
            if kind == "stream" and out.get("name") == "stderr":
                found.append(f"cell {i}: stderr {out.get('text', '')[:200]!r}")
            texts = [out.get("text", "")] + [v for k, v in out.get("data", {}).items()
                                             if k.startswith("text/") and isinstance(v, str)]
            for text in texts:
                if LOCAL_PATH.search(text):
                    found.append(f"cell {i}: local path {LOCAL_PATH.search(text).group(0)!r}")
    return found


def cell_seconds(cell) -> float:
    """How long ``cell`` ran, from the timestamps nbclient records."""
    from datetime import datetime

    times = cell.get("metadata", {}).get("execution", {})
    start, end = times.get("iopub.execute_input"), times.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = lambda t: datetime.fromisoformat(t.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def execute(path: Path) -> float:
    """Run ``path`` in place; the wall time in seconds."""
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as cwd:
        start = time.perf_counter()
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": cwd}}).execute()
        seconds = time.perf_counter() - start
    slowest = sorted(((cell_seconds(c), i) for i, c in enumerate(nb.cells)), reverse=True)[:3]
    print(f"{path.name}: slowest cells " + ", ".join(f"{i} ({t:.1f} s)" for t, i in slowest))
    for cell in nb.cells:  # keep diffs small: no per-run execution timestamps
        cell.get("metadata", {}).pop("execution", None)
    bad = problems(nb)
    if bad:
        raise SystemExit(f"{path.name}: not stored, its outputs hold\n  " + "\n  ".join(bad))
    nbformat.write(nb, path)
    return seconds


if __name__ == "__main__":
    paths = [Path(p) for p in sys.argv[1:]] or sorted(HERE.glob("*.ipynb"))
    for p in paths:
        print(f"{p.name}: {execute(p):.1f} s")
