"""Export a generator to safetensors (weights + JSON config) and load it back without Lightning.

The file holds ``G_ema``'s state dict; its metadata entry ``gamut`` is a JSON object with the
generator class, its constructor arguments and the color space, so inference needs only
``src.modules.<family>.generator`` and torch.
"""

from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save as st_save

from src.datamodules.colorspaces import get_colorspace
from src.utils.io import atomic_write

FORMAT = "gamut-generator/1"


def generator_config(model) -> dict:
    """Class path, constructor kwargs and color space of ``model.G_ema`` (from the module's hparams)."""
    g = model.G_ema
    names = [p for p in inspect.signature(type(g).__init__).parameters if p != "self"]
    hp = dict(model.hparams)
    kwargs = {n: hp[n] for n in names if n in hp}
    kwargs["resolution"] = list(model.resolution)
    return {"format": FORMAT, "class": f"{type(g).__module__}.{type(g).__qualname__}", "kwargs": kwargs,
            "colorspace": model.colorspace.name}


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
    cls = getattr(importlib.import_module(module_name), cls_name)
    g = cls(**config["kwargs"])
    g.load_state_dict(state)
    return g.to(device).eval().requires_grad_(False), get_colorspace(config["colorspace"]), config


# ----------------------------------------------------------------------------------------------
# One loader for the inference tools: a training checkpoint or an exported generator.


class InferenceModel:
    """What the tools need from a generator file: ``G`` (G_ema, eval, fp32), its color space and labels.

    Built by :func:`load_inference` from a gamut ``.ckpt`` or a ``.safetensors`` export, so every
    tool accepts either, on CPU or GPU.
    """

    def __init__(self, generator: torch.nn.Module, colorspace, source: Path, config: dict | None = None) -> None:
        self.G, self.colorspace, self.source, self.config = generator, colorspace, source, config or {}
        self.num_classes = int(getattr(generator, "c_dim", 0) or 0)

    @property
    def device(self) -> torch.device:
        return next(self.G.parameters()).device

    def onehot(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        """Class indices ``[N]`` -> one-hot ``[N, num_classes]`` (None for unconditional models)."""
        if not self.num_classes or labels is None:
            return None
        return torch.nn.functional.one_hot(labels.long(), self.num_classes).to(torch.float32)

    def labels_for(self, n: int, class_idx: int | None) -> torch.Tensor | None:
        """One-hot labels for ``n`` images of ``class_idx``; ValueError when a conditional model gets none."""
        if not self.num_classes:
            return None
        if class_idx is None:
            raise ValueError(f"this model is conditional ({self.num_classes} classes): pass class_idx=")
        if not 0 <= int(class_idx) < self.num_classes:
            raise ValueError(f"class_idx={class_idx}: valid classes are 0..{self.num_classes - 1}")
        return self.onehot(torch.full((n,), int(class_idx), device=self.device))

    @torch.no_grad()
    def sample(self, z: torch.Tensor, c: torch.Tensor | None = None, psi: float = 1.0, cutoff: int | None = None,
               noise_mode: str = "const") -> torch.Tensor:
        """Images in the model's color space, no grad, fp32 (``c`` one-hot or None)."""
        return self.G(z, c, psi=psi, cutoff=cutoff, noise_mode=noise_mode).float()

    @torch.no_grad()
    def synthesize(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        return self.G.synthesis(ws, noise_mode=noise_mode).float()


def load_inference(path: str | Path, device: str | torch.device = "cpu", key: str = "ckpt",
                   channels_last: bool = False) -> InferenceModel:
    """Load G_ema from a gamut ``.ckpt`` (via :func:`load_module`) or a ``.safetensors`` export, in fp32.

    ``channels_last`` stores G's convolution weights in NHWC, the faster layout for inference on CPU
    (oneDNN) and tensor-core GPUs: the same images, about 1.4x faster at 256 px (docs/benchmarks.md).
    Raises ``FileNotFoundError`` / ``ValueError`` naming ``key`` and the file.
    """
    model = _load_inference(path, device, key)
    if channels_last:
        model.G.to(memory_format=torch.channels_last)
    return model


def _load_inference(path: str | Path, device: str | torch.device, key: str) -> InferenceModel:
    from src.utils.checkpoints import load_module

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{key}={str(path)!r}: no such checkpoint file (a gamut .ckpt or an exported .safetensors)")
    if path.suffix == ".safetensors":
        try:
            g, cs, config = load_generator(path, device)
        except ValueError as e:
            raise ValueError(f"{key}={str(path)!r}: {str(e).removeprefix(str(path) + ': ')}") from None
        return InferenceModel(g.float(), cs, path, config)
    try:
        model = load_module(path, device)
    except (RuntimeError, EOFError) as e:  # not a torch file at all
        raise ValueError(f"{key}={str(path)!r} is not a gamut checkpoint or export ({type(e).__name__})") from None
    g = model.G_ema.float().eval().requires_grad_(False)
    return InferenceModel(g, model.colorspace, path, {"colorspace": model.colorspace.name})


# ----------------------------------------------------------------------------------------------
# TorchScript: z (and labels) + psi -> image, noise 'const', for runtimes without gamut's code.


class _ScriptableGenerator(torch.nn.Module):
    """Mapping, truncation toward ``w_avg`` with a tensor ``psi``, synthesis with the stored noise."""

    def __init__(self, generator: torch.nn.Module) -> None:
        super().__init__()
        self.G = generator

    def forward(self, z: torch.Tensor, psi: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        ws = self.G.mapping(z, c)
        ws = self.G.mapping.w_avg + psi * (ws - self.G.mapping.w_avg)
        return self.G.synthesis(ws, noise_mode="const")


def export_torchscript(generator: torch.nn.Module, path: str | Path, batch: int = 2) -> Path:
    """Trace ``generator`` (fp32, CPU) to a TorchScript file, atomically; call it as ``f(z, psi)``
    (``f(z, psi, c)`` for conditional models) with ``psi`` a 0-d tensor; noise mode is 'const'.

    Traced, not scripted: the batch size is free, every other shape is fixed by the generator.
    """
    import io
    import warnings

    g = copy_for_export(generator)
    wrapper = _ScriptableGenerator(g).eval()
    z = torch.randn(batch, g.z_dim)
    psi = torch.tensor(1.0)
    c_dim = int(getattr(g, "c_dim", 0) or 0)
    inputs = (z, psi) if not c_dim else (z, psi, torch.eye(c_dim)[torch.arange(batch) % c_dim])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # shape asserts become constants: expected for a fixed generator
        traced = torch.jit.trace(wrapper, inputs, check_trace=False)
    buf = io.BytesIO()
    torch.jit.save(traced, buf)
    return atomic_write(path, lambda f: f.write(buf.getvalue()))


def copy_for_export(generator: torch.nn.Module) -> torch.nn.Module:
    import copy

    return copy.deepcopy(generator).float().cpu().eval().requires_grad_(False)
