"""Read gamut checkpoints: rebuild a module, load a generator for the tools, or start a new run from them.

:func:`load_module` rebuilds the LightningModule a training checkpoint records (its class path under
``checkpoint["gamut"]["module"]``, its ``hyper_parameters``). :func:`load_inference` is the one
generator loader of the tools: a training checkpoint or a safetensors export
(:mod:`src.checkpoints.export`), as an :class:`InferenceModel`. ``read_init_checkpoint``,
``apply_init_architecture`` and ``load_init_weights`` start a fresh run from a checkpoint's weights
(``ckpt_init``). Everything loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path

import torch

from src.checkpoints.export import load_generator
from src.colorspaces import ColorSpace
from src.datamodules.labels import known_frequencies, seed_labels
from src.modules.base import GANModule
from src.nn.style_generator import StyleGenerator, style_generator


def module_class(path: str) -> type[GANModule] | None:
    """The model family class at ``path`` (``package.module.Class``, as a checkpoint records it under
    ``gamut.module`` and a config names it in ``model._target_``), or None when ``path`` names no
    ``GANModule`` subclass. Its module is imported (errors as ``importlib.import_module``'s)."""
    module_name, _, cls_name = path.rpartition(".")
    if not module_name:
        return None
    cls = vars(importlib.import_module(module_name)).get(cls_name)
    return cls if isinstance(cls, type) and issubclass(cls, GANModule) else None


def load_module(ckpt_path: str | Path, device: str | torch.device = "cpu") -> GANModule:
    """Rebuild the module class recorded in the checkpoint, load its weights, move it to ``device``.

    Loads with ``weights_only=True``. Raises ``FileNotFoundError`` / ``ValueError`` naming the file.
    """
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"ckpt={str(path)!r}: no such checkpoint file")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    target = ckpt.get("gamut", {}).get("module")
    if not target or "hyper_parameters" not in ckpt:
        raise ValueError(f"ckpt={str(path)!r} is not a gamut training checkpoint (no module record)")
    cls = module_class(str(target))
    if cls is None:
        raise ValueError(f"ckpt={str(path)!r} records the module {target!r}, which is not a gamut model family")
    model = cls(**ckpt["hyper_parameters"])
    model.load_state_dict(ckpt["state_dict"])
    model.on_load_checkpoint(ckpt)
    return model.to(device).eval()


# ----------------------------------------------------------------------------------------------
# One loader for the inference tools: a training checkpoint or an exported generator.


class InferenceModel:
    """What the tools need from a generator file: ``G`` (G_ema, eval, fp32), its color space and labels.

    Built by :func:`load_inference` from a gamut ``.ckpt`` or a ``.safetensors`` export, so every
    tool accepts either, on CPU or GPU. ``generator`` must be a
    :class:`~src.nn.style_generator.StyleGenerator` (``z_dim``, ``c_dim``, ``mapping``, ``synthesis``;
    a ``TypeError`` otherwise), and ``G`` is typed as one. This is not a ``GANModule``, and shares of
    its contract only ``colorizes``, ``colorspace``, ``num_classes`` and ``sample``.
    """

    #: the contract's flag (``GANModule.colorizes``): an export is always a generator
    colorizes = False

    def __init__(
        self,
        generator: torch.nn.Module,
        colorspace: ColorSpace,
        source: Path,
        config: dict | None = None,
        label_distribution: torch.Tensor | None = None,
    ) -> None:
        self.G: StyleGenerator = style_generator(generator)
        self.colorspace, self.source, self.config = colorspace, source, config or {}
        # the training data's class frequencies (a checkpoint records them; all zeros = not known)
        self.label_distribution = known_frequencies(label_distribution)
        self.num_classes = int(self.G.c_dim)

    @property
    def device(self) -> torch.device:
        return next(self.G.parameters()).device

    def onehot(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        """Class indices ``[N]`` -> one-hot ``[N, num_classes]`` (None for unconditional models)."""
        if not self.num_classes or labels is None:
            return None
        return torch.nn.functional.one_hot(labels.long(), self.num_classes).to(torch.float32)

    def labels_for(self, n: int, class_idx: int | None, seeds: Sequence[int] | None = None) -> torch.Tensor | None:
        """One-hot labels for ``n`` images (None for unconditional models): all of ``class_idx``, or
        without it one class per seed (``seeds``, default ``0..n-1``) drawn from the training data's
        class frequencies, so a seed always gets the same class. ValueError naming ``class_idx`` when
        it is out of range, or missing and the file does not record the frequencies."""
        if not self.num_classes:
            return None
        if class_idx is None:
            if self.label_distribution is None:
                raise ValueError(
                    f"this model is conditional ({self.num_classes} classes) and {self.source} does "
                    "not record its data's class frequencies: pass class_idx="
                )
            seeds = range(n) if seeds is None else seeds
            return self.onehot(seed_labels(self.label_distribution, self.num_classes, seeds).to(self.device))
        if not 0 <= int(class_idx) < self.num_classes:
            raise ValueError(f"class_idx={class_idx}: valid classes are 0..{self.num_classes - 1}")
        return self.onehot(torch.full((n,), int(class_idx), device=self.device))

    @torch.no_grad()
    def sample(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        psi: float = 1.0,
        cutoff: int | None = None,
        noise_mode: str = "const",
    ) -> torch.Tensor:
        """Images in the model's color space, no grad, fp32 (``c`` one-hot or None)."""
        return self.G(z, c, psi=psi, cutoff=cutoff, noise_mode=noise_mode).float()

    @torch.no_grad()
    def synthesize(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        return self.G.synthesis(ws, noise_mode=noise_mode).float()


def load_inference(
    path: str | Path, device: str | torch.device = "cpu", key: str = "ckpt", channels_last: bool = False
) -> InferenceModel:
    """Load G_ema from a gamut ``.ckpt`` (via :func:`load_module`) or a ``.safetensors`` export
    (:func:`src.checkpoints.export.load_generator`), in fp32.

    ``channels_last`` stores G's convolution weights in NHWC, the faster layout for inference on CPU
    (oneDNN) and tensor-core GPUs: the same images, about 1.4x faster at 256 px (docs/benchmarks.md).
    Raises ``FileNotFoundError`` / ``ValueError`` naming ``key`` and the file.
    """
    model = _load_inference(path, device, key)
    if channels_last:
        model.G.to(memory_format=torch.channels_last)
    return model


def _load_inference(path: str | Path, device: str | torch.device, key: str) -> InferenceModel:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{key}={str(path)!r}: no such checkpoint file (a gamut .ckpt or an exported .safetensors)"
        )
    if path.suffix == ".safetensors":
        try:
            g, cs, config = load_generator(path, device)
        except ValueError as e:
            raise ValueError(f"{key}={str(path)!r}: {str(e).removeprefix(str(path) + ': ')}") from None
        frequencies = config.get("label_distribution")
        return InferenceModel(
            g.float(), cs, path, config, label_distribution=None if frequencies is None else torch.tensor(frequencies)
        )
    model = _load_checkpoint(path, device, key)
    if model.colorizes:
        raise ValueError(
            f"{key}={str(path)!r} holds a {type(model).__name__}, a colorization model without a latent "
            "space (scripts/colorize.py uses it)"
        )
    return inference_model(model, path)


def _load_checkpoint(path: Path, device: str | torch.device, key: str) -> GANModule:
    try:
        return load_module(path, device)
    except (RuntimeError, EOFError) as e:  # not a torch file at all
        raise ValueError(f"{key}={str(path)!r} is not a gamut checkpoint or export ({type(e).__name__})") from None


def inference_model(model: GANModule, path: Path) -> InferenceModel:
    """The :class:`InferenceModel` of a loaded generator module (its G_ema in fp32, eval, no grad)."""
    g = model.G_ema.float().eval().requires_grad_(False)
    return InferenceModel(
        g, model.colorspace, path, {"colorspace": model.colorspace.name}, label_distribution=model.label_frequencies()
    )


def load_for_views(
    path: str | Path, device: str | torch.device = "cpu", key: str = "ckpt", channels_last: bool = False
) -> InferenceModel | GANModule:
    """What a viewer can show of any file the tools read: an :class:`InferenceModel` (as
    :func:`load_inference`) for a generator, or the module itself for a colorization checkpoint
    (``module.colorizes``), loaded once. Errors as :func:`load_inference`'s."""
    path = Path(path)
    if path.suffix != ".safetensors" and path.is_file():
        model = _load_checkpoint(path, device, key)
        if model.colorizes:
            return model.eval()
        loaded = inference_model(model, path)
        if channels_last:
            loaded.G.to(memory_format=torch.channels_last)
        return loaded
    return load_inference(path, device, key, channels_last)


# ----------------------------------------------------------------------------------------------
# Starting a fresh run from existing weights (``ckpt_init``): fine-tuning an import or a past run.

# Hyperparameters that belong to the new run's config, not to the weights being loaded.
# Run state that is not weights: a fine-tune starts it afresh (as NVIDIA's --resume copies only G, D, G_ema).
RUN_STATE_PREFIXES = ("augmentation.",)


def read_init_checkpoint(path: str | Path) -> dict:
    """Load a gamut checkpoint for ``ckpt_init`` (weights_only); ValueError naming the key and file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(
            f"ckpt_init={str(path)!r}: no such file (a gamut .ckpt, e.g. from "
            "scripts/import_checkpoint.py or a run's checkpoints/)"
        )
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if "hyper_parameters" not in ckpt or not ckpt.get("gamut", {}).get("module"):
        raise ValueError(
            f"ckpt_init={str(path)!r} is not a gamut checkpoint; import foreign models with "
            "scripts/import_checkpoint.py first"
        )
    return ckpt


def apply_init_architecture(cfg, ckpt: dict) -> list[str]:
    """Make ``cfg.model`` build the checkpoint's architecture; returns notes on what changed.

    Architecture keys (resolution, widths, mapping depth, ...) come from the checkpoint; training
    keys (the target family's ``training_keys``) and keys the checkpoint lacks (e.g. SEGAN's ``mode`` when starting
    from a StyleGAN2) stay as configured. ``data.resolution`` follows the checkpoint.
    """
    hp, state = ckpt["hyper_parameters"], ckpt["gamut"]
    cls_name = str(state["module"]).rpartition(".")[2]
    src_cls = module_class(str(state["module"]))
    target = str(cfg.model.get("_target_", ""))
    tgt_cls = module_class(target)
    if src_cls is None or tgt_cls is None or not issubclass(tgt_cls, src_cls):
        raise ValueError(
            f"ckpt_init holds a {cls_name}, which model={target or '?'} cannot start from; "
            f"pick the matching model= group"
        )
    cs = state.get("colorspace", hp.get("colorspace"))
    if cs != cfg.colorspace.name:
        raise ValueError(
            f"ckpt_init was trained in colorspace {cs!r}, the config uses {cfg.colorspace.name!r}; pass colorspace={cs}"
        )
    notes = []
    res = hp.get("resolution")
    if res is not None and cfg.data.resolution != res:
        notes.append(f"data.resolution: {cfg.data.resolution} -> {res}")
        cfg.data.resolution = res
    for key, value in hp.items():
        if key in tgt_cls.training_keys or key in ("resolution", "colorspace", "img_channels") or key not in cfg.model:
            continue
        if cfg.model[key] != value:
            notes.append(f"model.{key}: {cfg.model[key]} -> {value}")
            cfg.model[key] = value
    return notes


def load_init_weights(model: GANModule, ckpt: dict) -> list[str]:
    """Copy the checkpoint's weights into ``model``; new parameters keep their initialisation."""
    weights = {k: v for k, v in ckpt["state_dict"].items() if not k.startswith(RUN_STATE_PREFIXES)}
    try:
        result = model.load_state_dict(weights, strict=False)
    except RuntimeError as e:  # shape mismatches
        detail = next((ln.strip() for ln in str(e).splitlines() if "size mismatch" in ln), str(e).splitlines()[0])
        raise ValueError(f"ckpt_init does not fit the model: {detail}") from None
    if result.unexpected_keys:
        raise ValueError(f"ckpt_init has tensors the model does not: {', '.join(result.unexpected_keys[:5])}")
    notes = []
    if result.missing_keys:
        notes.append(
            f"{len(result.missing_keys)} tensor(s) not in ckpt_init keep their fresh initialisation: "
            + ", ".join(result.missing_keys[:5])
            + (" ..." if len(result.missing_keys) > 5 else "")
        )
    return notes
