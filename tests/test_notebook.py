"""examples/notebook.ipynb runs top to bottom, in a kernel of the Python
that runs the tests and with this checkout's package first on its path."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "notebook.ipynb"
KERNEL = "i2dl-dsl-tests"


@pytest.fixture
def kernel(tmp_path, monkeypatch) -> str:
    """A kernel spec that starts this interpreter (not whatever `python3`
    Jupyter would find), found through JUPYTER_PATH."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "i2dl-dsl tests", "language": "python",
        "env": {"PYTHONPATH": str(ROOT)},
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return KERNEL


def test_the_notebook_runs_top_to_bottom(kernel, tmp_path):
    work = tmp_path / "work"  # the kernel's working directory
    work.mkdir()
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # a last cell, in this copy only: which package the kernel imported
    notebook.cells.append(nbformat.v4.new_code_cell("print('package:', i2dl_dsl.__file__)"))
    client = nbclient.NotebookClient(notebook, kernel_name=kernel, timeout=120,
                                     resources={"metadata": {"path": str(work)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the cell and its traceback, where a cell fails
    seconds = time.perf_counter() - start
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
    assert f"package: {ROOT / 'i2dl_dsl' / '__init__.py'}" in text
    assert "<source>:4:5: error: conv 'conv1' output height is (8 - 3 + 2·0)/2 + 1 = 3.5" in text
    difference = re.search(r"largest difference from run.predict: (\S+)", text)
    assert difference and float(difference.group(1)) < 1e-5
    assert any("text/html" in o.get("data", {}) for o in outputs)  # the summary's table
    assert list(work.iterdir()) == [], "the notebook wrote files without being asked"
    print(f"notebook ran in {seconds:.1f} s")
