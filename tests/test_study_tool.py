"""``make study`` / ``gamut-study`` (src/tools/study.py): an Optuna study in optuna-dashboard over its own
storage. Here on a study written by Optuna itself; the browser test on a real gamut search is in
tests/test_optuna_sweep.py."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path

import optuna
import pytest

import src.utils.optional as optional
from src.tools import study as tool
from tests.browser import free_port, serving

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def storage(tmp_path) -> str:
    """A SQLite storage holding study ``task_sw`` with three finished trials."""
    url = f"sqlite:///{tmp_path}/optuna.db"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = optuna.create_study(study_name="task_sw", storage=url)
    s.optimize(lambda t: (t.suggest_float("model.optim.g_lr", 1e-3, 1e-2) - 2e-3) ** 2, n_trials=3)
    return url


def test_the_address_is_the_studys_page_and_an_unknown_name_lists_the_studies(storage):
    assert tool.study_address(storage, "task_sw", "127.0.0.1", 8080) == "http://127.0.0.1:8080/dashboard/studies/1"
    assert tool.study_address(storage, "", "127.0.0.1", 8080) == "http://127.0.0.1:8080/dashboard"
    with pytest.raises(ValueError, match=r"study='other' is not in .*optuna.db; it holds: task_sw"):
        tool.study_address(storage, "other", "127.0.0.1", 8080)


def test_a_missing_storage_file_is_named_and_not_created(tmp_path, capsys):
    db = tmp_path / "none.db"
    with pytest.raises(SystemExit, match=rf"study.py: storage=sqlite:///{db}: no such file"):
        tool.main([f"storage=sqlite:///{db}"])
    assert not db.exists()


def test_the_default_storage_is_the_sweepers(monkeypatch, tmp_path):
    monkeypatch.setenv("GAMUT_LOG_DIR", str(tmp_path))
    assert tool.default_storage() == f"sqlite:///{tmp_path}/optuna.db"
    monkeypatch.delenv("GAMUT_LOG_DIR")
    assert tool.default_storage() == f"sqlite:///{ROOT}/logs/optuna.db"  # src/conf/paths/default.yaml's log_dir


def test_without_the_study_extra_one_line_names_it(monkeypatch, storage):
    real = optional.importlib.import_module

    def absent(name, *args):
        if name == "optuna_dashboard":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, *args)

    monkeypatch.setattr(optional.importlib, "import_module", absent)
    with pytest.raises(
        SystemExit, match=r"""needs the 'study' extra, which is not installed: pip install "gamut\[study\]\""""
    ):
        tool.main([f"storage={storage}"])


def test_the_dashboard_serves_the_studys_trials(storage):
    """The tool's server answers optuna-dashboard's API with the study, its three trials and their values."""
    port = free_port()
    cmd = [sys.executable, "-m", "src.tools.study", f"storage={storage}", "study=task_sw", f"port={port}"]
    with serving(cmd, f"http://127.0.0.1:{port}/api/studies", ROOT, env=dict(os.environ)) as first_line:
        assert first_line.startswith(f"study: http://127.0.0.1:{port}/dashboard/studies/1 ")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/1?after=0", timeout=10) as r:
            detail = json.load(r)
    expected = optuna.load_study(study_name="task_sw", storage=storage).trials
    assert detail["name"] == "task_sw"
    assert [(t["number"], t["state"], t["values"]) for t in detail["trials"]] == [
        (t.number, "Complete", [t.value]) for t in expected
    ]


def test_a_storage_that_cannot_be_opened_is_one_line_without_its_password():
    url = "postgresql+nosuchdriver://gamut:s3cret@127.0.0.1:1/optuna"
    with pytest.raises(SystemExit) as e:
        tool.main([f"storage={url}", "study=x"])
    line = str(e.value)
    assert line.startswith("study.py: storage=postgresql+nosuchdriver://gamut:***@127.0.0.1:1/optuna: ")
    assert "s3cret" not in line and "\n" not in line
