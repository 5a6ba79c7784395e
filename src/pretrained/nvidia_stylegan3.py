"""Map NVIDIA StyleGAN3 networks (NVlabs/stylegan3 ``--cfg=stylegan3-t|stylegan3-r``) onto gamut's ``StyleGAN3``.

A StyleGAN3 snapshot (``training/training_loop.py``) holds ``G`` and ``G_ema``, instances of
``training/networks_stylegan3.py:Generator``, and ``D``, a ``training/networks_stylegan2.py:Discriminator``
(read by :mod:`src.pretrained.nvidia`). The records come from :mod:`src.pretrained.safe_pickle`; nothing
of NVIDIA's code runs.

Every architecture value is read from what the stored objects used, not from constructor defaults:

- ``Generator`` / ``SynthesisNetwork``: ``z_dim``, ``c_dim``, ``w_dim``, ``img_resolution``, ``img_channels``,
  ``num_layers``, ``num_critical``, ``margin_size``, ``output_scale``, ``num_fp16_res``; ``channel_base`` and
  ``channel_max`` from the stored constructor arguments (``train.py`` passes both), else from the widths;
- ``MappingNetwork``: depth (``num_layers``), learning-rate multiplier (the layers' ``bias_gain``),
  ``w_avg_beta``; the label embedding of conditional models;
- ``SynthesisLayer`` (one value over the layers): ``conv_kernel``, ``conv_clamp``, ``magnitude_ema_beta``,
  ``use_radial_filters`` (the non-critical layers' ``down_radial``), ``filter_size`` (taps per
  up/downsampling factor), ``lrelu_upsampling`` (``tmp_sampling_rate`` over the larger of the rates);
- the schedule: ``first_cutoff`` is layer 0's input cutoff, ``last_stopband_rel`` the last layer's
  ``(half width + cutoff) / cutoff``; ``first_stopband`` shows in the stored values only when it exceeds
  half the first sampling rate (else any value with the same sampling rates builds the same network, and
  NVIDIA's 2**2.1 is taken when it does). Stored constructor arguments win where present.

The whole stored schedule (each layer's channels, canvas sizes, sampling rates, cutoffs, half widths,
factors, taps, padding, fp16 flag; the input's size, rate and bandwidth) goes into ``Imported.layout``
under gamut's layer names; :mod:`src.checkpoints.importing` compares it, and the stored ``up_filter`` /
``down_filter`` buffers, with what gamut's generator designs, so a network gamut would compute differently
(e.g. NVIDIA's code at a size that is not a power of two, which gamut lays out per its own rule) is
refused naming the layer.

Tensor names: ``mapping.fc{i}`` -> ``mapping.layers.{i}``; ``synthesis.L{i}_{size}_{ch}`` ->
``synthesis.layers.{i}`` (the i-th of the stored ``layer_names``); everything else keeps its name
(:func:`src.modules.stylegan3.networks.gamut_name` is the same map, on the family's side).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import torch

from src.pretrained import nvidia
from src.pretrained.safe_pickle import PersistentRecord
from src.pretrained.types import Imported, UnsupportedNetworkError
from src.utils.resolution import base_shape

__all__ = ["G_CLASSES", "convert", "generator_hparams", "generator_layout", "generator_state", "is_stylegan3"]

G_CLASSES = {
    "Generator",
    "MappingNetwork",
    "FullyConnectedLayer",
    "SynthesisNetwork",
    "SynthesisInput",
    "SynthesisLayer",
}
# networks_stylegan3.py's SynthesisNetwork default, used only where the stored values allow any stopband
NVIDIA_FIRST_STOPBAND = 2**2.1
SCHEDULE_KEYS = (
    "num_layers",
    "num_critical",
    "first_cutoff",
    "first_stopband",
    "last_stopband_rel",
    "margin_size",
    "output_scale",
    "filter_size",
    "lrelu_upsampling",
)


def is_stylegan3(data: dict) -> bool:
    """Whether the snapshot's ``G_ema`` (or ``G``) is a StyleGAN3 generator (its synthesis has a Fourier
    ``SynthesisInput``)."""
    for key in ("G_ema", "G"):
        g = data.get(key)
        if isinstance(g, PersistentRecord):
            syn = g.children.get("synthesis")
            return syn is not None and any(r.class_name == "SynthesisInput" for r in syn.children.values())
    return False


def _num(value: Any) -> Any:
    """A stored number as a plain Python one (numpy scalars and 0-d arrays included)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    return value


def _stored(rec: PersistentRecord, key: str, where: str) -> Any:
    """An attribute the constructor always stores; its absence means a damaged or foreign record."""
    value = rec.attr(key)
    if value is None:
        raise UnsupportedNetworkError(f"G.{where} ({rec.class_name}) lacks its {key!r} attribute")
    return _num(value)


def _size(value: Any) -> tuple[int, int]:
    """NVIDIA's ``[width, height]`` (an int or a 2-array) as gamut's ``(height, width)``."""
    arr = np.broadcast_to(np.asarray(value), [2])
    return int(arr[1]), int(arr[0])


def _one(values: list, what: str) -> Any:
    distinct = set(values)
    if len(distinct) != 1:
        raise UnsupportedNetworkError(
            f"G's {what} differs between layers ({sorted(map(str, distinct))}); gamut uses one value"
        )
    return next(iter(distinct))


def _layers(syn: PersistentRecord) -> list[tuple[str, PersistentRecord]]:
    """The synthesis layers in order (the stored ``layer_names``), checked to be one ToRGB at the end."""
    names = list(syn.attr("layer_names") or [])
    num_layers = int(_num(syn.attr("num_layers", len(names) - 1)))
    if len(names) != num_layers + 1:
        raise UnsupportedNetworkError(
            f"G's synthesis lists {len(names)} layers (layer_names) for num_layers={num_layers}; "
            f"expected {num_layers + 1}"
        )
    out = []
    for i, name in enumerate(names):
        rec = syn.children.get(name)
        if rec is None or rec.class_name != "SynthesisLayer" or not re.fullmatch(rf"L{i}_\d+_\d+", name):
            raise UnsupportedNetworkError(f"G's synthesis layer {i} ({name}) is missing or not a SynthesisLayer")
        if bool(rec.attr("is_torgb")) != (i == num_layers):
            raise UnsupportedNetworkError(f"G's synthesis layer {name}: ToRGB must be the last layer, and only it")
        out.append((name, rec))
    extra = set(syn.children) - set(names) - {"input"}
    if extra:
        raise UnsupportedNetworkError(f"G's synthesis has sub-modules gamut does not know: {sorted(extra)}")
    return out


# SynthesisLayer attributes read into the layout (gamut's LayerSpec has the same names)
_FLAGS = ("is_torgb", "is_critically_sampled", "use_fp16", "down_radial")
_INTS = (
    "in_channels",
    "out_channels",
    "in_sampling_rate",
    "out_sampling_rate",
    "tmp_sampling_rate",
    "conv_kernel",
    "up_factor",
    "down_factor",
    "up_taps",
    "down_taps",
)
_FLOATS = ("in_cutoff", "out_cutoff", "in_half_width", "out_half_width")


def generator_layout(g: PersistentRecord) -> dict[str, dict[str, Any]]:
    """The stored schedule under gamut's names (``synthesis.input``, ``synthesis.layers.{i}``), in the
    field names of gamut's ``LayerSpec`` (sizes as ``(height, width)``)."""
    syn = g.children["synthesis"]
    inp = syn.children["input"]
    layout: dict[str, dict[str, Any]] = {
        "synthesis.input": dict(
            channels=int(_stored(inp, "channels", "synthesis.input")),
            size=_size(_stored(inp, "size", "synthesis.input")),
            sampling_rate=float(_stored(inp, "sampling_rate", "synthesis.input")),
            bandwidth=float(_stored(inp, "bandwidth", "synthesis.input")),
        )
    }
    for i, (name, r) in enumerate(_layers(syn)):
        where = f"synthesis.{name}"
        entry: dict[str, Any] = dict(name=name)
        entry.update({k: bool(_stored(r, k, where)) for k in _FLAGS})
        entry.update({k: int(_stored(r, k, where)) for k in _INTS})
        entry.update({k: float(_stored(r, k, where)) for k in _FLOATS})
        entry["in_size"], entry["out_size"] = _size(_stored(r, "in_size", where)), _size(_stored(r, "out_size", where))
        entry["padding"] = tuple(int(_num(p)) for p in _stored(r, "padding", where))
        layout[f"synthesis.layers.{i}"] = entry
    return layout


def _stored_kwargs(g: PersistentRecord) -> dict:
    """The constructor arguments stored with the generator and its synthesis network (train.py's G_kwargs)."""
    kw = dict(g.children["synthesis"].attr("_init_kwargs") or {})
    kw.update({k: v for k, v in (g.attr("_init_kwargs") or {}).items() if k != "mapping_kwargs"})
    kw.update(kw.pop("synthesis_kwargs", None) or {})
    return kw


def _first_stopband(layout: dict, num_layers: int, num_critical: int, last_stopband: float) -> float:
    """``first_stopband`` (f_t0) from the stored layers. The stopbands ramp as ``f_t,i = f_t0 ** (1 - e_i) *
    f_t,N ** e_i``; a layer whose stored half width exceeds ``s_i / 2 - f_c,i`` shows its ``f_t,i`` and so
    f_t0. Otherwise every f_t0 that gives the stored sampling rates (``s_i / 4 < f_t,i <= s_i / 2``) builds
    the same network: NVIDIA's 2**2.1 when it is one of them, else the geometric middle of the range."""
    lo, hi = 0.0, math.inf
    for i in range(num_layers + 1):
        e = min(i / (num_layers - num_critical), 1.0)
        if e >= 1:
            break
        layer = layout[f"synthesis.layers.{i}"]
        rate, cutoff, half_width = layer["out_sampling_rate"], layer["out_cutoff"], layer["out_half_width"]

        def solve(stopband: float, e: float = e) -> float:
            return (stopband / last_stopband**e) ** (1 / (1 - e))

        if half_width + cutoff > rate / 2 * (1 + 1e-12):
            return solve(half_width + cutoff)
        lo, hi = max(lo, solve(rate / 4)), min(hi, solve(rate / 2))
    if lo < NVIDIA_FIRST_STOPBAND <= hi or hi == math.inf:
        return NVIDIA_FIRST_STOPBAND
    return math.sqrt(lo * hi) if lo > 0 else hi


def _channel_widths(layout: dict, kw: dict) -> tuple[int, int, list[str]]:
    """``channel_base``/``channel_max``: the stored arguments, else derived from the layer widths."""
    notes: list[str] = []
    layers = [v for k, v in layout.items() if k.startswith("synthesis.layers.") and not v["is_torgb"]]
    widths = [layout["synthesis.input"]["channels"]] + [v["out_channels"] for v in layers]
    cutoffs = [layers[0]["in_cutoff"]] + [v["out_cutoff"] for v in layers]
    channel_max = int(kw.get("channel_max") or max(widths))
    if kw.get("channel_base"):
        return int(kw["channel_base"]), channel_max, notes
    uncapped = [(w, c) for w, c in zip(widths, cutoffs) if w < channel_max] or list(zip(widths, cutoffs))
    width, cutoff = uncapped[-1]  # the largest cutoff: the least rounding in rint(channel_base / 2 / cutoff)
    notes.append("G's channel_base was not stored: derived from the layer widths")
    return int(round(2 * width * cutoff)), channel_max, notes


def generator_hparams(g: PersistentRecord) -> tuple[dict, list[str]]:
    """``StyleGAN3`` module arguments (G's side, plus ``img_channels``) describing NVIDIA's generator
    record ``g``, and notes on what was derived."""
    nvidia.check_classes(g, G_CLASSES, "G", family="StyleGAN3")
    syn, mapping = g.children.get("synthesis"), g.children.get("mapping")
    if syn is None or mapping is None or not isinstance(syn.children.get("input"), PersistentRecord):
        raise UnsupportedNetworkError("G has no synthesis/mapping sub-networks or no synthesis input")
    layout = generator_layout(g)
    kw = _stored_kwargs(g)
    layers = [rec for _, rec in _layers(syn)]
    convs = [r for r in layers if not r.attr("is_torgb")]
    res = int(_num(g.attr("img_resolution", kw.get("img_resolution", 0))))
    if int(_num(syn.attr("img_resolution", res))) != res:
        raise UnsupportedNetworkError(f"G's img_resolution {res} differs from its synthesis network's")
    for path, r in [("mapping", mapping), *((f"synthesis.{n}", r) for n, r in _layers(syn))]:
        for sub, child in r.children.items():
            act = child.attr("activation", "linear")
            if act != ("lrelu" if path == "mapping" and sub.startswith("fc") else "linear"):
                raise UnsupportedNetworkError(f"G's {path}.{sub} uses activation {act!r}, which gamut's does not")
    num_map = int(_num(mapping.attr("num_layers", 2)))
    fcs = [fc for i in range(num_map) if (fc := mapping.children.get(f"fc{i}")) is not None]
    if len(fcs) < num_map:
        raise UnsupportedNetworkError(f"G mapping lacks some of its {num_map} layers fc0..fc{num_map - 1}")
    lr_mult = float(_one([round(float(_num(fc.attr("bias_gain", 0.01))), 12) for fc in fcs], "mapping lr_multiplier"))
    c_dim = int(_num(g.attr("c_dim", 0)))
    if (c_dim > 0) != ("embed" in mapping.children):
        raise UnsupportedNetworkError(f"G has c_dim={c_dim} but {'no' if c_dim else 'a'} label embedding")
    clamp = _one([_num(r.attr("conv_clamp")) for r in layers], "conv_clamp")
    up = [(int(r.attr("up_taps")), int(r.attr("up_factor"))) for r in convs if int(r.attr("up_factor")) > 1]
    down = [(int(r.attr("down_taps")), int(r.attr("down_factor"))) for r in convs if int(r.attr("down_factor")) > 1]
    sizes = [t / f for t, f in up + down]
    filter_size = _one(sizes, "taps per resampling factor (filter_size)") if sizes else kw.get("filter_size", 6)
    rates = [
        (int(r.attr("tmp_sampling_rate")), int(r.attr("in_sampling_rate")), int(r.attr("out_sampling_rate")))
        for r in convs
    ]
    lrelu_up = _one([tmp / max(s_in, s_out) for tmp, s_in, s_out in rates], "lrelu_upsampling")
    radial = [bool(_num(r.attr("down_radial"))) for r in convs if not _num(r.attr("is_critically_sampled"))]
    use_radial = _one(radial, "use of radial filters") if radial else bool(kw.get("use_radial_filters", False))
    first, last = layout["synthesis.layers.0"], layout[f"synthesis.layers.{len(layers) - 1}"]
    channel_base, channel_max, notes = _channel_widths(layout, kw)
    schedule = dict(
        num_layers=int(_num(syn.attr("num_layers"))),
        num_critical=int(_num(syn.attr("num_critical", kw.get("num_critical", 2)))),
        first_cutoff=first["in_cutoff"],
        first_stopband=0.0,  # below, from the last stopband
        last_stopband_rel=(last["out_half_width"] + last["out_cutoff"]) / last["out_cutoff"],
        margin_size=int(_num(syn.attr("margin_size", kw.get("margin_size", 10)))),
        output_scale=float(_num(syn.attr("output_scale", kw.get("output_scale", 0.25)))),
        filter_size=int(filter_size),
        lrelu_upsampling=int(lrelu_up),
    )
    # NVIDIA's default 2**0.3, without the rounding of (f_h + f_c) / f_c
    if abs(schedule["last_stopband_rel"] - 2**0.3) < 1e-12:
        schedule["last_stopband_rel"] = 2**0.3
    schedule.update({k: kw[k] for k in SCHEDULE_KEYS if k in kw and k != "first_stopband"})
    last_stopband = last["out_cutoff"] * schedule["last_stopband_rel"]
    schedule["first_stopband"] = (
        float(kw["first_stopband"])
        if "first_stopband" in kw  # stored arguments are what it was built with
        else _first_stopband(layout, schedule["num_layers"], schedule["num_critical"], last_stopband)
    )
    hparams = dict(
        img_channels=int(_num(g.attr("img_channels"))),
        resolution=res,
        num_classes=c_dim,
        z_dim=int(_num(g.attr("z_dim"))),
        w_dim=int(_num(g.attr("w_dim"))),
        map_depth=num_map,
        map_lr_multiplier=lr_mult,
        w_avg_beta=float(_num(mapping.attr("w_avg_beta") or 0.998)),
        g_channel_base=channel_base,
        g_channel_max=channel_max,
        conv_kernel=_one([int(_num(r.attr("conv_kernel"))) for r in convs], "conv_kernel"),
        use_radial_filters=use_radial,
        magnitude_ema_beta=float(_one([_num(r.attr("magnitude_ema_beta")) for r in layers], "magnitude_ema_beta")),
        conv_clamp=None if clamp is None else float(clamp),
        num_fp16_res=int(_num(syn.attr("num_fp16_res", kw.get("num_fp16_res", 4)))),
        use_noise=False,
        synthesis=schedule,
    )
    return hparams, notes


def generator_state(g: PersistentRecord, prefix: str = "G_ema.") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """NVIDIA G tensors under gamut's ``StyleGAN3Generator`` names, and gamut name -> source name for
    the renamed ones (keys with ``prefix``, for messages)."""
    index = {name: i for i, name in enumerate(g.children["synthesis"].attr("layer_names") or [])}
    out, names = {}, {}
    for src, t in g.tensors().items():
        name = re.sub(r"^mapping\.fc(\d+)\.", r"mapping.layers.\1.", src)
        m = re.match(r"^synthesis\.(L\d+_\d+_\d+)\.(.*)$", name)
        if m and m.group(1) in index:
            name = f"synthesis.layers.{index[m.group(1)]}.{m.group(2)}"
        out[name] = t
        if name != src:
            names[prefix + name] = prefix + src
    return out, names


def _fresh_d_widths(hparams: dict) -> tuple[int, int]:
    """A new D's widths when the pickle's is not imported: NVIDIA's train.py gives D ``--cbase``/``--cmax``,
    which config R doubles for G only (1x1 convolutions and radial filters mark R)."""
    r_config = hparams["conv_kernel"] == 1 and hparams["use_radial_filters"]
    div = 2 if r_config else 1
    return hparams["g_channel_base"] // div, hparams["g_channel_max"] // div


def convert(data: dict, discriminator: str = "import") -> Imported:
    """``data``: the unpickled StyleGAN3 snapshot dict. Returns gamut's ``StyleGAN3`` arguments and state dicts."""
    g_ema = data.get("G_ema")
    if not isinstance(g_ema, PersistentRecord):
        found = ", ".join(sorted(str(k) for k in data)) or "nothing"
        raise UnsupportedNetworkError(f"no G_ema network in the pickle (found: {found})")
    hparams, notes = generator_hparams(g_ema)
    layout = generator_layout(g_ema)
    g_ema_state, source_names = generator_state(g_ema, "G_ema.")
    g = data.get("G")
    g_state = None
    if isinstance(g, PersistentRecord):
        if generator_hparams(g)[0] != hparams or generator_layout(g) != layout:
            raise UnsupportedNetworkError("G and G_ema have different architectures")
        g_state, g_names = generator_state(g, "G.")
        source_names.update(g_names)
    else:
        notes.append("no G in the pickle: G starts as a copy of G_ema")
    d = data.get("D")
    d_state = None
    if discriminator == "import" and isinstance(d, PersistentRecord):
        arch = nvidia.discriminator_architecture(d)
        clamp = arch["conv_clamp"]
        if clamp != hparams["conv_clamp"]:
            raise UnsupportedNetworkError(
                f"D conv_clamp={clamp} differs from G's {hparams['conv_clamp']}; gamut's StyleGAN3 uses one value"
            )
        n_blocks = len([k for k in d.children if re.fullmatch(r"b\d+", k)]) - 1  # b4 is the epilogue
        if arch["num_fp16_res"] is not None and arch["num_fp16_res"] != min(hparams["num_fp16_res"], n_blocks):
            notes.append(
                f"D ran {arch['num_fp16_res']} block(s) in fp16, G num_fp16_res={hparams['num_fp16_res']}: gamut uses "
                "G's value for both (this matters only under 16-mixed precision)"
            )
        hparams.update(
            channel_base=arch["channel_base"],
            channel_max=arch["channel_max"],
            mbstd_group=arch["mbstd_group"],
            mbstd_channels=arch["mbstd_channels"],
        )
        d_state = nvidia.discriminator_state(d)
    else:
        hparams["channel_base"], hparams["channel_max"] = _fresh_d_widths(hparams)
        why = "no D in the pickle" if discriminator == "import" else "discriminator=fresh"
        notes.append(
            f"{why}: D is freshly initialised (channel_base {hparams['channel_base']}, "
            f"channel_max {hparams['channel_max']})"
        )
    resolutions = base_shape(hparams["resolution"], hparams["resolution"])[2] + 1
    if hparams["num_fp16_res"] > resolutions:  # NVIDIA's default 4 on a tiny model; gamut's D accepts at most this
        notes.append(
            f"num_fp16_res {hparams['num_fp16_res']} -> {resolutions}: the model has {resolutions} resolutions "
            "(the same layers run in fp16; checked against the stored flags)"
        )
        hparams["num_fp16_res"] = resolutions
    # G's own widths only where they differ from D's (as the stylegan3-r preset writes them)
    for key in ("channel_base", "channel_max"):
        if hparams[f"g_{key}"] == hparams[key]:
            hparams[f"g_{key}"] = None
    transform = g_ema_state.get("synthesis.input.transform")
    if transform is not None and not torch.equal(transform, torch.eye(3, dtype=transform.dtype)):
        notes.append("G_ema's input transform is not the identity: kept as stored (every image is moved by it)")
    return Imported(
        hparams=hparams,
        G=g_state,
        D=d_state,
        G_ema=g_ema_state,
        notes=notes,
        format="nvidia-pickle",
        family="stylegan3",
        source_names=source_names,
        layout=layout,
    )
