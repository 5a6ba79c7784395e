"""Map NVIDIA StyleGAN2 networks (stylegan2-ada-pytorch, stylegan3 ``cfg=stylegan2``) onto gamut's.

StyleGAN3 generators (``cfg=stylegan3-t/-r``) are :mod:`src.pretrained.nvidia_stylegan3`'s, which
reads their discriminator (networks_stylegan2's) with :func:`discriminator_architecture` and
:func:`discriminator_state` from here.

The records come from :mod:`src.pretrained.safe_pickle`. Architecture values are read from the
objects' stored attributes (what the network actually used, e.g. ``conv_clamp``, the mapping's
``lr_multiplier`` via ``bias_gain``, ``w_avg_beta``, the minibatch-stddev group), falling back on
the stored constructor arguments, and then checked against every tensor's shape when the gamut
module is filled (:func:`src.checkpoints.importing.build_module`).

Name map (NVIDIA's networks.py): ``mapping.fc{i}`` -> ``mapping.layers.{i}``; ``synthesis.b{res}`` ->
``synthesis.blocks.{log2(res)-2}``; D ``b{res}`` -> ``blocks.{k}`` counted from the top and
``b4`` -> ``epilogue``; ``resample_filter`` buffers are dropped after checking they hold the
[1, 3, 3, 1] filter gamut uses.
"""

from __future__ import annotations

import math
import re

import torch

from src.pretrained.safe_pickle import PersistentRecord
from src.pretrained.types import Imported, UnsupportedNetworkError

G_CLASSES = {
    "Generator",
    "MappingNetwork",
    "SynthesisNetwork",
    "SynthesisBlock",
    "SynthesisLayer",
    "ToRGBLayer",
    "FullyConnectedLayer",
}
D_CLASSES = {
    "Discriminator",
    "DiscriminatorBlock",
    "DiscriminatorEpilogue",
    "MinibatchStdLayer",
    "Conv2dLayer",
    "FullyConnectedLayer",
    "MappingNetwork",
}


def _walk(rec: PersistentRecord, path: str = ""):
    yield path, rec
    for k, child in rec.children.items():
        yield from _walk(child, f"{path}.{k}" if path else k)


def check_classes(rec: PersistentRecord, allowed: set[str], what: str, family: str = "StyleGAN2") -> None:
    """Every record under ``rec`` is of a class in ``allowed``; else name the first other one and its path."""
    for path, r in _walk(rec):
        if r.class_name not in allowed:
            raise UnsupportedNetworkError(
                f"{what} contains a {r.class_name} at {path or what}, which gamut's {family} cannot represent"
            )


def _one(values: set, what: str):
    if len(values) != 1:
        raise UnsupportedNetworkError(
            f"{what} differs between layers ({sorted(map(str, values))}); gamut uses one value"
        )
    return next(iter(values))


def _kwargs(rec: PersistentRecord) -> dict:
    """Constructor arguments as stored, with stylegan2-ada-pytorch's nested synthesis_kwargs flattened."""
    kw = dict(rec.attr("_init_kwargs") or {})
    kw.update(kw.pop("synthesis_kwargs", None) or {})
    return kw


def _check_filter(rec: PersistentRecord, what: str) -> None:
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    expected = torch.outer(taps, taps) / 64
    for path, r in _walk(rec):
        f = r.state.get("_buffers", {}).get("resample_filter")
        if f is not None and (f.shape != expected.shape or not torch.allclose(f.float(), expected)):
            raise UnsupportedNetworkError(f"{what}.{path}.resample_filter is not the [1,3,3,1] filter gamut uses")


def _activation(rec: PersistentRecord, what: str) -> None:
    acts = {
        r.attr("activation")
        for _, r in _walk(rec)
        if r.class_name in ("SynthesisLayer", "Conv2dLayer") and r.attr("activation") not in (None, "linear")
    }
    acts |= {
        r.attr("activation")
        for p, r in _walk(rec)
        if r.class_name == "FullyConnectedLayer" and re.fullmatch(r"(mapping\.)?fc\d+", p)
    }
    if acts - {"lrelu"}:
        raise UnsupportedNetworkError(f"{what} uses activation(s) {sorted(acts - {'lrelu'})}; gamut uses lrelu")


def generator_hparams(g: PersistentRecord) -> dict:
    """StyleGAN2 module arguments describing NVIDIA's generator record ``g``."""
    check_classes(g, G_CLASSES, "G")
    _check_filter(g, "G")
    _activation(g, "G")
    syn, mapping = g.children.get("synthesis"), g.children.get("mapping")
    if syn is None or mapping is None:
        raise UnsupportedNetworkError("G has no synthesis/mapping sub-networks")
    kw = _kwargs(g)
    res = int(g.attr("img_resolution", kw.get("img_resolution", 0)))
    blocks = [syn.children[f"b{r}"] for r in syn.attr("block_resolutions", [])]
    if not blocks or 4 << (len(blocks) - 1) != res:
        raise UnsupportedNetworkError(f"G's blocks {syn.attr('block_resolutions')} do not make a {res}x{res} image")
    arch = _one({b.attr("architecture", "skip") for b in blocks}, "G architecture")
    if arch != "skip":
        raise UnsupportedNetworkError(f"G architecture {arch!r}: gamut's generator is 'skip' (config F)")
    layers = [r for _, r in _walk(syn) if r.class_name in ("SynthesisLayer", "ToRGBLayer")]
    clamp = _one({r.attr("conv_clamp") for r in layers}, "G conv_clamp")
    use_noise = _one(
        {bool(r.attr("use_noise", True)) for r in layers if r.class_name == "SynthesisLayer"}, "G use_noise"
    )
    num_layers = int(mapping.attr("num_layers", 8))
    fcs = [fc for i in range(num_layers) if (fc := mapping.children.get(f"fc{i}")) is not None]
    if len(fcs) < num_layers:
        raise UnsupportedNetworkError(f"G mapping lacks some of its {num_layers} layers fc0..fc{num_layers - 1}")
    lr_mult = _one({round(float(fc.attr("bias_gain", 0.01)), 12) for fc in fcs}, "mapping lr_multiplier")
    embed = mapping.attr("embed_features")
    w_dim = int(g.attr("w_dim"))
    if embed not in (None, 0, w_dim) or mapping.attr("layer_features") not in (None, w_dim):
        raise UnsupportedNetworkError("G mapping has embed/layer widths different from w_dim")
    return dict(
        img_channels=int(g.attr("img_channels")),
        resolution=res,
        num_classes=int(g.attr("c_dim", 0)),
        z_dim=int(g.attr("z_dim")),
        w_dim=w_dim,
        map_depth=num_layers,
        map_lr_multiplier=lr_mult,
        w_avg_beta=float(mapping.attr("w_avg_beta") or 0.995),
        channel_base=int(kw.get("channel_base") or 32768),
        channel_max=int(kw.get("channel_max") or 512),
        use_noise=use_noise,
        conv_clamp=None if clamp is None else float(clamp),
    )


def discriminator_architecture(d: PersistentRecord) -> dict:
    """D's own architecture (networks_stylegan2's ``Discriminator``, also the D of StyleGAN3 pickles):
    ``channel_base``/``channel_max`` (stored constructor arguments, else NVIDIA's defaults; the tensor
    shapes are checked when the module is filled), ``conv_clamp``, the minibatch-stddev group and
    channels, and ``num_fp16_res`` from the blocks' ``use_fp16`` flags (None when not stored)."""
    check_classes(d, D_CLASSES, "D")
    _check_filter(d, "D")
    _activation(d, "D")
    kw = _kwargs(d)
    blocks = [r for p, r in _walk(d) if r.class_name == "DiscriminatorBlock"]
    arch = _one({b.attr("architecture", "resnet") for b in blocks} or {"resnet"}, "D architecture")
    if arch != "resnet":
        raise UnsupportedNetworkError(
            f"D architecture {arch!r}: gamut's discriminator is 'resnet'; "
            "pass discriminator=fresh to import G and G_ema with a new D"
        )
    convs = [r for p, r in _walk(d) if r.class_name == "Conv2dLayer" and r.attr("bias", True) is not None]
    clamp = _one({r.attr("conv_clamp") for r in convs}, "D conv_clamp")
    epi = d.children.get("b4")
    if epi is None:
        raise UnsupportedNetworkError("D has no 4x4 epilogue (b4)")
    mbstd = epi.children.get("mbstd")
    group = int(mbstd.attr("group_size") or 4) if mbstd is not None else 4
    channels = int(mbstd.attr("num_channels", 1)) if mbstd is not None else 0
    flags = [b.attr("use_fp16") for b in blocks]
    # NVIDIA's rule: the num_fp16_res highest resolutions (at least 8x8) run in fp16, so the count is the value
    fp16 = None if not flags or any(f is None for f in flags) else sum(bool(f) for f in flags)
    return dict(
        channel_base=int(kw.get("channel_base") or 32768),
        channel_max=int(kw.get("channel_max") or 512),
        conv_clamp=None if clamp is None else float(clamp),
        mbstd_group=group,
        mbstd_channels=channels,
        num_fp16_res=fp16,
    )


def discriminator_hparams(d: PersistentRecord, g_hparams: dict) -> dict:
    """The D-side module arguments (mbstd group/channels), checked against the generator's (gamut's
    StyleGAN2 gives G and D the same widths and clamp)."""
    arch = discriminator_architecture(d)
    for key in ("channel_base", "channel_max"):
        if arch[key] != g_hparams[key]:
            raise UnsupportedNetworkError(f"D {key}={arch[key]} differs from G's {g_hparams[key]}")
    clamp = arch["conv_clamp"]
    if (clamp is None) != (g_hparams["conv_clamp"] is None) or (clamp and clamp != g_hparams["conv_clamp"]):
        raise UnsupportedNetworkError(f"D conv_clamp={clamp} differs from G's {g_hparams['conv_clamp']}")
    return dict(mbstd_group=arch["mbstd_group"], mbstd_channels=arch["mbstd_channels"])


def _block_index(res: int, top: int) -> int:
    return int(math.log2(top)) - int(math.log2(res))


def _renamed(rec: PersistentRecord, block: str, block_name) -> dict[str, torch.Tensor]:
    """``rec``'s tensors under gamut names: ``mapping.fc{i}`` -> ``mapping.layers.{i}``, and each
    ``<block>b{res}.`` prefix -> ``block_name(res)``; ``resample_filter`` buffers are dropped."""
    out = {}
    for name, t in rec.tensors().items():
        if name.endswith("resample_filter"):
            continue
        name = re.sub(r"^mapping\.fc(\d+)\.", r"mapping.layers.\1.", name)
        m = re.match(rf"^{re.escape(block)}b(\d+)\.(.*)$", name)
        if m:
            name = f"{block_name(int(m.group(1)))}.{m.group(2)}"
        out[name] = t
    return out


def generator_state(g: PersistentRecord) -> dict[str, torch.Tensor]:
    """NVIDIA G tensors under gamut's ``Generator`` names."""
    return _renamed(g, "synthesis.", lambda res: f"synthesis.blocks.{int(math.log2(res)) - 2}")


def discriminator_state(d: PersistentRecord) -> dict[str, torch.Tensor]:
    """NVIDIA D tensors under gamut's ``Discriminator`` names."""
    top = int(d.attr("img_resolution"))
    return _renamed(d, "", lambda res: "epilogue" if res == 4 else f"blocks.{_block_index(res, top)}")


def convert(data: dict, discriminator: str = "import") -> Imported:
    """``data``: the unpickled snapshot dict. Returns the gamut architecture and state dicts."""
    missing = [k for k in ("G_ema",) if not isinstance(data.get(k), PersistentRecord)]
    if missing:
        found = ", ".join(sorted(str(k) for k in data)) or "nothing"
        raise UnsupportedNetworkError(f"no G_ema network in the pickle (found: {found})")
    g_ema = data["G_ema"]
    hparams = generator_hparams(g_ema)
    notes = []
    g = data.get("G")
    if isinstance(g, PersistentRecord):
        if generator_hparams(g) != hparams:
            raise UnsupportedNetworkError("G and G_ema have different architectures")
    else:
        g = None
        notes.append("no G in the pickle: G starts as a copy of G_ema")
    d = data.get("D")
    d_state = None
    if discriminator == "import" and isinstance(d, PersistentRecord):
        hparams.update(discriminator_hparams(d, hparams))
        d_state = discriminator_state(d)
    elif discriminator == "import":
        notes.append("no D in the pickle: D is freshly initialised (fine-tuning starts with an untrained D)")
    else:
        notes.append("discriminator=fresh: D is freshly initialised")
    return Imported(
        hparams=hparams,
        G=None if g is None else generator_state(g),
        D=d_state,
        G_ema=generator_state(g_ema),
        notes=notes,
        format="nvidia-pickle",
    )
