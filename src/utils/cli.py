"""The command line every tool shares (``src/tools/``): ``key=value`` arguments, the same syntax as
Hydra overrides, one-line errors, and the console-script entry."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from omegaconf import DictConfig, OmegaConf


def parse_key_values(argv: list[str], defaults: dict, prog: str, required: dict[str, str] | None = None) -> DictConfig:
    """Merge ``argv`` (``key=value`` items) over ``defaults``; exit with one line on a bad key.

    ``required`` maps keys that must be given to a placeholder for the message, e.g.
    ``{"ckpt": "PATH"}`` -> ``generate.py: ckpt=PATH is required``.
    """
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
) -> tuple[str, DictConfig]:
    """``argv`` = a subcommand (a key of ``commands``) then its ``key=value`` items, each subcommand with
    its own defaults (``commands[name]``) and required keys (``required[name]``).

    Returns ``(subcommand, config)``; exits with one line naming the allowed ``kind`` (e.g. ``view``) otherwise.
    """
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
