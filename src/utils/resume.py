"""Resume from the run's own config.

A resume (``ckpt_path=last`` or ``ckpt_path=<a gamut checkpoint>``) starts from the config the run
was launched with, then applies only the overrides given now:

- The command line of the first launch is in ``<run>/.hydra/overrides.yaml``. :func:`merge_overrides`
  lays today's overrides over it (today's win, key by key) and :func:`resume_config` composes that
  list again, so ``data.resolution=64`` given at launch still holds when the resume does not repeat it.
- The resolved config of the first launch is in ``<run>/.hydra/config.yaml`` and, for checkpoints
  that travel without their folder, in the checkpoint (``checkpoint["gamut"]["config"]``).
  :func:`check_frozen` compares the keys that define the model or the data's shape with it: a
  different value stops the resume with one line naming each key and both values. Every other key
  (length, learning rates, callback cadence, loggers) may change; :func:`changed_keys` lists what did
  (:func:`check_resume` runs both), and the entry point records it in ``.hydra/resume-<k>/changes.yaml``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from src.utils.run_folder import CONFIG_FILE, HYDRA_DIR, OVERRIDES_FILE, last_checkpoint
from src.utils.validation import ConfigError

__all__ = [
    "FROZEN_TOP",
    "TRAINING_MODEL_KEYS",
    "ResumeSource",
    "changed_keys",
    "check_frozen",
    "check_resume",
    "find_source",
    "first_launch_overrides",
    "frozen_values",
    "merge_overrides",
    "override_key",
    "resume_config",
]

log = logging.getLogger("gamut.resume")

#: Sub-keys of ``model`` that are training settings, not architecture: they may change on resume.
TRAINING_MODEL_KEYS = frozenset(
    {
        "optim",
        "loss",
        "ema",
        "perf",
        "check_finite_every",
        "weights_dir",
        "trunk_pretrained",
        "batch_gpu",  # rows per pass: memory, not the model
        "num_fp16_res",  # which blocks run in fp16 under 16-mixed
    }
)
#: Sub-keys of ``model`` that earlier runs' configs carry but that follow from a frozen key now
#: (``img_channels`` from ``colorspace``): not compared, so such runs still resume.
DERIVED_MODEL_KEYS = frozenset({"img_channels"})
#: Top-level nodes and keys that define the data's shape (besides ``model``).
FROZEN_TOP = ("colorspace", "data.resolution")
#: Keys never compared nor reported: they name this launch, not the run.
_VOLATILE = ("ckpt_path", "run_name", "paths", "hydra", "required_keys")


class ResumeSource:
    """Where a resume reads the first launch's config: a run folder and/or a checkpoint's record."""

    def __init__(self, run_dir: Path | None, checkpoint: Path | None) -> None:
        self.run_dir = run_dir
        self.checkpoint = checkpoint

    @property
    def overrides_file(self) -> Path | None:
        f = None if self.run_dir is None else self.run_dir / HYDRA_DIR / OVERRIDES_FILE
        return f if f is not None and f.is_file() else None

    @property
    def config_file(self) -> Path | None:
        f = None if self.run_dir is None else self.run_dir / HYDRA_DIR / CONFIG_FILE
        return f if f is not None and f.is_file() else None

    def overrides(self) -> list[str] | None:
        """The first launch's command-line overrides, or None when they were not recorded."""
        f = self.overrides_file
        if f is None:
            return None
        try:
            value = OmegaConf.to_container(OmegaConf.load(f))
        except (OSError, ValueError, yaml.YAMLError, OmegaConfBaseException) as e:
            raise ConfigError(
                f"{f}: cannot read the run's overrides ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
            ) from None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{f}: expected a list of override strings")
        return value

    def config(self) -> dict | None:
        """The first launch's resolved config: ``.hydra/config.yaml``, else the checkpoint's record."""
        f = self.config_file
        if f is not None:
            try:
                value = OmegaConf.to_container(OmegaConf.load(f), resolve=True)
            except (OSError, ValueError, yaml.YAMLError, OmegaConfBaseException) as e:
                raise ConfigError(
                    f"{f}: cannot read the run's config ({type(e).__name__}: {str(e).splitlines()[0]})"
                ) from None
            if not isinstance(value, dict):
                raise ConfigError(f"{f}: expected a mapping (the run's composed config)")
            return value
        if self.checkpoint is not None and self.checkpoint.is_file():
            try:
                state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
            except Exception as e:  # any unreadable file is the same one-line error
                raise ConfigError(f"{self.checkpoint}: cannot read the checkpoint ({type(e).__name__})") from None
            record = (state.get("gamut") or {}).get("config") if isinstance(state, dict) else None
            return record if isinstance(record, dict) else None
        return None


def find_source(ckpt_path: Any, run_dir: Path) -> ResumeSource | None:
    """The resume source for ``ckpt_path`` (None for a fresh run).

    ``last`` reads ``run_dir``; a checkpoint file reads its run folder (``<run>/checkpoints/x.ckpt``)
    when that folder has ``.hydra/``, and the checkpoint's own record otherwise.
    """
    if ckpt_path is None:
        return None
    if str(ckpt_path) == "last":
        return ResumeSource(run_dir, last_checkpoint(run_dir))
    ckpt = Path(str(ckpt_path))
    owner = ckpt.resolve().parent.parent
    return ResumeSource(owner if (owner / HYDRA_DIR).is_dir() else None, ckpt)


def override_key(override: str) -> str:
    """The key an override string sets: ``+a.b=1`` -> ``a.b``, ``model=segan`` -> ``model``."""
    key = override.split("=", 1)[0].strip()
    return key.lstrip("+~")


def merge_overrides(first: Iterable[str], now: Iterable[str]) -> list[str]:
    """``first`` with ``now`` laid over it: a key given now replaces the first launch's value.

    ``ckpt_path`` of the first launch is dropped (a resume names its own).
    """
    now = list(now)
    taken = {override_key(o) for o in now}
    kept = [o for o in first if override_key(o) not in taken and override_key(o) != "ckpt_path"]
    return kept + now


def _flatten(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix, node


def _select(config: dict, key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def frozen_values(config: dict) -> dict[str, Any]:
    """The keys of ``config`` (resolved, plain) that define the model or the data's shape."""
    out: dict[str, Any] = {}
    for k, v in (config.get("model") or {}).items():
        if k not in TRAINING_MODEL_KEYS and k not in DERIVED_MODEL_KEYS:
            out.update(_flatten(v, f"model.{k}"))
    for key in FROZEN_TOP:
        value = _select(config, key)
        out.update(_flatten(value, key) if isinstance(value, dict) else {key: value})
    return out


def _norm(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _plain(config: DictConfig | dict) -> dict:
    """``config`` as plain, resolved containers."""
    if isinstance(config, dict):
        return config
    plain = OmegaConf.to_container(config, resolve=True)
    assert isinstance(plain, dict), "a config is a mapping"
    return plain


def check_frozen(first: dict, now: DictConfig | dict, where: Path | str) -> None:
    """Raise ``ConfigError`` naming every frozen key whose value differs from the first launch's."""
    now_plain = _plain(now)
    before, after = frozen_values(first), frozen_values(now_plain)
    diffs = [
        f"{k}={_norm(after.get(k))!r} (the run has {_norm(before.get(k))!r})"
        for k in sorted(set(before) | set(after))
        if _norm(before.get(k)) != _norm(after.get(k))
    ]
    if diffs:
        raise ConfigError(
            f"cannot resume {where} with a different model or data shape: {'; '.join(diffs)}. "
            "These keys are fixed for a run; start a new run_name to change them"
        )


def changed_keys(first: dict, now: DictConfig | dict) -> dict[str, list]:
    """``{key: [first launch's value, this launch's]}`` for every key that differs (volatile keys aside)."""
    now_plain = _plain(now)
    a = {k: v for k, v in _flatten(first) if not k.startswith(_VOLATILE)}
    b = {k: v for k, v in _flatten(now_plain) if not k.startswith(_VOLATILE)}
    return {
        k: [_norm(a.get(k)), _norm(b.get(k))] for k in sorted(set(a) | set(b)) if _norm(a.get(k)) != _norm(b.get(k))
    }


def check_resume(cfg: DictConfig, run_dir: Path) -> dict | None:
    """For a resume: refuse one that changes the model or the data's shape (:func:`check_frozen`);
    return what else changed (:func:`changed_keys`), or None when the first launch's config is unknown."""
    source = find_source(cfg.ckpt_path, run_dir)
    first = source.config() if source is not None else None
    if source is None or first is None:
        return None
    check_frozen(first, cfg, source.run_dir or source.checkpoint or str(cfg.ckpt_path))
    return changed_keys(first, cfg)


def first_launch_overrides(cfg: DictConfig) -> list[str]:
    """For a resume, the command line of the run's first launch (``.hydra/overrides.yaml``); else []."""
    if cfg.get("ckpt_path") is None:
        return []
    source = find_source(cfg.ckpt_path, Path(cfg.paths.run_dir))
    return (source.overrides() if source is not None else None) or []


def resume_config(cfg: DictConfig, config_name: str = "train") -> DictConfig:
    """For a resume launched from the command line: the first launch's overrides, then today's.

    The run folder's ``.hydra/overrides.yaml`` holds the first launch's command line; composing it
    with today's overrides laid over it (:func:`merge_overrides`) gives the config the run was
    launched with plus what was asked now. Without that file (a checkpoint that travelled alone, a run
    launched from Python), the config is today's and :func:`check_resume` guards the model's keys.
    Needs a running Hydra app (``hydra.compose``); returns ``cfg`` itself outside one.
    """
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.errors import HydraException

    if not HydraConfig.initialized() or cfg.get("ckpt_path") is None:
        return cfg
    source = find_source(cfg.ckpt_path, Path(cfg.paths.run_dir))
    first = source.overrides() if source is not None else None
    if source is None or first is None:
        return cfg
    now = list(HydraConfig.get().overrides.task)
    merged = merge_overrides(first, now)
    if merged == now:
        return cfg
    log.info("resume: composing the run's own overrides %s with today's %s", first, now)
    try:
        return hydra.compose(config_name=config_name, overrides=merged)
    except HydraException as e:
        raise ConfigError(
            f"{source.overrides_file}: the run's overrides no longer compose with today's ({str(e).splitlines()[0]})"
        ) from None
