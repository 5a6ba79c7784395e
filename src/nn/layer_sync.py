"""Lightning ``LayerSync`` plugin behind ``trainer.sync_batchnorm=true``: BatchNorm over all ranks on
every backend.

Lightning's own plugin (``TorchSyncBatchNorm``) swaps in ``torch.nn.SyncBatchNorm``, which runs on
CUDA only. This one keeps that on NCCL (CUDA, fused kernels) and uses gamut's
:class:`~src.nn.sync_batchnorm.SyncBatchNorm` on every other backend (gloo on CPU, ...), so CPU DDP
trains like one process with the global batch. ``src/train.py`` passes it when
``trainer.sync_batchnorm`` is on; DDP applies it to the model before wrapping it (fitting only) and
reverts it at teardown. Parameter and buffer names stay BatchNorm's, so checkpoints load either way.
"""

from __future__ import annotations

import torch.distributed as dist
from pytorch_lightning.plugins.layer_sync import TorchSyncBatchNorm
from torch.nn import Module

from src.nn.sync_batchnorm import SyncBatchNorm

__all__ = ["SyncBatchNormPlugin"]


def _nccl() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_backend() == "nccl"


class SyncBatchNormPlugin(TorchSyncBatchNorm):
    """``torch.nn.SyncBatchNorm`` under NCCL, :class:`~src.nn.sync_batchnorm.SyncBatchNorm` otherwise.

    A subclass of Lightning's ``TorchSyncBatchNorm``, so ``Trainer(sync_batchnorm=True, plugins=[it])``
    is accepted and uses it instead of Lightning's default.
    """

    def __init__(self) -> None:
        self._torch_sync = False  # whether apply() used torch.nn.SyncBatchNorm

    def apply(self, model: Module) -> Module:
        self._torch_sync = _nccl()
        if self._torch_sync:
            return super().apply(model)
        return SyncBatchNorm.convert(model)

    def revert(self, model: Module) -> Module:
        if self._torch_sync:
            return super().revert(model)
        return SyncBatchNorm.revert(model)
