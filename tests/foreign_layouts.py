"""Write tiny networks in NVIDIA's pickle layout and rosinality's state-dict layout, for import tests.

NVIDIA's StyleGAN2 (``nvidia_generator``/``nvidia_discriminator``) and StyleGAN3 generators
(``nvidia_stylegan3_generator``, with the numpy attributes NVIDIA's constructors store) and a snapshot's
``AugmentPipe`` (``nvidia_augment_pipe``).

The NVIDIA writer reproduces what ``torch_utils.persistence`` stores: for every network object a
call ``_reconstruct_persistent_obj(meta)`` with ``meta = {type, version, module_src, class_name,
state}``, where ``state`` is the object's ``__dict__`` (``_parameters``, ``_buffers``,
``_modules``, plain attributes, ``_init_kwargs`` as an ``EasyDict``). The stand-in modules
``torch_utils.persistence`` and ``dnnlib.util`` exist only while pickling, so the reader under
test cannot lean on them. The embedded source would raise if anything ever executed it.
"""

from __future__ import annotations

import contextlib
import pickle
import sys
import types
from collections import OrderedDict

import numpy as np
import torch

DUMMY_SOURCE = "raise RuntimeError('embedded network source must never be executed')\n"


def _reconstruct_persistent_obj(meta):  # only its pickled name matters
    raise RuntimeError("not to be called")


_reconstruct_persistent_obj.__module__ = "torch_utils.persistence"


class EasyDict(dict):
    pass


EasyDict.__module__ = "dnnlib.util"


@contextlib.contextmanager
def _fake_nvidia_modules():
    mods = {
        "torch_utils": types.ModuleType("torch_utils"),
        "torch_utils.persistence": types.ModuleType("torch_utils.persistence"),
        "dnnlib": types.ModuleType("dnnlib"),
        "dnnlib.util": types.ModuleType("dnnlib.util"),
    }
    mods["torch_utils.persistence"]._reconstruct_persistent_obj = _reconstruct_persistent_obj
    mods["dnnlib.util"].EasyDict = EasyDict
    saved = {k: sys.modules.get(k) for k in mods}
    sys.modules.update(mods)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


class Rec:
    """One persistent network object, pickled the way NVIDIA's persistence module does."""

    def __init__(self, class_name, params=None, buffers=None, modules=None, init_kwargs=None, **attrs):
        self.class_name = class_name
        self.state = {
            "training": False,
            "_parameters": OrderedDict(
                (k, torch.nn.Parameter(v.detach().clone(), requires_grad=False)) for k, v in (params or {}).items()
            ),
            "_buffers": OrderedDict((k, v.detach().clone()) for k, v in (buffers or {}).items()),
            "_non_persistent_buffers_set": set(),
            "_modules": OrderedDict(modules or {}),
            "_forward_hooks": OrderedDict(),
            "_init_args": (),
            "_init_kwargs": EasyDict({k: v for k, v in (init_kwargs or {}).items() if v is not None}),
            **attrs,
        }

    def __reduce__(self):
        meta = dict(type="class", version=6, module_src=DUMMY_SOURCE, class_name=self.class_name, state=self.state)
        return _reconstruct_persistent_obj, (meta,)


FIR2D = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64


def _fc(layer, activation="linear"):
    return Rec(
        "FullyConnectedLayer",
        {"weight": layer.weight, "bias": layer.bias},
        activation=activation,
        in_features=layer.in_features,
        out_features=layer.out_features,
        weight_gain=layer.weight_gain,
        bias_gain=layer.bias_gain,
    )


def _mapping(m, w_avg=True):
    mods = {f"fc{i}": _fc(fc, "lrelu") for i, fc in enumerate(m.layers)}
    if m.c_dim:
        mods = {"embed": _fc(m.embed), **mods}
    return Rec(
        "MappingNetwork",
        buffers={"w_avg": m.w_avg} if w_avg else None,
        modules=mods,
        z_dim=m.z_dim,
        c_dim=m.c_dim,
        w_dim=m.w_dim,
        num_ws=m.num_ws if w_avg else None,
        num_layers=len(m.layers),
        w_avg_beta=m.w_avg_beta if w_avg else None,
    )


def _synth_layer(layer, clamp):
    params = {"weight": layer.weight, "bias": layer.bias}
    buffers = {"resample_filter": FIR2D}
    if layer.use_noise:
        params["noise_strength"] = layer.noise_strength
        buffers["noise_const"] = layer.noise_const
    return Rec(
        "SynthesisLayer",
        params,
        buffers,
        {"affine": _fc(layer.affine)},
        use_noise=layer.use_noise,
        activation="lrelu",
        conv_clamp=clamp,
        up=layer.up,
        in_channels=layer.in_channels,
        out_channels=layer.out_channels,
    )


def nvidia_generator(g, conv_clamp=None, channel_base=None, channel_max=None) -> Rec:
    """An NVIDIA-layout record of gamut's ``Generator`` ``g`` (square images)."""
    res = g.resolution[0]
    blocks = {}
    for k, b in enumerate(g.synthesis.blocks):
        r = 4 << k
        mods = {}
        if b.conv0 is not None:
            mods["conv0"] = _synth_layer(b.conv0, conv_clamp)
        mods["conv1"] = _synth_layer(b.conv1, conv_clamp)
        mods["torgb"] = Rec(
            "ToRGBLayer",
            {"weight": b.torgb.weight, "bias": b.torgb.bias},
            modules={"affine": _fc(b.torgb.affine)},
            conv_clamp=conv_clamp,
        )
        blocks[f"b{r}"] = Rec(
            "SynthesisBlock",
            {"const": b.const} if b.conv0 is None else None,
            {"resample_filter": FIR2D},
            mods,
            architecture="skip",
            resolution=r,
            in_channels=b.in_channels,
        )
    synthesis = Rec(
        "SynthesisNetwork",
        modules=blocks,
        w_dim=g.w_dim,
        img_resolution=res,
        img_channels=g.img_channels,
        block_resolutions=[4 << k for k in range(len(blocks))],
    )
    kwargs = dict(
        z_dim=g.z_dim,
        c_dim=g.c_dim,
        w_dim=g.w_dim,
        img_resolution=res,
        img_channels=g.img_channels,
        mapping_kwargs=EasyDict(num_layers=len(g.mapping.layers)),
        channel_base=channel_base,
        channel_max=channel_max,
        num_fp16_res=0,
        conv_clamp=conv_clamp,
    )
    return Rec(
        "Generator",
        modules={"synthesis": synthesis, "mapping": _mapping(g.mapping)},
        init_kwargs=kwargs,
        z_dim=g.z_dim,
        c_dim=g.c_dim,
        w_dim=g.w_dim,
        img_resolution=res,
        img_channels=g.img_channels,
        num_ws=g.num_ws,
    )


def _conv(layer, clamp, activation="lrelu"):
    params = {"weight": layer.weight}
    attrs = dict(activation=activation, conv_clamp=clamp, down=layer.down)
    if layer.bias is not None:
        params["bias"] = layer.bias
    else:
        attrs["bias"] = None
    return Rec("Conv2dLayer", params, {"resample_filter": FIR2D}, **attrs)


def nvidia_discriminator(d, conv_clamp=None, channel_base=None, channel_max=None) -> Rec:
    res = d.resolution[0]
    mods = {}
    for k, b in enumerate(d.blocks):
        r = res >> k
        sub = {}
        if b.fromrgb is not None:
            sub["fromrgb"] = _conv(b.fromrgb, conv_clamp)
        sub["conv0"] = _conv(b.conv0, conv_clamp)
        sub["conv1"] = _conv(b.conv1, conv_clamp)
        sub["skip"] = _conv(b.skip, None, "linear")
        mods[f"b{r}"] = Rec(
            "DiscriminatorBlock", buffers={"resample_filter": FIR2D}, modules=sub, architecture="resnet", resolution=r
        )
    if d.c_dim:
        mods["mapping"] = _mapping(d.mapping, w_avg=False)
    e = d.epilogue
    mods["b4"] = Rec(
        "DiscriminatorEpilogue",
        modules={
            "mbstd": Rec("MinibatchStdLayer", group_size=e.mbstd.group_size, num_channels=e.mbstd.num_channels),
            "conv": _conv(e.conv, conv_clamp),
            "fc": _fc(e.fc, "lrelu"),
            "out": _fc(e.out),
        },
        cmap_dim=e.cmap_dim,
        architecture="resnet",
        resolution=4,
    )
    kwargs = dict(
        c_dim=d.c_dim,
        img_resolution=res,
        img_channels=d.img_channels,
        channel_base=channel_base,
        channel_max=channel_max,
        conv_clamp=conv_clamp,
        epilogue_kwargs=EasyDict(mbstd_group_size=e.mbstd.group_size),
    )
    return Rec(
        "Discriminator",
        modules=mods,
        init_kwargs=kwargs,
        c_dim=d.c_dim,
        img_resolution=res,
        img_channels=d.img_channels,
        block_resolutions=[res >> k for k in range(len(d.blocks))],
    )


def write_pickle(path, obj) -> None:
    with _fake_nvidia_modules(), open(path, "wb") as f:
        pickle.dump(obj, f, protocol=4)


# ----------------------------------------------------------------------------------------------
# rosinality/stylegan2-pytorch state-dict names (model.py: Generator / Discriminator).


def _rosi_modconv(layer, prefix, out):
    out[f"{prefix}.conv.weight"] = layer.weight.detach()[None].clone()
    out[f"{prefix}.conv.modulation.weight"] = layer.affine.weight.detach().clone()
    out[f"{prefix}.conv.modulation.bias"] = layer.affine.bias.detach().clone()


def rosinality_generator(g) -> dict:
    out = {}
    for i, fc in enumerate(g.mapping.layers):
        out[f"style.{i + 1}.weight"] = fc.weight.detach().clone()
        out[f"style.{i + 1}.bias"] = fc.bias.detach().clone()
    blocks = g.synthesis.blocks
    out["input.input"] = blocks[0].const.detach()[None].clone()
    convs = [("conv1", blocks[0].conv1)]
    for j, b in enumerate(blocks[1:]):
        convs += [(f"convs.{2 * j}", b.conv0), (f"convs.{2 * j + 1}", b.conv1)]
    for n, (name, layer) in enumerate(convs):
        _rosi_modconv(layer, name, out)
        out[f"{name}.noise.weight"] = layer.noise_strength.detach().reshape(1).clone()
        out[f"{name}.activate.bias"] = layer.bias.detach().clone()
        out[f"noises.noise_{n}"] = layer.noise_const.detach()[None, None].clone()
    for j, b in enumerate(blocks):
        name = "to_rgb1" if j == 0 else f"to_rgbs.{j - 1}"
        _rosi_modconv(b.torgb, name, out)
        out[f"{name}.bias"] = b.torgb.bias.detach().reshape(1, -1, 1, 1).clone()
        if j:
            out[f"{name}.upsample.kernel"] = FIR2D * 4
    return out


def rosinality_discriminator(d) -> dict:
    b0 = d.blocks[0]
    out = {"convs.0.0.weight": b0.fromrgb.weight.detach().clone(), "convs.0.1.bias": b0.fromrgb.bias.detach().clone()}
    for k, b in enumerate(d.blocks, start=1):
        out[f"convs.{k}.conv1.0.weight"] = b.conv0.weight.detach().clone()
        out[f"convs.{k}.conv1.1.bias"] = b.conv0.bias.detach().clone()
        out[f"convs.{k}.conv2.0.kernel"] = FIR2D.clone()
        out[f"convs.{k}.conv2.1.weight"] = b.conv1.weight.detach().clone()
        out[f"convs.{k}.conv2.2.bias"] = b.conv1.bias.detach().clone()
        out[f"convs.{k}.skip.0.kernel"] = FIR2D.clone()
        out[f"convs.{k}.skip.1.weight"] = b.skip.weight.detach().clone()
    e = d.epilogue
    for name, layer in (("final_conv.0", e.conv), ("final_linear.0", e.fc), ("final_linear.1", e.out)):
        out[f"{name}.weight"] = layer.weight.detach().clone()
        bias = "final_conv.1.bias" if name == "final_conv.0" else f"{name}.bias"
        out[bias] = layer.bias.detach().clone()
    return out


# ----------------------------------------------------------------------------------------------
# NVIDIA StyleGAN3 (NVlabs/stylegan3 training/networks_stylegan3.py): the attributes its constructors
# store, numpy arrays and scalars included (sizes as np.broadcast_to arrays, cutoffs as np.float64,
# use_fp16 as np.bool_), with sizes in NVIDIA's [width, height] order.


def _np_size(size) -> np.ndarray:
    h, w = size
    return np.broadcast_to(np.asarray(w), [2]) if h == w else np.asarray([w, h])


def _sg3_layer(layer) -> Rec:
    s = layer.spec
    rec = Rec(
        "SynthesisLayer",
        {"weight": layer.weight, "bias": layer.bias},
        {"magnitude_ema": layer.magnitude_ema},
        {"affine": _fc(layer.affine)},
        w_dim=layer.w_dim,
        is_torgb=s.is_torgb,
        is_critically_sampled=s.is_critically_sampled,
        use_fp16=np.bool_(s.use_fp16),
        in_channels=s.in_channels,
        out_channels=s.out_channels,
        in_size=_np_size(s.in_size),
        out_size=_np_size(s.out_size),
        in_sampling_rate=s.in_sampling_rate,
        out_sampling_rate=s.out_sampling_rate,
        tmp_sampling_rate=s.tmp_sampling_rate,
        in_cutoff=np.float64(s.in_cutoff),
        out_cutoff=np.float64(s.out_cutoff),
        in_half_width=np.float64(s.in_half_width),
        out_half_width=np.float64(s.out_half_width),
        conv_kernel=s.conv_kernel,
        conv_clamp=layer.conv_clamp,
        magnitude_ema_beta=layer.magnitude_ema_beta,
        up_factor=s.up_factor,
        up_taps=s.up_taps,
        down_factor=s.down_factor,
        down_taps=s.down_taps,
        down_radial=s.down_radial,
        padding=list(s.padding),
    )
    for name in ("up_filter", "down_filter"):  # register_buffer(name, None) when the filter is the identity
        f = getattr(layer, name)
        rec.state["_buffers"][name] = None if f is None else f.detach().clone()
    return rec


def nvidia_stylegan3_generator(g, stored_kwargs: bool = True) -> Rec:
    """An NVIDIA-layout record of gamut's ``StyleGAN3Generator`` ``g`` (square sizes, as NVIDIA's code).
    ``stored_kwargs``: keep the constructor arguments train.py passes (else none are stored)."""
    syn = g.synthesis
    kw = g.init_kwargs
    res = syn.resolution[0]
    inp = syn.input
    layers = {name: _sg3_layer(layer) for name, layer in zip(syn.layer_names, syn.layers)}
    synthesis_kwargs = dict(
        channel_base=kw["channel_base"], channel_max=kw["channel_max"], magnitude_ema_beta=kw["magnitude_ema_beta"]
    )
    if kw["conv_kernel"] != 3:  # train.py passes these for stylegan3-r only
        synthesis_kwargs.update(conv_kernel=kw["conv_kernel"], use_radial_filters=kw["use_radial_filters"])
    if kw["num_layers"] != 14:
        synthesis_kwargs["num_layers"] = kw["num_layers"]
    if not stored_kwargs:
        synthesis_kwargs = {}
    synthesis = Rec(
        "SynthesisNetwork",
        modules={
            "input": Rec(
                "SynthesisInput",
                {"weight": inp.weight},
                {"transform": inp.transform, "freqs": inp.freqs, "phases": inp.phases},
                {"affine": _fc(inp.affine)},
                w_dim=inp.w_dim,
                channels=inp.channels,
                size=_np_size(inp.size),
                sampling_rate=np.float64(inp.sampling_rate),
                bandwidth=np.float64(inp.bandwidth),
            ),
            **layers,
        },
        init_kwargs=dict(w_dim=g.w_dim, img_resolution=res, img_channels=g.img_channels, **synthesis_kwargs),
        w_dim=g.w_dim,
        num_ws=syn.num_ws,
        img_resolution=res,
        img_channels=g.img_channels,
        num_layers=syn.num_layers,
        num_critical=kw["num_critical"],
        margin_size=kw["margin_size"],
        output_scale=syn.output_scale,
        num_fp16_res=syn.num_fp16_res,
        layer_names=list(syn.layer_names),
    )
    mapping_kwargs = EasyDict(num_layers=len(g.mapping.layers)) if stored_kwargs else EasyDict()
    return Rec(
        "Generator",
        modules={"synthesis": synthesis, "mapping": _mapping(g.mapping)},
        init_kwargs=dict(
            z_dim=g.z_dim,
            c_dim=g.c_dim,
            w_dim=g.w_dim,
            img_resolution=res,
            img_channels=g.img_channels,
            mapping_kwargs=mapping_kwargs,
            **synthesis_kwargs,
        ),
        z_dim=g.z_dim,
        c_dim=g.c_dim,
        w_dim=g.w_dim,
        img_resolution=res,
        img_channels=g.img_channels,
        num_ws=g.num_ws,
    )


def nvidia_augment_pipe() -> Rec:
    """training/augment.py's AugmentPipe as a snapshot stores it (p and the filter banks as buffers)."""
    return Rec(
        "AugmentPipe",
        buffers={"p": torch.tensor(0.2), "Hz_geom": torch.randn(12), "Hz_fbank": torch.randn(4, 12)},
        xflip=1.0,
        rotate90=1.0,
        imgfilter_bands=[1, 1, 1, 1],
    )


def as_records(obj):
    """Turn ``Rec`` trees into the reader's ``PersistentRecord`` directly (no pickle round trip)."""
    from src.pretrained.safe_pickle import PersistentRecord

    if isinstance(obj, Rec):
        state = dict(obj.state)
        state["_modules"] = OrderedDict((k, as_records(v)) for k, v in state["_modules"].items())
        return PersistentRecord(dict(type="class", version=6, class_name=obj.class_name, state=state))
    if isinstance(obj, dict):
        return {k: as_records(v) for k, v in obj.items()}
    return obj
