"""``key=value`` arguments for the scripts in ``scripts/`` (the same syntax as Hydra overrides)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from omegaconf import DictConfig, OmegaConf


def parse_key_values(argv: list[str], defaults: dict, prog: str, required: dict[str, str] | None = None) -> DictConfig:
    """Merge ``argv`` (``key=value`` items) over ``defaults``; exit with one line on a bad key.

    ``required`` maps keys that must be given to a placeholder for the message, e.g.
    ``{"ckpt": "PATH"}`` -> ``generate.py: ckpt=PATH is required``.
    """
    cfg = OmegaConf.create(defaults)
    OmegaConf.set_struct(cfg, True)
    try:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(argv))
    except Exception as e:  # unknown key or malformed item
        raise SystemExit(f"{prog}: {e.__class__.__name__}: {str(e).splitlines()[0]}; "
                         f"allowed keys: {', '.join(defaults)}") from None
    missing = [f"{k}={v}" for k, v in (required or {}).items() if cfg[k] in (None, "")]
    if missing:
        raise SystemExit(f"{prog}: {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required")
    return cfg


@contextlib.contextmanager
def exit_on_bad_input(prog: str) -> Iterator[None]:
    """Turn a missing file or a bad value (``FileNotFoundError`` / ``ValueError``) into one line and exit 1."""
    try:
        yield
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"{prog}: {e}") from None
