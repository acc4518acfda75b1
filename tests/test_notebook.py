"""docs/notebook.ipynb runs top to bottom in a real Jupyter kernel (nbclient + ipykernel) in a temporary
folder, quick settings, and is stored without outputs."""

import os
import sys
import time

import nbformat
import pytest
from support.models import REPO

NOTEBOOK = REPO / "docs" / "notebook.ipynb"


def test_the_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_the_notebook_runs_and_writes_what_it_says(tmp_path, monkeypatch):
    pytest.importorskip("ipykernel")
    from nbclient import NotebookClient
    # The kernel is this interpreter (PATH) with this checkout's code (PYTHONPATH), as a user's Jupyter would be.
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("STYLEGAN_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    start = time.monotonic()
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert time.monotonic() - start < 300
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "32 128 128 8" in text                                   # the built-in model's sizes
    assert "PSNR" in text and "frames (32, 32)" in text and "Warning" not in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 4   # generate, mix, project, edit
    assert {p.name for p in tmp_path.iterdir()} >= {"projected_w.npz", "edited_w.npz", "walk.gif"}
