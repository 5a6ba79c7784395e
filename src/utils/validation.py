"""Start-up config validation: one clear message naming the key and the allowed values.

Runs before anything is written to the run folder (bad input loses nothing on disk).
"""

from __future__ import annotations

import inspect
from pathlib import Path

from hydra.utils import _locate
from omegaconf import DictConfig

from src.colorspaces import COLORSPACE_NAMES, get_colorspace
from src.utils.resolution import base_shape, fp16_first_block, parse_resolution, parse_size


class ConfigError(ValueError):
    """A config value is invalid; the message names the key and what is allowed."""


def _get(cfg: DictConfig, key: str, default=None):
    node = cfg
    for part in key.split("."):
        if node is None or part not in node:
            return default
        node = node[part]
    return node


def _doubles_from_4px(cfg: DictConfig) -> bool:
    """StyleGAN-family generators grow from a small constant: their sides must be ``(b_h * 2**k, b_w * 2**k)``."""
    target = str(_get(cfg, "model._target_", "") or "")
    return target.startswith(("src.modules.stylegan2.", "src.modules.segan."))


def check_model_keys(cfg: DictConfig) -> None:
    """Every ``model.*`` key must be an argument of the model class (presets are StyleGAN2-family sets)."""
    target = _get(cfg, "model._target_")
    if not target:
        return
    try:
        cls = _locate(str(target))
    except Exception:  # noqa: BLE001 - instantiation reports a bad _target_ itself
        return
    params = _init_arguments(cls)
    if params is None:
        return
    unknown = sorted(k for k in cfg.model if not str(k).startswith("_") and k not in params)
    if unknown:
        raise ConfigError(
            f"{', '.join(f'model.{k}' for k in unknown)}: not option(s) of {cls.__name__}. The StyleGAN presets "
            f"set them; with this model drop preset={_choice('preset')} (it takes none)"
        )


def _init_arguments(cls: type) -> set[str] | None:
    """The keyword arguments ``cls(...)`` accepts: its ``__init__``'s and, through ``**kwargs``, its
    bases' (SEGAN passes StyleGAN2's on) or those of the class it names as ``kwargs_to`` (ChromaGAN
    passes its generator's on); None when the ``**kwargs`` chain never ends."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(vars(klass)["__init__"]).parameters.values()
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names
        if "kwargs_to" in vars(klass):
            target = _init_arguments(vars(klass)["kwargs_to"])
            return None if target is None else names | target
    return None


def _choice(group: str) -> str:
    """The option chosen for ``group`` in this Hydra run ("..." outside one)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return str(HydraConfig.get().runtime.choices.get(group, "..."))
    return "..."


def check_required(cfg: DictConfig) -> None:
    """Every key in ``required_keys`` (set by experiments, e.g. finetune's ckpt_init) must have a value."""
    for key in cfg.get("required_keys") or []:
        if _get(cfg, key) is None:
            raise ConfigError(f"{key} is required by this experiment (pass {key}=...)")


def validate(cfg: DictConfig) -> None:
    """Raise ``ConfigError`` for the first invalid value found."""
    try:
        parse_size(_get(cfg, "data.resolution"), "data.resolution")
        if _doubles_from_4px(cfg):
            parse_resolution(_get(cfg, "data.resolution"), "data.resolution")
    except ValueError as e:
        raise ConfigError(str(e)) from None

    check_model_keys(cfg)
    check_precision(cfg)
    for key in ("cpu_malloc_cache", "model.perf.channels_last", "model.perf.compile"):
        value = _get(cfg, key)
        if value is not None and not isinstance(value, bool):
            raise ConfigError(f"{key}={value!r}: expected true or false")
    name = _get(cfg, "colorspace.name")
    if name not in COLORSPACE_NAMES:
        raise ConfigError(f"colorspace.name={name!r}: allowed values are {', '.join(COLORSPACE_NAMES)}")
    cs = get_colorspace(name)
    for key in ("colorspace.channels", "model.img_channels"):  # model.img_channels: older configs
        value = _get(cfg, key)
        if value is not None and value != cs.channels:
            raise ConfigError(
                f"{key}={value} does not match colorspace.name={name!r}, which has {cs.channels} channel(s)"
            )

    batch = _get(cfg, "data.batch_size")
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ConfigError(f"data.batch_size={batch!r}: expected a positive integer (per device)")
    group = _get(cfg, "model.mbstd_group")
    if group is not None and _get(cfg, "model.mbstd_channels", 1):
        need = max(2, group)
        if batch < need:
            raise ConfigError(
                f"data.batch_size={batch} (per device) is smaller than max(2, model.mbstd_group="
                f"{group}); use data.batch_size >= {need} or lower model.mbstd_group"
            )
        if batch % group:
            raise ConfigError(f"data.batch_size={batch} must be a multiple of model.mbstd_group={group}")
    check_batch_gpu(cfg, batch)

    # The run's length: trainer.max_steps (iterations) or trainer.max_kimg (images / 1000), at most one.
    steps, kimg = _get(cfg, "trainer.max_steps"), _get(cfg, "trainer.max_kimg")
    if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or (steps < 0 and steps != -1)):
        raise ConfigError(
            f"trainer.max_steps={steps!r}: expected a number of iterations >= 0, or null (or -1) for no limit"
        )
    bad_kimg = isinstance(kimg, bool) or not isinstance(kimg, (int, float)) or not 0 <= kimg < float("inf")
    if kimg is not None and bad_kimg:
        raise ConfigError(
            f"trainer.max_kimg={kimg!r}: expected thousands of images >= 0 (all devices together, "
            "as NVIDIA's --kimg), or null for no limit"
        )
    if kimg is not None and steps not in (None, -1):
        raise ConfigError(
            f"trainer.max_steps={steps} and trainer.max_kimg={kimg} are both set: give one length "
            "(add trainer.max_steps=null to count kimg, or trainer.max_kimg=null to count iterations)"
        )

    ckpt = _get(cfg, "ckpt_path")
    if ckpt is not None and ckpt != "last" and not Path(str(ckpt)).is_file():
        raise ConfigError(
            f"ckpt_path={ckpt!r}: no such file; use null (fresh run), last (resume this "
            f"run_name), or the path of a .ckpt file"
        )


def check_precision(cfg: DictConfig) -> None:
    """``16-mixed`` needs a CUDA GPU (on a CPU Lightning would quietly run bf16); ``model.num_fp16_res``
    fits the model's resolutions."""
    precision = str(_get(cfg, "trainer.precision", "32-true"))
    if precision in ("16-mixed", "16", "16-true"):
        accelerator = str(_get(cfg, "trainer.accelerator", "auto"))
        import torch

        if accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available()):
            raise ConfigError(
                f"trainer.precision={precision}: fp16 needs a CUDA GPU, and this run is on the CPU "
                f"(trainer.accelerator={accelerator}), where Lightning would run bf16 instead; "
                "use trainer.precision=bf16-mixed or 32-true"
            )
    n = _get(cfg, "model.num_fp16_res")
    if n is not None and _doubles_from_4px(cfg):
        try:
            h, w = parse_size(_get(cfg, "data.resolution"), "data.resolution")
            fp16_first_block(base_shape(h, w)[2], n)
        except ValueError as e:
            raise ConfigError(str(e)) from None


def check_batch_gpu(cfg: DictConfig, batch: int) -> None:
    """``data.batch_gpu`` (gradient accumulation): it divides the per-device batch, holds whole
    minibatch-stddev groups, splits path length's shrunk batch evenly, and the model supports it."""
    b = _get(cfg, "data.batch_gpu")
    if b is None:
        return
    if isinstance(b, bool) or not isinstance(b, int) or b < 1:
        raise ConfigError(f"data.batch_gpu={b!r}: expected a positive integer (rows per pass) or null")
    if _get(cfg, "model") is not None and "batch_gpu" not in cfg.model:
        target = _get(cfg, "model._target_", "this model")
        raise ConfigError(
            f"data.batch_gpu={b}: {target} does not accumulate gradients (ChromaGAN's generator has "
            "BatchNorm, whose statistics depend on the batch); lower data.batch_size instead"
        )
    if batch % b:
        raise ConfigError(f"data.batch_gpu={b} does not divide data.batch_size={batch} (per device)")
    group = _get(cfg, "model.mbstd_group")
    if group is not None and _get(cfg, "model.mbstd_channels", 1) and b < batch:
        if b < max(2, group):
            raise ConfigError(
                f"data.batch_gpu={b} is smaller than max(2, model.mbstd_group={group}): each pass needs whole "
                "minibatch-stddev groups; raise data.batch_gpu or lower model.mbstd_group"
            )
        if b % group:
            raise ConfigError(f"data.batch_gpu={b} must be a multiple of model.mbstd_group={group}")
    shrink = _get(cfg, "model.loss.pl_batch_shrink", 1)
    if (_get(cfg, "model.loss.pl_weight", 0) or 0) > 0 and b < batch:
        rows, rounds = max(batch // shrink, 1), batch // b
        if rows % rounds:
            raise ConfigError(
                f"data.batch_gpu={b}: path length runs on data.batch_size // model.loss.pl_batch_shrink = {rows} "
                f"rows, which {rounds} passes cannot split evenly; use a data.batch_gpu that is a multiple of "
                f"model.loss.pl_batch_shrink={shrink}"
            )


def check_model_data(model, datamodule) -> None:
    """The model must fit the data: same resolution, channels, and labels the data actually has."""
    if tuple(model.resolution) != tuple(datamodule.resolution):
        raise ConfigError(
            f"model.resolution={list(model.resolution)} does not match the data's "
            f"{list(datamodule.resolution)} (data.resolution)"
        )
    if model.colorspace.name != datamodule.colorspace.name:
        raise ConfigError(
            f"the model trains in colorspace {model.colorspace.name!r} but the data delivers "
            f"{datamodule.colorspace.name!r} (set colorspace=...)"
        )
    if model.G.img_channels != datamodule.img_channels:
        raise ConfigError(
            f"model.img_channels={model.G.img_channels} does not match the data's "
            f"{datamodule.img_channels} channels (colorspace.name)"
        )
    n = model.num_classes if model.conditional_on_labels else 0
    if n and n != datamodule.num_classes:
        have = datamodule.num_classes
        raise ConfigError(
            f"model.num_classes={n}, but the data has {have or 'no'} labels; "
            f"use model.num_classes={have} (conditional) or 0 (unconditional)"
        )


def resolve_ckpt_path(cfg: DictConfig, start_if_missing: bool = False) -> str | None:
    """Map ``ckpt_path`` to a file: ``last`` -> ``<run_dir>/checkpoints/last.ckpt``.

    ``last`` without that file is refused naming the path, unless ``start_if_missing`` (a sweep job
    or a SLURM job, whose one command serves the first launch and every relaunch): then the run
    starts fresh. A fresh launch (``ckpt_path=null``) into a run folder that already has a
    checkpoint is refused, so an earlier run is never overwritten by accident.
    """
    run_dir = Path(cfg.paths.run_dir)
    last = run_dir / "checkpoints" / "last.ckpt"
    if cfg.ckpt_path == "last":
        if last.is_file():
            return str(last)
        if start_if_missing:
            return None
        started = (run_dir / ".hydra").is_dir()  # Hydra itself may have just created an empty run_dir
        what = f"no checkpoint at {last}" if started else f"no run at {run_dir}"
        raise ConfigError(
            f"ckpt_path=last: {what} "
            f"(task_name={cfg.task_name!r}, run_name={cfg.run_name!r}); check both names, "
            "or drop ckpt_path to start a new run"
        )
    if cfg.ckpt_path is None and last.is_file():
        raise ConfigError(
            f"run_name={cfg.run_name!r} already has {last}; pass ckpt_path=last to resume it, "
            "or choose another run_name"
        )
    return None if cfg.ckpt_path is None else str(cfg.ckpt_path)
