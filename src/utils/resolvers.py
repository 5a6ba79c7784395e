"""OmegaConf resolvers used by the configs: ``${gamut.root:}``, the ``auto`` preset formulas and the
colour spaces' channel counts (``${gamut.channels:<name>}``, read from the registry)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from src.colorspaces import get_colorspace
from src.utils.resolution import parse_resolution

ROOT = Path(__file__).resolve().parents[2]


def _num_devices(devices, num_nodes=1) -> int:
    n = (
        devices
        if isinstance(devices, int) and devices > 0
        else (len(devices) if isinstance(devices, (list, tuple)) else 1)
    )
    return n * max(int(num_nodes or 1), 1)


def auto_preset(key: str, resolution, devices=1, num_nodes=1):
    """stylegan2-ada-pytorch's ``auto`` config (train.py, ``cfg_specs``).

    ``res`` is the longer side for non-square images. Keys: batch (per device), mbstd_group,
    channel_base, lr, r1_gamma, ema_kimg.
    """
    h, w = parse_resolution(resolution)
    res = max(h, w)
    gpus = _num_devices(devices, num_nodes)
    mb = max(min(gpus * min(4096 // res, 32), 64), gpus)
    values = {
        "batch": mb // gpus,
        "mbstd_group": min(mb // gpus, 4),
        "channel_base": 32768 if res >= 512 else 16384,
        "lr": 0.002 if res >= 1024 else 0.0025,
        "r1_gamma": 0.0002 * res**2 / mb,
        "ema_kimg": mb * 10 / 32,
    }
    if key not in values:
        raise ValueError(f"gamut.auto: unknown key {key!r}; allowed: {', '.join(values)}")
    return values[key]


def per_device(total_batch: int, devices=1, num_nodes=1) -> int:
    """Per-device batch for a preset's total batch (at least 1)."""
    return max(int(total_batch) // _num_devices(devices, num_nodes), 1)


def fp16_clamp(precision) -> float | None:
    """``model.conv_clamp`` by default: 256 under fp16 (``16-mixed``), as NVIDIA trains with fp16, else None."""
    return 256.0 if str(precision) in ("16-mixed", "16", "16-true") else None


def job_dir(default: str) -> str:
    """The folder of this job: Hydra's output dir when Hydra runs the job (so each multirun job has
    its own ``<run_name>/<job number>``), else ``default`` (compose API, tests, scripts)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        out = HydraConfig.get().runtime.output_dir
        if out:
            return str(out)
    return default


def channels(name: str) -> int:
    """``colorspace.channels``: the channels the model sees in colour space ``name`` (the registry's)."""
    return get_colorspace(name, "colorspace.name").channels


def input_channels(name: str) -> int:
    """``colorspace.input_channels``: the channels the reader delivers for ``name`` (the registry's)."""
    return get_colorspace(name, "colorspace.name").input_channels


def register() -> None:
    """Register the resolvers (idempotent)."""
    OmegaConf.register_new_resolver("gamut.root", lambda: str(ROOT), replace=True)
    OmegaConf.register_new_resolver("gamut.auto", auto_preset, replace=True)
    OmegaConf.register_new_resolver("gamut.per_device", per_device, replace=True)
    OmegaConf.register_new_resolver("gamut.job_dir", job_dir, replace=True)
    OmegaConf.register_new_resolver("gamut.fp16_clamp", fp16_clamp, replace=True)
    OmegaConf.register_new_resolver("gamut.channels", channels, replace=True)
    OmegaConf.register_new_resolver("gamut.input_channels", input_channels, replace=True)


register()
