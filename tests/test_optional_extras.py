"""The lean core install (issue 35): the explorer, W&B, Neptune and the study dashboard are pip extras,
training needs none of them, and asking for a feature whose extra is missing stops with one line that
names the extra (src/utils/optional.py)."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import src.utils.optional as optional
from src.tools import explore
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower()


def test_the_core_dependencies_leave_out_every_extra_and_test_pulls_them_all():
    core = {_name(r) for r in PROJECT["dependencies"]}
    extras = PROJECT["optional-dependencies"]
    assert set(optional.EXTRAS) <= set(extras)
    for extra, (module, _) in optional.EXTRAS.items():
        dists = {_name(r) for r in extras[extra]}
        assert not dists & core, f"{extra}: {dists & core} is also a core dependency"
        # the module require() imports comes from that extra's distribution
        assert {d.lower() for d in importlib.metadata.packages_distributions()[module]} <= dists
    assert f"gamut[{','.join(optional.EXTRAS)}]" in extras["test"]  # make and CI install every extra


BLOCK = "import sys; sys.modules.update(dict.fromkeys({mods}))\n"  # None in sys.modules: ImportError
RUN = "import runpy; sys.argv = ['train'] + sys.argv[1:]; runpy.run_module('src.train', run_name='__main__')"


def _train_without_extras(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    blocked = sorted(module for module, _ in optional.EXTRAS.values())
    code = BLOCK.format(mods=blocked) + RUN
    cmd = [sys.executable, "-c", code, *TINY, "trainer.max_steps=1", *overrides]
    env = {"GAMUT_LOG_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_training_needs_no_extra(tmp_path):
    """With every extra's module unimportable, the demo trains and logs to MLflow (the core logger)."""
    proc = _train_without_extras(tmp_path, "logger=mlflow")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "mlflow.db").is_file()
    assert list(tmp_path.glob("quickstart/*/checkpoints/last.ckpt"))


@pytest.mark.parametrize("extra", ["neptune", "wandb"])
def test_a_logger_whose_extra_is_missing_stops_with_one_line(tmp_path, extra):
    proc = _train_without_extras(tmp_path, f"logger={extra}")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1] == (
        f"gamut: invalid config: logger={extra} needs the '{extra}' extra, which is not installed: "
        f'pip install "gamut[{extra}]" (in a clone: pip install -e ".[{extra}]")'
    ), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.glob("quickstart/*"))  # stopped before the run folder


def test_the_explorer_without_its_extra_names_it(monkeypatch):
    real = optional.importlib.import_module

    def absent(name, *args):
        if name == "gradio":
            raise ModuleNotFoundError("No module named 'gradio'", name="gradio")
        return real(name, *args)

    monkeypatch.setattr(optional.importlib, "import_module", absent)
    with pytest.raises(SystemExit, match=r"explore.py: the latent explorer .* needs the 'explorer' extra"):
        explore.main(["ckpt=missing.ckpt"])


def test_a_broken_dependency_inside_an_extra_is_not_called_missing(monkeypatch):
    """An extra that is installed but fails on a module it imports shows that error, not 'not installed'."""

    def broken(name, *args):
        raise ModuleNotFoundError("No module named 'pydantic_core'", name="pydantic_core")

    monkeypatch.setattr(optional.importlib, "import_module", broken)
    with pytest.raises(ModuleNotFoundError, match="pydantic_core"):
        optional.require("explorer")
