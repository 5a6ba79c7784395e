"""The command line every tool shares (``src/tools/``): ``key=value`` arguments, the same syntax as
Hydra overrides, one-line errors, ``--help``, and the console-script entry.

``--help`` (or ``-h``) anywhere on a tool's command line prints the tool's documentation (its module
docstring, which describes what it does and what each key means) and then every key with its default,
and exits with status 0; for a tool with subcommands, before the subcommand it lists them, after it
the subcommand's keys.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
import sys
from collections.abc import Callable, Iterator

from omegaconf import DictConfig, OmegaConf

HELP_FLAGS = ("--help", "-h")


def plain_doc(doc: str | None) -> str:
    """A docstring for a terminal: dedented, with Sphinx roles and double backticks removed."""
    text = inspect.cleandoc(doc or "")
    text = re.sub(
        r":\w+:`~?([^`<]*?)(?: <[^>]*>)?`",
        lambda m: m.group(1).split(".")[-1] if "~" in m.group(0) else m.group(1),
        text,
    )
    return text.replace("``", "")


def _shown(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return "[" + ",".join(_shown(v) for v in value) + "]"
    return str(value)


def help_text(prog: str, doc: str | None, defaults: dict, required: dict[str, str] | None = None) -> str:
    """``doc`` (see :func:`plain_doc`), then ``key=default`` for every key (required ones marked)."""
    required = required or {}
    width = max((len(k) for k in defaults), default=0)
    lines = [plain_doc(doc), "", f"usage: {prog} key=value ...   keys and their defaults:"]
    for key, value in defaults.items():
        shown = f"{required[key]}   (required)" if key in required else _shown(value)
        lines.append(f"  {key.ljust(width)} = {shown}")
    return "\n".join(lines)


def _print_help_and_exit(text: str) -> None:
    try:
        print(text, flush=True)
    except BrokenPipeError:  # `--help | head`: the reader has what it wanted; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
    raise SystemExit(0)


def parse_key_values(
    argv: list[str], defaults: dict, prog: str, required: dict[str, str] | None = None, doc: str | None = None
) -> DictConfig:
    """Merge ``argv`` (``key=value`` items) over ``defaults``; exit with one line on a bad key.

    ``required`` maps keys that must be given to a placeholder for the message, e.g.
    ``{"ckpt": "PATH"}`` -> ``generate.py: ckpt=PATH is required``. ``doc``: the tool's documentation,
    printed by ``--help`` before the keys (:func:`help_text`).
    """
    if any(a in HELP_FLAGS for a in argv):
        _print_help_and_exit(help_text(prog, doc, defaults, required))
    base = OmegaConf.create(defaults)
    OmegaConf.set_struct(base, True)
    try:
        cfg = OmegaConf.merge(base, OmegaConf.from_dotlist(argv))
    except Exception as e:  # unknown key or malformed item
        raise SystemExit(
            f"{prog}: {e.__class__.__name__}: {str(e).splitlines()[0]}; allowed keys: {', '.join(defaults)}"
        ) from None
    assert isinstance(cfg, DictConfig)  # a dict merged over a dict
    missing = [f"{k}={v}" for k, v in (required or {}).items() if cfg[k] in (None, "")]
    if missing:
        raise SystemExit(f"{prog}: {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required")
    return cfg


def parse_subcommand(
    argv: list[str],
    commands: dict[str, dict],
    prog: str,
    kind: str = "subcommand",
    required: dict[str, dict[str, str]] | None = None,
    doc: str | None = None,
    docs: dict[str, str | None] | None = None,
) -> tuple[str, DictConfig]:
    """``argv`` = a subcommand (a key of ``commands``) then its ``key=value`` items, each subcommand with
    its own defaults (``commands[name]``) and required keys (``required[name]``).

    Returns ``(subcommand, config)``; exits with one line naming the allowed ``kind`` (e.g. ``view``) otherwise.
    ``--help`` first prints ``doc`` and the subcommands; after a subcommand, its own documentation
    (``docs[name]``, else ``doc``) and keys.
    """
    if argv and argv[0] in HELP_FLAGS:
        _print_help_and_exit(
            f"{plain_doc(doc)}\n\nusage: {prog} {kind} key=value ...   {kind}s: {', '.join(commands)}\n"
            f"({prog} <{kind}> --help lists a {kind}'s keys)"
        )
    if argv and argv[0] in commands and any(a in HELP_FLAGS for a in argv[1:]):
        name = argv[0]
        text = help_text(f"{prog} {name}", (docs or {}).get(name) or doc, commands[name], (required or {}).get(name))
        _print_help_and_exit(text)
    if not argv or argv[0] not in commands:
        got = repr(argv[0]) if argv else "nothing"
        raise SystemExit(f"{prog}: the first argument must be a {kind}, one of {', '.join(commands)}; got {got}")
    name = argv[0]
    return name, parse_key_values(argv[1:], commands[name], f"{prog} {name}", required=(required or {}).get(name))


@contextlib.contextmanager
def exit_on_bad_input(prog: str) -> Iterator[None]:
    """Turn a missing file or a bad value (``FileNotFoundError`` / ``ValueError``) into one line and exit 1."""
    try:
        yield
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"{prog}: {e}") from None


def console_entry(main: Callable[[list[str] | None], object]) -> Callable[[], None]:
    """The ``[project.scripts]`` entry point of a tool: runs ``main()`` on ``sys.argv`` and returns None.

    Console-script wrappers call ``sys.exit(entry())``; a tool's ``main`` may return its result
    (the benchmark's report, the dataset manifest) for callers in Python, which must not become the
    exit status.
    """

    def entry() -> None:
        main(None)

    entry.__doc__ = f"Console entry of {main.__module__}: ``main(sys.argv[1:])``."
    return entry
