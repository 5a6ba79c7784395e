"""Start-up config validation: one clear message naming the key and the allowed values.

Runs before anything is written to the run folder (bad input loses nothing on disk). What a model
family requires of the config (its size rule, its batch and ``data.batch_gpu`` rules) is asked of
the family's class, located from ``model._target_`` (:func:`model_family`,
:class:`src.utils.family_rules.FamilyRules`); the checks here are family-neutral.
"""

from __future__ import annotations

import inspect
import pydoc
from pathlib import Path

from omegaconf import DictConfig

from src.colorspaces import COLORSPACE_NAMES, get_colorspace
from src.utils.family_rules import FamilyRules
from src.utils.integrity import NoIntactCheckpoint, damage, resume_from
from src.utils.resolution import base_shape, check_base_shape, fp16_first_block, parse_size
from src.utils.run_folder import HYDRA_DIR, last_checkpoint


class ConfigError(ValueError):
    """A config value is invalid; the message names the key and what is allowed."""


def _get(cfg: DictConfig, key: str, default=None):
    node = cfg
    for part in key.split("."):
        if node is None or part not in node:
            return default
        node = node[part]
    return node


def target_class(target: object) -> type | None:
    """The class a ``_target_`` names (imported), or None when there is none, it names a function, or
    it cannot be found (instantiation then reports the bad ``_target_`` itself). Quiet: unlike
    ``hydra.utils.get_class`` it logs nothing for a function target such as a callback factory."""
    if not target:
        return None
    try:
        cls = pydoc.locate(str(target))
    except Exception:  # an error while importing the target's module: instantiation reports it
        return None
    return cls if isinstance(cls, type) else None


def model_class(cfg: DictConfig) -> type | None:
    """The class ``model._target_`` names (:func:`target_class`)."""
    return target_class(_get(cfg, "model._target_"))


def model_family(cfg: DictConfig) -> type[FamilyRules] | None:
    """The model family ``model._target_`` names (a ``GANModule`` subclass, whose config rules
    validation asks), or None for another class or none."""
    cls = model_class(cfg)
    return cls if cls is not None and issubclass(cls, FamilyRules) else None


def check_model_keys(cfg: DictConfig) -> None:
    """Every ``model.*`` key must be an argument of the model class (presets are StyleGAN2-family sets)."""
    cls = model_class(cfg)
    if cls is None:
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
    passes its generator's on: :attr:`FamilyRules.kwargs_to`, read from the class that declares it);
    None when the ``**kwargs`` chain never ends."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(vars(klass)["__init__"]).parameters.values()
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names
        passes_to = vars(klass).get("kwargs_to")
        if passes_to is not None:
            target = _init_arguments(passes_to)
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
    family = model_family(cfg)  # located once; its rules are asked below
    value = _get(cfg, "data.resolution")
    try:
        size = parse_size(value, "data.resolution")  # parsed once; the checks below take the pair
        if family is not None and family.doubles_from_base:
            check_base_shape(size, "data.resolution", value)
    except ValueError as e:
        raise ConfigError(str(e)) from None

    check_model_keys(cfg)
    check_precision(cfg, family, size)
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
    if family is not None:
        try:
            family.check_batch(_get(cfg, "model", {}), batch)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    check_batch_gpu(cfg, batch, family)

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


def check_precision(cfg: DictConfig, family: type[FamilyRules] | None, size: tuple[int, int]) -> None:
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
    if n is not None and family is not None and family.doubles_from_base:
        try:
            fp16_first_block(base_shape(*size)[2], n)
        except ValueError as e:
            raise ConfigError(str(e)) from None


def check_batch_gpu_value(value: object) -> int | None:
    """``data.batch_gpu``: rows per forward/backward pass, a positive integer or None (the whole batch
    in one pass); ``ConfigError`` otherwise. The families that accumulate check their argument with it."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"data.batch_gpu={value!r}: expected a positive integer (rows per pass) or null")
    return value


def check_batch_gpu(cfg: DictConfig, batch: int, family: type[FamilyRules] | None) -> None:
    """``data.batch_gpu`` (gradient accumulation): a positive integer that divides the per-device
    batch, for a family that accumulates gradients; the family's own rules (whole minibatch-stddev
    groups, path length's shrunk batch) come from ``FamilyRules.check_batch_gpu``."""
    b = check_batch_gpu_value(_get(cfg, "data.batch_gpu"))
    if b is None:
        return
    if family is not None and not family.accumulates_gradients:
        target = _get(cfg, "model._target_", "this model")
        raise ConfigError(
            f"data.batch_gpu={b}: {target} does not accumulate gradients ({family.no_accumulation_reason}); "
            "lower data.batch_size instead"
        )
    if batch % b:
        raise ConfigError(f"data.batch_gpu={b} does not divide data.batch_size={batch} (per device)")
    if family is not None and b < batch:
        try:
            family.check_batch_gpu(_get(cfg, "model", {}), batch, b)
        except ValueError as e:
            raise ConfigError(str(e)) from None


def check_model_data(model, datamodule, checkpoint: bool = False) -> None:
    """The model must fit the data: same resolution, channels, and labels the data actually has.

    ``checkpoint``: the model was loaded from a checkpoint to be evaluated (``src.eval``): messages
    name the checkpoint, and the data need not have the model's labels (metric reals may have none).
    """
    if tuple(model.resolution) != tuple(datamodule.resolution):
        raise ConfigError(
            f"data.resolution={list(datamodule.resolution)} does not match the checkpoint's {list(model.resolution)}"
            if checkpoint
            else f"model.resolution={list(model.resolution)} does not match the data's "
            f"{list(datamodule.resolution)} (data.resolution)"
        )
    if model.colorspace.name != datamodule.colorspace.name:
        raise ConfigError(
            f"the data's colorspace {datamodule.colorspace.name!r} differs from the checkpoint's "
            f"{model.colorspace.name!r}"
            if checkpoint
            else f"the model trains in colorspace {model.colorspace.name!r} but the data delivers "
            f"{datamodule.colorspace.name!r} (set colorspace=...)"
        )
    if model.img_channels != datamodule.img_channels:
        raise ConfigError(
            f"model.img_channels={model.img_channels} does not match the data's "
            f"{datamodule.img_channels} channels (colorspace.name)"
        )
    n = model.num_classes if model.conditional_on_labels and not checkpoint else 0
    if n and n != datamodule.num_classes:
        have = datamodule.num_classes
        raise ConfigError(
            f"model.num_classes={n}, but the data has {have or 'no'} labels; "
            f"use model.num_classes={have} (conditional) or 0 (unconditional)"
        )


def resolve_ckpt_path(cfg: DictConfig, start_if_missing: bool = False) -> str | None:
    """Map ``ckpt_path`` to a file: ``last`` -> ``<run_dir>/checkpoints/last.ckpt``.

    A damaged ``last.ckpt`` falls back to the run's newest intact checkpoint with a warning, and a run
    whose checkpoints are all damaged is refused naming each (:func:`src.utils.integrity.resume_from`).
    ``last`` with no checkpoint is refused naming the path, unless ``start_if_missing`` (a sweep job
    or a SLURM job, whose one command serves the first launch and every relaunch): then the run
    starts fresh. A fresh launch (``ckpt_path=null``) into a run folder that already has a
    checkpoint is refused, so an earlier run is never overwritten by accident. A checkpoint named by
    its path must be intact (:func:`src.utils.integrity.damage`).
    """
    run_dir = Path(cfg.paths.run_dir)
    last = last_checkpoint(run_dir)
    if cfg.ckpt_path == "last":
        try:
            found = resume_from(run_dir)  # last.ckpt, or the newest intact checkpoint (with a warning)
        except NoIntactCheckpoint as e:
            raise ConfigError(str(e)) from None
        if found is not None:
            return str(found)
        if start_if_missing:
            return None
        started = (run_dir / HYDRA_DIR).is_dir()  # Hydra itself may have just created an empty run_dir
        what = f"no checkpoint at {last}" if started else f"no run at {run_dir}"
        raise ConfigError(
            f"ckpt_path=last: {what} "
            f"(task_name={cfg.task_name!r}, run_name={cfg.run_name!r}); check both names, "
            "or drop ckpt_path to start a new run"
        )
    if cfg.ckpt_path is None and (last.is_file() or any(last.parent.glob("*.ckpt"))):
        raise ConfigError(
            f"run_name={cfg.run_name!r} already has checkpoints in {last.parent}; pass ckpt_path=last to resume it, "
            "or choose another run_name"
        )
    if cfg.ckpt_path is not None:
        problem = damage(cfg.ckpt_path)
        if problem is not None:
            raise ConfigError(f"ckpt_path={str(cfg.ckpt_path)!r}: the checkpoint is {problem}")
    return None if cfg.ckpt_path is None else str(cfg.ckpt_path)
