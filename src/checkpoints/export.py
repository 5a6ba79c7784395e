"""Export a generator without Lightning: safetensors (weights + JSON config, loaded back by
:func:`load_generator`) or a traced TorchScript file (:func:`export_torchscript`).

The safetensors file holds ``G_ema``'s state dict; its metadata entry ``gamut`` is a JSON object
with the generator class, its constructor arguments, the color space and, for a conditional model,
the training data's class frequencies (``label_distribution``), so inference needs only
``src.modules.<family>.generator`` and torch. The tools load either format, or a training
checkpoint, through :func:`src.checkpoints.load.load_inference`.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save as st_save

from src.colorspaces import get_colorspace
from src.datamodules.labels import known_frequencies
from src.latents.truncation import truncate
from src.nn.style_generator import StyleGenerator
from src.utils.io import atomic_write

FORMAT = "gamut-generator/1"


def generator_config(model) -> dict:
    """Class path, constructor kwargs and color space of ``model.G_ema``.

    The kwargs are those the generator was built with (``init_kwargs``), so what the module derived
    from its own arguments (SEGAN's subspace settings, ``g_channel_max``, the colour space's channel
    count) is rebuilt as it was.
    """
    g = model.G_ema
    kwargs = dict(g.init_kwargs)
    kwargs["resolution"] = list(kwargs["resolution"])
    config = {
        "format": FORMAT,
        "class": f"{type(g).__module__}.{type(g).__qualname__}",
        "kwargs": kwargs,
        "colorspace": model.colorspace.name,
    }
    frequencies = known_frequencies(model.label_frequencies())
    if frequencies is not None:  # the tools draw each seed's class from it
        config["label_distribution"] = [float(v) for v in frequencies]
    return config


def export_generator(model, path: str | Path, extra: dict | None = None) -> Path:
    """Write ``model.G_ema`` to ``path`` (safetensors), atomically. ``extra`` goes into the JSON."""
    config = generator_config(model) | (extra or {})
    state = {k: v.detach().cpu().contiguous() for k, v in model.G_ema.state_dict().items()}
    blob = st_save(state, metadata={"gamut": json.dumps(config)})
    return atomic_write(path, lambda f: f.write(blob))


def load_generator(path: str | Path, device: str | torch.device = "cpu"):
    """Rebuild the exported generator; returns ``(generator in eval mode, colorspace, config)``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such generator file")
    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = (f.metadata() or {}).get("gamut")
        if meta is None:
            raise ValueError(f"{path}: not a gamut generator export (no 'gamut' metadata)")
        config = json.loads(meta)
        state = {k: f.get_tensor(k) for k in f.keys()}
    if config.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown export format {config.get('format')!r} (expected {FORMAT})")
    module_name, _, cls_name = config["class"].rpartition(".")
    if not module_name.startswith("src.modules."):
        raise ValueError(f"{path}: generator class {config['class']!r} is not a gamut network")
    cls = vars(importlib.import_module(module_name)).get(cls_name)
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise ValueError(f"{path}: generator class {config['class']!r} is not a gamut network")
    g = cls(**config["kwargs"])
    g.load_state_dict(state)
    return g.to(device).eval().requires_grad_(False), get_colorspace(config["colorspace"]), config


# ----------------------------------------------------------------------------------------------
# TorchScript: z (and labels) + psi -> image, noise 'const', for runtimes without gamut's code.


class _ScriptableGenerator(torch.nn.Module):
    """Mapping, truncation toward ``w_avg`` with a tensor ``psi`` (:func:`src.latents.truncation.truncate`),
    synthesis with the stored noise."""

    def __init__(self, generator: StyleGenerator) -> None:
        super().__init__()
        self.G = generator

    def forward(self, z: torch.Tensor, psi: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        ws = truncate(self.G.mapping(z, c), self.G.mapping.w_avg, psi)
        return self.G.synthesis(ws, noise_mode="const")


def export_torchscript(generator: StyleGenerator, path: str | Path, batch: int = 2) -> Path:
    """Trace ``generator`` (a :class:`~src.nn.style_generator.StyleGenerator`; fp32, CPU) to a TorchScript
    file, atomically; call it as ``f(z, psi)`` (``f(z, psi, c)`` for conditional models) with ``psi`` a
    0-d tensor; noise mode is 'const'.

    Traced, not scripted: the batch size is free, every other shape is fixed by the generator.
    """
    import io
    import warnings

    g = copy_for_export(generator)
    wrapper = _ScriptableGenerator(g).eval()
    z = torch.randn(batch, g.z_dim)
    psi = torch.tensor(1.0)
    c_dim = int(g.c_dim)
    inputs = (z, psi) if not c_dim else (z, psi, torch.eye(c_dim)[torch.arange(batch) % c_dim])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # shape asserts become constants: expected for a fixed generator
        traced = torch.jit.trace(wrapper, inputs, check_trace=False)
    buf = io.BytesIO()
    torch.jit.save(traced, buf)
    return atomic_write(path, lambda f: f.write(buf.getvalue()))


def copy_for_export(generator: StyleGenerator) -> StyleGenerator:
    import copy

    return copy.deepcopy(generator).float().cpu().eval().requires_grad_(False)
