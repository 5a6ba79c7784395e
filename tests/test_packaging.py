"""Installing gamut: the version check at import, and a built wheel that carries the configs inside
``src`` (``src/conf``) and trains from any folder with none of the extras importable."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import src
from src.utils.optional import EXTRAS

ROOT = Path(__file__).resolve().parents[1]


def _pip(*args: str) -> None:
    """Run ``python -m pip ARGS`` and fail with the tail of its stderr."""
    proc = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize(
    ("python", "torch_version", "message"),
    [
        ((3, 10), "2.15.0", r"gamut needs Python >= 3.11 \(tested on 3.11-3.13\); this is Python 3.10"),
        ((3, 11), "2.12.1+cu121", r"gamut needs PyTorch >= 2.13 \(with its matching torchvision\); found torch 2.12.1"),
        ((3, 12), "1.13.1", r"found torch 1.13.1"),
    ],
)
def test_unsupported_python_or_torch_stops_with_one_line(python, torch_version, message):
    with pytest.raises(ImportError, match=message) as e:
        src.check_versions(python=python, torch_version=torch_version)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("torch_version", ["2.13.0+cpu", "2.15.0", "2.16.0.dev20261101", "3.0.0"])
def test_supported_versions_pass(torch_version):
    src.check_versions(python=(3, 13), torch_version=torch_version)


def test_wheel_carries_the_configs_and_trains_from_anywhere(tmp_path):
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".git", ".venv*", "logs", "build", "dist", "*.egg-info", "__pycache__", "tests"),
    )
    wheels = tmp_path / "wheels"
    _pip("wheel", "-q", "--no-deps", "-w", str(wheels), str(source))
    (wheel,) = wheels.glob("gamut-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = {p.relative_to(ROOT).as_posix() for p in (ROOT / "src" / "conf").rglob("*.yaml")}
    assert configs and configs <= names, sorted(configs - names)[:5]
    assert all(c.startswith("src/conf/") for c in configs)
    top = {n.split("/")[0] for n in names if "/" in n and ".dist-info/" not in n}
    assert top == {"src", "hydra_plugins"}  # no top-level conf
    assert {"src/train.py", "src/tools/generate.py", "hydra_plugins/gamut_optuna_sweeper/__init__.py"} <= names

    site = tmp_path / "site"
    _pip("install", "-q", "--no-deps", "--target", str(site), str(wheel))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "GAMUT_LOG_DIR": str(tmp_path / "logs")}
    where = subprocess.run(
        [sys.executable, "-c", "import src, src.train; print(src.__file__)"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert where.returncode == 0 and where.stdout.strip().startswith(str(site)), where.stdout + where.stderr
    job = subprocess.run(
        [sys.executable, "-m", "src.train", "--cfg", "job", "experiment=nutshell_stamps", "data.root=/data/stamps"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert job.returncode == 0, job.stderr[-3000:]
    assert "task_name: nutshell_stamps" in job.stdout and "- 48" in job.stdout

    # the core install trains the demo: the installed wheel, one iteration, with every extra's module
    # unimportable (None in sys.modules), from a folder that is not the clone
    blocked = sorted(module for module, _ in EXTRAS.values())
    code = (
        f"import sys; sys.modules.update(dict.fromkeys({blocked})); import runpy; "
        "sys.argv = ['train'] + sys.argv[1:]; runpy.run_module('src.train', run_name='__main__')"
    )
    demo = ["experiment=quickstart", "trainer.max_steps=1", "data.resolution=16", "logger=mlflow", "run_name=core"]
    train = subprocess.run(
        [sys.executable, "-c", code, *demo], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600
    )
    assert train.returncode == 0, train.stderr[-3000:]
    assert (tmp_path / "logs" / "quickstart" / "core" / "checkpoints" / "last.ckpt").is_file()
