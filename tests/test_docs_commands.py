"""Every command the documentation shows does what it says.

Collects each ``python -m src.train``, ``python -m src.eval``, ``make train ARGS=...`` and tool command
line (``python scripts/<tool>.py``, ``python -m src.tools.<tool>``, ``gamut-<tool>``) in README.md and
docs/*.md (code blocks and inline code; a new doc is picked up by the glob) and, without training
anything:

- composes ``src.train`` / ``src.eval`` commands with Hydra and asserts that every config group the
  command names is the one selected and every ``key=value`` it sets holds in the composed config (a
  sweep is composed once per swept value); a training command has a length (its own, its
  experiment's or preset's; a resume keeps its run's) or says on its line that it runs until stopped;
- parses the tools' ``key=value`` arguments with the parser of the tool's module (``src/tools/``)
  and asserts each key exists and holds its value (a ``scripts/`` wrapper or console script named
  by a command must exist too);
- asserts bracketed values are quoted, so a line pasted into zsh (which globs ``[...]``) works as in bash.

A failure names the file and line of the command.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

import src.utils.resolvers  # noqa: F401
from tests.conftest import CONF

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PLACEHOLDER = "..."  # "ckpt_path=... metrics=[fid]": an elided argument, not a value


@dataclass
class Command:
    where: str  # file:line
    raw: str  # the command as written (continuations joined)
    program: str  # src.train | src.eval | scripts/<tool>.py | src.tools.<tool> | gamut-<tool>
    args: list[str]  # its arguments, shell-parsed
    multirun: bool = False

    def __str__(self) -> str:
        return self.where


def _logical_lines(text: str) -> list[tuple[int, str, bool]]:
    """``(line number, text, in a code block)`` with backslash continuations joined."""
    out, buf, start, fenced = [], "", 0, False
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not buf:
            start = n
        if fenced and line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        out.append((start, buf + line, fenced))
        buf = ""
    return out


_PROGRAM = re.compile(
    r"(?:^|[\s/])python[0-9.]*\s+"
    r"(?:-m\s+(src\.train|src\.eval|src\.tools\.\w+)|(scripts/\w+\.py))(?=\s|$)"
    r"|(?:^|\s)gamut-[\w-]+(?=\s+\S)"  # a console script, with arguments
    r"|(?:^|\s)make\s+train(?=\s|$)"
)


def _candidates(line: str, fenced: bool) -> list[str]:
    """The command strings in one logical line: the whole line in a code block, inline code spans else."""
    if fenced:
        return [line]
    return re.findall(r"`([^`]+)`", line)


def _parse(where: str, text: str) -> Command | None:
    m = _PROGRAM.search(text)
    if m is None:
        return None
    raw = text[m.start() :].strip()
    try:
        tokens = shlex.split(raw, comments=True)
    except ValueError as e:
        pytest.fail(f"{where}: cannot parse the shell line {raw!r} ({e})")
    if tokens[0] == "make":
        args = []
        for t in tokens[2:]:
            if t.startswith("ARGS="):
                args += shlex.split(t[len("ARGS=") :])
        return Command(where, raw, "src.train", ["experiment=quickstart", *args])
    i = next(k for k, t in enumerate(tokens) if t == "-m" or t.startswith(("scripts/", "gamut-")))
    program = tokens[i + 1] if tokens[i] == "-m" else tokens[i]
    rest = tokens[i + 2 :] if tokens[i] == "-m" else tokens[i + 1 :]
    for k, t in enumerate(rest):  # stop at a pipe, a redirection or a second command
        if t in ("|", "||", "&&", ";", ">", "2>&1", "&") or t.startswith((">", "2>")):
            rest = rest[:k]
            break
    multirun = any(t in ("-m", "--multirun") for t in rest)
    args = [_expand(t) for t in rest if t not in ("-m", "--multirun") and t != PLACEHOLDER]
    return Command(where, raw, program, args, multirun)


def _expand(word: str) -> str:
    """``$VAR`` as bash and zsh expand it in an argument (set variables only; a loop's ``$j`` stays)."""
    return os.path.expandvars(word)


def collect() -> list[Command]:
    commands = []
    for doc in DOCS:
        for n, line, fenced in _logical_lines(doc.read_text()):
            for text in _candidates(line, fenced):
                cmd = _parse(f"{doc.relative_to(ROOT)}:{n}", text)
                if cmd is not None:
                    commands.append(cmd)
    return commands


COMMANDS = collect()
HYDRA = [c for c in COMMANDS if c.program in ("src.train", "src.eval")]
TOOLS = [c for c in COMMANDS if c.program not in ("src.train", "src.eval")]


def test_the_docs_show_commands():
    """The collector finds the commands (a broken pattern would make every test below vacuous)."""
    assert len(HYDRA) >= 30 and len(TOOLS) >= 15, (len(HYDRA), len(TOOLS))
    readme = [c for c in HYDRA if c.where.startswith("README.md")]
    assert any(c.args == ["experiment=quickstart"] for c in readme)  # make train
    assert {c.program for c in COMMANDS} >= {"src.train", "src.eval", "scripts/generate.py"}


def _unquoted_brackets(raw: str) -> list[str]:
    """Words of ``raw`` with ``[`` or ``]`` outside quotes (zsh would glob them)."""
    bad, quote, word, hit = [], None, "", False
    for ch in raw + " ":
        if quote:
            if ch == quote:
                quote = None
            word += ch
            continue
        if ch in "'\"":
            quote = ch
        elif ch == "#" and not word:
            break
        elif ch.isspace():
            if hit:
                bad.append(word)
            word, hit = "", False
            continue
        elif ch in "[]":
            hit = True
        word += ch
    return bad


@pytest.mark.parametrize("cmd", COMMANDS, ids=str)
def test_brackets_are_quoted(cmd):
    bad = _unquoted_brackets(cmd.raw)
    assert not bad, f"{cmd.where}: quote {bad} so the line works in zsh too: {cmd.raw}"


def _runs(cmd: Command) -> list[list[str]]:
    """The override lists a command composes: one, or one per swept value (others at their first)."""
    parsed = OverridesParser.create().parse_overrides(cmd.args)
    swept = [k for k, o in enumerate(parsed) if o.is_sweep_override()]
    if not swept:
        return [list(cmd.args)]

    def pick(choice: dict[int, str]) -> list[str]:
        out = []
        for k, (arg, o) in enumerate(zip(cmd.args, parsed)):
            if k in swept:
                out.append(f"{arg.split('=', 1)[0]}={choice.get(k, next(iter(o.sweep_string_iterator())))}")
            else:
                out.append(arg)
        return out

    return [pick({k: v}) for k in swept for v in parsed[k].sweep_string_iterator()]


def _groups(config_name: str) -> set[str]:
    root = Path(CONF)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir()}


def _plain(value):
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


@pytest.mark.parametrize("cmd", HYDRA, ids=str)
def test_hydra_command_composes_to_what_it_says(cmd, tmp_path, monkeypatch):
    monkeypatch.setenv("GAMUT_LOG_DIR", str(tmp_path))
    config_name = "train" if cmd.program == "src.train" else "eval"
    groups = _groups(config_name)
    for overrides in _runs(cmd):
        GlobalHydra.instance().clear()
        try:
            with initialize_config_dir(config_dir=CONF, version_base="1.3"):
                cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
        except Exception as e:  # any composition error fails with the doc's line
            pytest.fail(f"{cmd.where}: does not compose: {cmd.raw}\n{type(e).__name__}: {e}")
        if cmd.program == "src.train":  # the start-up checks too (a placeholder ckpt_path aside)
            from omegaconf import open_dict

            from src.callbacks.limits import limits_from_config, prefer_named_length
            from src.utils.validation import ConfigError, validate

            checked = cfg.copy()
            prefer_named_length(checked, overrides)  # as src.train's main does with the command line
            with open_dict(checked):
                checked.ckpt_path = None
            try:
                validate(checked)
            except ConfigError as e:
                pytest.fail(f"{cmd.where}: refused at start-up: {e}: {cmd.raw}")
            # a run states its length (a resume keeps the first launch's), or says that it runs until stopped
            resume = any(a.startswith("ckpt_path=") for a in overrides)
            elided = PLACEHOLDER in cmd.raw.split() or not cmd.args  # "-m hydra/launcher=slurm ...", prose
            says_endless = re.search(r"until (it is )?stopped|Ctrl-C|no limit|until .*max_time", cmd.raw)
            endless = limits_from_config(checked.trainer).unlimited
            assert resume or elided or not endless or says_endless, (
                f"{cmd.where}: trains until stopped without saying so; give trainer.max_kimg / max_steps or "
                f"add '# runs until stopped': {cmd.raw}"
            )
        choices = cfg.hydra.runtime.choices
        for o in OverridesParser.create().parse_overrides(overrides):
            key = o.key_or_group
            if o.is_delete():
                continue
            if key in groups:
                want = o.value()
                if isinstance(want, list):  # a list of options (callbacks=[default,metrics]): each one's keys
                    for option in want:
                        own = OmegaConf.load(Path(CONF) / key / f"{option}.yaml")
                        missing = [k for k in own if k != "defaults" and k not in cfg[key]]
                        assert not missing, f"{cmd.where}: {key}/{option} is not selected ({missing}): {cmd.raw}"
                    continue
                got = choices.get(key)
                assert _plain(got) == want, f"{cmd.where}: {key}={want} is not selected ({got}): {cmd.raw}"
                continue
            got = OmegaConf.select(cfg, key, throw_on_missing=False)
            assert _plain(got) == o.value(), f"{cmd.where}: {key} is {_plain(got)!r}, not {o.value()!r}: {cmd.raw}"


CONSOLE_SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def _tool_module(cmd: Command):
    """The module under ``src/tools/`` a command runs, after checking that its entry exists."""
    program = cmd.program
    if program.startswith("scripts/"):
        assert (ROOT / program).is_file(), f"{cmd.where}: no such tool {program}"
        name = program[len("scripts/") : -len(".py")]
    elif program.startswith("src.tools."):
        name = program[len("src.tools.") :]
    else:
        assert program in CONSOLE_SCRIPTS, f"{cmd.where}: {program} is not a console script in pyproject.toml"
        name = CONSOLE_SCRIPTS[program].split(":")[0].removeprefix("src.tools.")
    try:
        return importlib.import_module(f"src.tools.{name}")
    except ModuleNotFoundError:
        pytest.fail(f"{cmd.where}: no tool module src.tools.{name}: {cmd.raw}")


@pytest.mark.parametrize("cmd", TOOLS, ids=str)
def test_tool_command_parses(cmd):
    from src.utils.cli import parse_key_values

    tool = _tool_module(cmd)
    args = list(cmd.args)
    if hasattr(tool, "COMMANDS"):  # visualize, benchmark: a subcommand, then key=value
        assert args and args[0] in tool.COMMANDS, f"{cmd.where}: unknown subcommand: {cmd.raw}"
        defaults, args = tool.COMMANDS[args[0]], args[1:]
    else:
        defaults = tool.DEFAULTS
    try:
        cfg = parse_key_values(args, defaults, cmd.program)
    except SystemExit as e:
        pytest.fail(f"{cmd.where}: {e}: {cmd.raw}")
    for arg in args:  # the tools read key=value with OmegaConf's dotlist syntax
        key = arg.split("=", 1)[0]
        got = _plain(OmegaConf.select(cfg, key))
        want = OmegaConf.select(OmegaConf.from_dotlist([arg]), key)
        assert got == _plain(want), f"{cmd.where}: {key} is {got!r}, not {want!r}: {cmd.raw}"


def test_the_repository_reads_on_its_own():
    """No file points at notes outside the repository: a sibling shared/ folder, its spec files, section marks."""
    outside = re.compile(
        "|".join([r"\.\./" + "shared", r"\bspecs/", r"\bspec(?:\s+[a-z]+)?\s*" + "\u00a7", r"\bDESIGN" + r"\.md"])
    )
    hits = []
    for folder in ("src", "scripts", "tests", "docs", ".ci"):
        for path in sorted((ROOT / folder).rglob("*")):
            if (
                path.suffix in (".py", ".yaml", ".md", ".txt", "")
                and path.is_file()
                and "__pycache__" not in path.parts
            ):
                for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                    if outside.search(line):
                        hits.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    for path in (ROOT / "README.md", ROOT / "Makefile", ROOT / "pyproject.toml"):
        hits += [
            f"{path.name}:{n}: {ln.strip()}"
            for n, ln in enumerate(path.read_text().splitlines(), 1)
            if outside.search(ln)
        ]
    assert not hits, "\n".join(hits)
