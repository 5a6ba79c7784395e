"""``--help`` on every tool (src/utils/cli.py): what the tool does, then each key with its default.

Every ``gamut-*`` console script of pyproject.toml is checked: ``--help`` and ``-h`` exit 0 and print
the tool's documentation and every key with its default; the documentation names every key (so a key
added without a word on what it means fails here); an unknown key still stops with one line.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from src.utils.cli import help_text, parse_key_values, plain_doc

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
TOOLS = {name: target.split(":")[0] for name, target in SCRIPTS.items()}


def _tables(module) -> dict[str, tuple[dict, str]]:
    """``{subcommand or "": (its defaults, the documentation --help prints for it)}``."""
    if hasattr(module, "COMMANDS"):
        docs = getattr(module, "DOCS", {})
        return {name: (keys, (docs.get(name) or "") + module.__doc__) for name, keys in module.COMMANDS.items()}
    return {"": (module.DEFAULTS, module.__doc__)}


def _run_help(module, argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as e:
        module.main(argv)
    assert e.value.code in (0, None)
    return capsys.readouterr().out


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_help_prints_the_documentation_and_every_key_with_its_default(tool, capsys):
    module = importlib.import_module(TOOLS[tool])
    for name, (keys, _) in _tables(module).items():
        for flag in ("--help", "-h"):
            out = _run_help(module, [name, flag] if name else [flag], capsys)
            shown = (getattr(module, "DOCS", {}).get(name) if name else None) or module.__doc__
            assert plain_doc(shown).splitlines()[0] in out  # what the tool (or the subcommand) does
            for key in keys:
                assert re.search(rf"^  {re.escape(key)} +=", out, re.M), f"{tool} {name}: {key} not listed"
    if hasattr(module, "COMMANDS"):  # before a subcommand: the subcommands
        out = _run_help(module, ["--help"], capsys)
        assert all(name in out for name in module.COMMANDS)


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_the_documentation_says_what_every_key_means(tool):
    module = importlib.import_module(TOOLS[tool])
    for name, (keys, doc) in _tables(module).items():
        undocumented = [k for k in keys if f"``{k}``" not in doc and f"{k}=" not in doc]
        assert not undocumented, f"{tool} {name}: keys its --help text does not explain: {undocumented}"


def test_help_shows_required_keys_and_plain_defaults():
    text = help_text(
        "x.py", "Does x.\n\n    Keys: ``a`` (:func:`~src.pkg.fn`).", dict(a=None, b=[1, 2], c=True), {"a": "PATH"}
    )
    assert text.startswith("Does x.\n\nKeys: a (fn).")
    assert "  a = PATH   (required)" in text and "  b = [1,2]" in text and "  c = true" in text


def test_an_unknown_key_is_still_one_line():
    with pytest.raises(SystemExit, match=r"^t.py: ConfigKeyError: .*nope.*allowed keys: a$"):
        parse_key_values(["nope=1"], dict(a=1), "t.py", doc="Does t.")


@pytest.mark.parametrize(
    "command", [[sys.executable, "scripts/generate.py", "--help"], ["gamut-visualize", "mix", "-h"]]
)
def test_help_from_a_shell(command):
    """As a user types it: a script and a console script (installed in the environment's bin)."""
    if command[0].startswith("gamut-"):
        command[0] = str(Path(sys.executable).parent / command[0])
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "keys and their defaults" in proc.stdout and "Traceback" not in proc.stderr


def test_help_into_a_pipe_that_closes_early_is_no_error():
    """``gamut-generate --help | head -1``: the reader may leave before the text is written."""
    tool = Path(sys.executable).parent / "gamut-generate"
    proc = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {tool} --help | true"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
