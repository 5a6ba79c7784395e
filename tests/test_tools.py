"""The tools are the package's entry points: ``src/tools/<tool>.py`` with ``main(argv=None)``, run as
``python scripts/<tool>.py``, ``python -m src.tools.<tool>`` or the console script ``gamut-<tool>``."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from src.utils.cli import console_entry

ROOT = Path(__file__).resolve().parents[1]
TOOLS = sorted(p.stem for p in (ROOT / "src" / "tools").glob("*.py") if p.stem != "__init__")
CONSOLE_SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def test_every_tool_has_a_wrapper_a_console_script_and_a_main():
    import importlib

    assert len(TOOLS) >= 9, TOOLS
    assert sorted(p.stem for p in (ROOT / "scripts").glob("*.py")) == TOOLS  # one wrapper per tool, no more
    for name in TOOLS:
        module = importlib.import_module(f"src.tools.{name}")
        assert callable(module.main) and callable(module.cli), name
        assert CONSOLE_SCRIPTS.get(f"gamut-{name.replace('_', '-')}") == f"src.tools.{name}:cli", name
    assert len(CONSOLE_SCRIPTS) == len(TOOLS)


@pytest.mark.parametrize("name", TOOLS)
def test_a_script_only_runs_its_tool(name):
    """``scripts/<tool>.py`` imports ``main`` from ``src.tools.<tool>`` and calls it; nothing else."""
    tree = ast.parse((ROOT / "scripts" / f"{name}.py").read_text())
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [(n.module, [a.name for a in n.names]) for n in imports] == [(f"src.tools.{name}", ["main"])]
    assert len(tree.body) == 3  # docstring, the import, the __main__ guard


def test_the_console_entry_drops_the_result(monkeypatch):
    """Console-script wrappers pass the entry's return value to sys.exit: it must be None."""
    seen = []
    monkeypatch.setattr(sys, "argv", ["gamut-x", "a=1"])
    assert console_entry(lambda argv: seen.append(argv) or {"report": 1})() is None
    assert seen == [None]


def test_module_and_console_script_run_the_tool(tmp_path):
    """``python -m src.tools.generate`` and ``gamut-generate`` reach the tool's own argument check."""
    commands = [[sys.executable, "-m", "src.tools.generate"]]
    console = Path(sys.executable).parent / "gamut-generate"
    if console.is_file():  # installed by `make install` / `pip install -e .`
        commands.append([str(console)])
    for command in commands:
        proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 1 and "generate.py: ckpt=PATH is required" in proc.stderr, (command, proc.stderr)
