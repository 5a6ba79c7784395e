"""Side-by-side check of gamut's DINOv2 ViT-L/14 (FD-DINOv2) against facebookresearch/dinov2 and
layer6ai-labs/dgm-eval (docs/parity.md, "FD-DINOv2").

Both references come from checkouts given on the command line, outside this repository; nothing of
them is copied here. One random state dict, made by the reference's own ``dinov2_vitl14`` builder
(``dinov2/hub/backbones.py``, ``pretrained=False``) with every tensor perturbed so that each one
matters, is saved under the upstream file name and loaded strictly by gamut. Then:

- the two networks on the same normalised input, at 224 px (interpolated positional embeddings) and
  518 px (the stored table), and the positional embeddings alone at 224 px;
- with ``--dgm-eval``: dgm-eval's whole pipeline (PNG files, its data loader, its
  ``DINOv2Encoder.transform`` and encoder with ``torch.hub.load`` answered by the reference model,
  ``get_representations``) against gamut's :class:`~src.metrics.dinov2.DINOv2Features` on the same
  images as uint8 tensors, for a downsampled and an upsampled image size; and dgm-eval's FD
  (``metrics/fd.py``) against gamut's on those features.

    python -m tests.parity.dinov2_vitl14 --reference /path/to/dinov2 --dgm-eval /path/to/dgm-eval
"""

from __future__ import annotations

import argparse
import importlib.machinery
import os
import sys
import tempfile
import types
from pathlib import Path
from unittest import mock

import torch
from PIL import Image
from torch import Tensor, nn

from src.metrics.dinov2 import DINOv2Features, preprocess
from src.metrics.formulas import fid_from_features


def maxdiff(a: Tensor, b: Tensor) -> float:
    return float((a.double() - b.double()).abs().max())


def reference_model(path: str) -> nn.Module:
    """facebookresearch/dinov2's ``dinov2_vitl14`` (no download), every tensor randomised."""
    os.environ["XFORMERS_DISABLED"] = "1"  # the plain PyTorch attention (xFormers is not installed anyway)
    sys.path.insert(0, str(Path(path).resolve()))
    from dinov2.hub.backbones import dinov2_vitl14

    torch.manual_seed(0)
    ref = dinov2_vitl14(pretrained=False).eval()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if name.endswith(("norm1.weight", "norm2.weight")) or name == "norm.weight":
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif name.endswith(".gamma"):
                p.copy_(0.5 + 0.5 * torch.rand_like(p))
            elif name.endswith("bias"):
                p.copy_(0.02 * torch.randn_like(p))
            elif name in ("cls_token", "pos_embed", "mask_token"):
                p.copy_(0.5 * torch.randn_like(p))
    return ref


def dgm_eval_modules(path: str) -> types.SimpleNamespace:
    """dgm-eval's encoder, data loader, representations and FD, imported without its packages'
    ``__init__`` (which import every encoder's dependencies); scikit-learn, imported by ``fd.py``
    for FD-infinity only, is stubbed."""
    import torchvision.transforms  # noqa: F401  (before the stub: torch's compiler scans sys.modules)

    for pkg in ("dgm_eval", "dgm_eval.models", "dgm_eval.metrics"):
        module = types.ModuleType(pkg)
        module.__path__ = [str(Path(path, *pkg.split(".")))]
        sys.modules[pkg] = module
    for name in ("sklearn", "sklearn.linear_model"):
        stub = types.ModuleType(name)
        stub.__spec__ = importlib.machinery.ModuleSpec(name, None)
        sys.modules.setdefault(name, stub)
    sys.modules["sklearn.linear_model"].LinearRegression = object  # type: ignore[attr-defined]
    from dgm_eval.dataloaders import get_dataloader
    from dgm_eval.metrics.fd import compute_FD_with_reps
    from dgm_eval.models.dinov2 import DINOv2Encoder
    from dgm_eval.representations import get_representations

    return types.SimpleNamespace(
        encoder=DINOv2Encoder, loader=get_dataloader, represent=get_representations, fd=compute_FD_with_reps
    )


def run(args: argparse.Namespace) -> None:
    ref = reference_model(args.reference)
    state = ref.state_dict()
    print(f"reference: dinov2_vitl14, {len(state)} tensors, {sum(v.numel() for v in state.values())} numbers")
    tmp = Path(tempfile.mkdtemp())
    torch.save(state, tmp / "dinov2_vitl14_pretrain.pth")
    ours = DINOv2Features(tmp)  # strict, weights_only=True
    g = torch.Generator().manual_seed(1)
    for side, n in ((224, 2), (518, 1)):
        x = torch.randn(n, 3, side, side, generator=g)
        with torch.no_grad():
            a, b = ref(x), ours.net(x)
        print(
            f"network at {side} px: {list(b.shape)}, max |diff| {maxdiff(a, b):.3e} "
            f"(max |feature| {float(a.abs().max()):.3f})"
        )
    with torch.no_grad():
        pe = ref.interpolate_pos_encoding(torch.zeros(1, 257, 1024), 224, 224)
    print(f"positional embeddings at 224 px: max |diff| {maxdiff(pe, ours.net.position_embedding(224, 224)):.3e}")
    if not args.dgm_eval:
        return
    dgm = dgm_eval_modules(args.dgm_eval)
    with mock.patch("torch.hub.load", lambda repo, name: ref):
        encoder = dgm.encoder()  # vitl14, clean_resize=False: its defaults
    feats = {}
    for tag, size in (("real", (256, 256)), ("fake", (64, 64))):
        folder = tmp / tag
        folder.mkdir()
        images = torch.randint(0, 256, (args.n, 3, *size), dtype=torch.uint8, generator=g)
        images[: args.n // 2] = (images[: args.n // 2].float() * 0.3 + 90).to(torch.uint8)  # two populations
        for i, image in enumerate(images):
            Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{i:03d}.png")
        loader = dgm.loader(str(folder), nsample=-1, batch_size=args.n, num_workers=0, transform=encoder.transform)
        theirs = torch.from_numpy(dgm.represent(encoder, loader, "cpu"))
        pixels = torch.stack(
            [encoder.transform(Image.open(folder / f"{i:03d}.png").convert("RGB")) for i in range(args.n)]
        )
        mine = ours(images)
        print(
            f"{tag} {size[0]}x{size[1]}: preprocessing max |diff| {maxdiff(pixels, preprocess(images)):.3e}, "
            f"features {list(mine.shape)} max |diff| {maxdiff(theirs, mine):.3e}"
        )
        feats[tag] = (theirs, mine)
    (real_t, real_m), (fake_t, fake_m) = feats["real"], feats["fake"]
    fd_theirs = float(dgm.fd(real_t.numpy(), fake_t.numpy()))
    mean_term = float(((real_t.mean(0) - fake_t.mean(0)) ** 2).sum())
    n = args.n
    print(
        f"FD: dgm-eval {fd_theirs:.6f} (covariances / (N-1)); gamut {fid_from_features(real_m, fake_m):.6f} (/ N); "
        f"mean term + (N-1)/N x dgm-eval's covariance term = {mean_term + (n - 1) / n * (fd_theirs - mean_term):.6f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, help="a checkout of facebookresearch/dinov2")
    parser.add_argument("--dgm-eval", help="a checkout of layer6ai-labs/dgm-eval (optional)")
    parser.add_argument("--n", type=int, default=6, help="images per set for the dgm-eval comparison")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
