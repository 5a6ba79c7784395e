"""gamut: a PyTorch Lightning + Hydra platform for GANs (StyleGAN2, SEGAN, ChromaGAN);
docs/architecture.md maps its packages.

Importing it checks the interpreter and PyTorch against the supported ranges (docs/install.md) and
stops with one line naming what it found, instead of failing later somewhere deep.
"""

import sys
from importlib import metadata

SUPPORTED_PYTHON = (3, 11)  # and newer; tested on 3.11, 3.12 and 3.13
SUPPORTED_TORCH = (2, 13)  # and newer; pyproject.toml says the same
_TORCH = ".".join(map(str, SUPPORTED_TORCH))


def _release(version):
    """``'2.15.0+cu132'`` -> ``(2, 15)``."""
    parts = []
    for piece in version.split("+")[0].split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def check_versions(python=None, torch_version=None):
    """Raise ``ImportError`` (one line) when the Python or the installed PyTorch is older than supported."""
    python = tuple(sys.version_info[:2]) if python is None else tuple(python)
    if python < SUPPORTED_PYTHON:
        need, found = ".".join(map(str, SUPPORTED_PYTHON)), ".".join(map(str, python))
        raise ImportError(f"gamut needs Python >= {need} (tested on 3.11-3.13); this is Python {found}")
    if torch_version is None:
        try:
            torch_version = metadata.version("torch")
        except metadata.PackageNotFoundError:
            message = f"gamut needs PyTorch >= {_TORCH}; none is installed (pip install 'torch>={_TORCH}')"
            raise ImportError(message) from None
    if _release(torch_version) < SUPPORTED_TORCH:
        message = f"gamut needs PyTorch >= {_TORCH} (with its matching torchvision); found torch {torch_version}"
        raise ImportError(message)


check_versions()
