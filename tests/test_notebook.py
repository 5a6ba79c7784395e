"""notebooks/quickstart.ipynb runs top to bottom as a notebook user runs it, in its short setting.

nbclient executes the notebook in a kernel of this interpreter (the environment ``make`` created, not
whatever ``python3`` kernel the machine registers) with ``GAMUT_NOTEBOOK_SHORT=1`` (16 iterations, 4
generated images, ``fid16``), its runs under a temporary ``GAMUT_LOG_DIR`` and a stand-in Inception
weights file in ``GAMUT_NOTEBOOK_WEIGHTS_DIR`` (``GAMUT_OFFLINE=1`` from conftest reaches the kernel and
the commands it starts, so nothing is downloaded). The kernel starts in ``notebooks/``, where a user who
opens the notebook in a clone starts it.
"""

from __future__ import annotations

import base64
import io
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import install as install_kernelspec
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from PIL import Image

from src.pretrained.weights import WEIGHTS
from tests.nvidia_standins import save_random_inception

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"
KERNEL = "gamut-notebook-test"


def kernel_manager(prefix: Path) -> KernelManager:
    """A kernel manager for a kernelspec of this interpreter, installed under ``prefix`` only."""
    install_kernelspec(kernel_name=KERNEL, prefix=str(prefix))
    specs = KernelSpecManager(kernel_dirs=[str(prefix / "share" / "jupyter" / "kernels")])
    km = KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)
    assert km.kernel_spec.argv[0] == sys.executable
    return km


def outputs(nb, tag: str) -> list:
    """The outputs of the code cell tagged ``tag`` (each code cell is tagged with its id)."""
    (cell,) = [c for c in nb.cells if tag in c.metadata.get("tags", [])]
    return cell.outputs


def text(nb, tag: str) -> str:
    return "".join(o.get("text", "") for o in outputs(nb, tag) if o.output_type == "stream")


def pngs(nb, tag: str) -> list[bytes]:
    return [base64.b64decode(o.data["image/png"]) for o in outputs(nb, tag) if "image/png" in o.get("data", {})]


def test_the_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert nb.metadata.kernelspec.name == "python3"  # what Colab, Kaggle and Jupyter start


@pytest.mark.slow
def test_quickstart_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    weights = tmp_path / "weights"
    weights.mkdir()
    save_random_inception(weights / WEIGHTS["inception"].filename)
    logs = tmp_path / "logs"
    monkeypatch.setenv("GAMUT_NOTEBOOK_SHORT", "1")
    monkeypatch.setenv("GAMUT_LOG_DIR", str(logs))
    monkeypatch.setenv("GAMUT_NOTEBOOK_WEIGHTS_DIR", str(weights))
    in_repo = {*(ROOT / "notebooks").rglob("*"), *(ROOT / "logs").glob("*/notebook-*")}

    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb, km=kernel_manager(tmp_path / "jupyter"), timeout=600, resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, at the first failing cell

    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code")

    # setup: the kernel is this interpreter, which has gamut already: no pip install
    setup = text(nb, "setup")
    assert f"Python: {sys.executable}\n" in setup and f"gamut clone: {ROOT}\n" in setup
    assert "pip install" not in setup

    # train: one run, under the temporary log dir, 16 iterations
    (run,) = (logs / "quickstart").iterdir()
    assert run.name.startswith("notebook-") and (run / "checkpoints" / "last.ckpt").is_file()
    assert f"$ python -m src.train experiment=quickstart run_name={run.name} logger=csv trainer.max_steps=16" in text(
        nb, "train"
    )

    # grid: the newest sample grid, as the file the run wrote, then the reals
    grid, reals = pngs(nb, "grid")
    assert grid == sorted((run / "samples").glob("fakes_kimg*.png"))[-1].read_bytes()
    assert reals == (run / "samples" / "reals.png").read_bytes()

    # generate: seeds 0-3, shown as one sheet of 4 images of 32 px, enlarged 3 times
    assert sorted(p.name for p in (run / "generated").iterdir()) == [f"seed{s:04d}.png" for s in range(4)]
    (sheet,) = pngs(nb, "generate")
    assert Image.open(io.BytesIO(sheet)).size == (4 * 32 * 3, 32 * 3)

    # evaluate: the FID the record holds, printed
    record = json.loads((run / "checkpoints" / "last.metrics.json").read_text())
    value = record["metrics"]["fid16"]["values"]["fid16"]
    m = re.search(r"^fid16 = (\S+) after 0.256 kimg \(16 generated vs 16 real images", text(nb, "evaluate"), re.M)
    assert m and float(m.group(1)) == pytest.approx(value, abs=0.005)

    # nothing was written into the clone
    assert {*(ROOT / "notebooks").rglob("*"), *(ROOT / "logs").glob("*/notebook-*")} == in_repo
