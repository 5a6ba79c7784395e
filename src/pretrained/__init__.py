"""Other people's pretrained networks, read safely: the weights files gamut's metrics and ChromaGAN
use, and public StyleGAN2 and StyleGAN3 checkpoints to import.

- :mod:`~src.pretrained.weights`: the one place that finds a pretrained file (VGG-16, Inception) in
  ``paths.weights_dir`` under its upstream name, fetches it there on first use (sha256 checked, unless
  downloads are forbidden) and loads it with ``weights_only=True``;
- :mod:`~src.pretrained.reader`: reads NVIDIA pickles and rosinality ``.pt`` files without running
  their code (:mod:`~src.pretrained.safe_pickle`) and translates their tensors to gamut's names
  (:mod:`~src.pretrained.nvidia`, :mod:`~src.pretrained.nvidia_stylegan3`, :mod:`~src.pretrained.rosinality`).

Building a gamut checkpoint from an imported model is :func:`src.checkpoints.importing.import_checkpoint`.
"""

from src.pretrained.reader import read
from src.pretrained.safe_pickle import UnsafePickleError
from src.pretrained.types import Imported, UnsupportedNetworkError

__all__ = ["read", "Imported", "UnsafePickleError", "UnsupportedNetworkError"]
