"""Import public pretrained StyleGAN2 models (NVIDIA pickles, rosinality .pt) without running their code."""

from src.pretrained.convert import import_checkpoint, read
from src.pretrained.safe_pickle import UnsafePickleError
from src.pretrained.types import Imported, UnsupportedNetworkError

__all__ = ["import_checkpoint", "read", "Imported", "UnsafePickleError", "UnsupportedNetworkError"]
