"""Read a foreign StyleGAN2 or StyleGAN3 checkpoint and translate it to gamut's names, without running its code.

:func:`read` detects the format from the file's content: NVIDIA pickles go through the restricted
unpickler of :mod:`src.pretrained.safe_pickle`, then :mod:`src.pretrained.nvidia`'s map for StyleGAN2
(stylegan2-ada-pytorch, stylegan3 with ``cfg=stylegan2``) or :mod:`src.pretrained.nvidia_stylegan3`'s for
StyleGAN3 (``cfg=stylegan3-t/-r``, told apart by the generator's Fourier input); rosinality ``.pt``
files through :mod:`src.pretrained.rosinality`. The result is an :class:`~src.pretrained.types.Imported`
record; :mod:`src.checkpoints.importing` turns it into a gamut checkpoint.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from src.pretrained import nvidia, nvidia_stylegan3, rosinality
from src.pretrained.safe_pickle import load_network_pickle
from src.pretrained.types import Imported

__all__ = ["DISCRIMINATOR_CHOICES", "detect_format", "read"]

DISCRIMINATOR_CHOICES = ("import", "fresh")
# A torch.save file in the legacy (non-zip) format starts with this pickled magic number.
_LEGACY_TORCH_MAGIC = 0x1950A86A20F9469CFC6C


def detect_format(path: Path) -> str:
    """``rosinality`` for torch.save files (zip or legacy), ``nvidia-pickle`` for plain pickles."""
    if zipfile.is_zipfile(path):
        return "rosinality"
    with open(path, "rb") as f:
        head = f.read(32)
    if not head.startswith(b"\x80"):
        raise ValueError(f"{path}: neither a pickle nor a torch.save file")
    if _LEGACY_TORCH_MAGIC.to_bytes(10, "little") in head:
        return "rosinality"
    return "nvidia-pickle"


def read(src: str | Path, discriminator: str = "import") -> Imported:
    """Read and translate ``src`` (format detected from its content)."""
    path = Path(src)
    if not path.is_file():
        raise FileNotFoundError(f"src={str(path)!r}: no such file")
    if discriminator not in DISCRIMINATOR_CHOICES:
        raise ValueError(f"discriminator={discriminator!r}: expected one of {', '.join(DISCRIMINATOR_CHOICES)}")
    fmt = detect_format(path)
    if fmt == "rosinality":
        return rosinality.convert(rosinality.load(path), discriminator)
    data = load_network_pickle(path)
    if nvidia_stylegan3.is_stylegan3(data):
        return nvidia_stylegan3.convert(data, discriminator)
    return nvidia.convert(data, discriminator)
