"""BatchNorm with statistics over all processes, on any device and any backend (gloo included).

PyTorch's ``nn.SyncBatchNorm`` runs on CUDA only, so CPU DDP (gloo) would normalise each rank's
half-batch with its own statistics and 2 processes x batch B would not train like 1 process x 2B.
:class:`SyncBatchNorm` syncs in plain PyTorch: each rank computes its per-channel mean, sum of
squared deviations (two-pass, ``torch.var_mean``) and count, the ranks exchange them with one
autograd-aware ``all_reduce`` (each rank fills its own row of a ``[world, 2C+1]`` table; the sum is
an all-gather), and every rank merges the rows in the same order (Chan et al.'s parallel variance:
no ``E[x^2] - E[x]^2`` cancellation). The backward of that ``all_reduce`` is an ``all_reduce`` of
the gradients with respect to the statistics, so each rank's input gradient holds every rank's
contribution through the shared mean and variance, as in ``nn.SyncBatchNorm``'s backward; averaging
the parameter gradients over the ranks then gives the global-batch gradient.

Training mode with ``torch.distributed`` initialised and more than one process: the normalisation
uses the global mean and biased variance; ``running_mean``/``running_var`` are updated with the
global mean and the unbiased variance over the global count (``momentum`` and
``num_batches_tracked`` as in ``nn.BatchNorm2d``), identically on every rank. Statistics and the
normalisation run in float32 with autocast off; the output has the input's dtype. Eval mode and one
process: exactly ``nn.BatchNorm{1,2,3}d``. Parameter and buffer names are BatchNorm's, so state
dicts (checkpoints) load either way.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.distributed import ProcessGroup
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.lazy import LazyModuleMixin

__all__ = ["SyncBatchNorm"]


def _world_size(group: ProcessGroup | None) -> int:
    if not (dist.is_available() and dist.is_initialized()):
        return 1
    return dist.get_world_size(group)


def _all_reduce_sum(t: Tensor, group: ProcessGroup | None) -> Tensor:
    """Autograd-aware sum over the ranks: the backward sums the incoming gradients over the ranks."""
    from torch.distributed import _functional_collectives as funcol

    pg = group if group is not None else dist.group.WORLD
    assert pg is not None, "torch.distributed is initialised whenever there are several ranks"
    # torch.distributed.nn.functional.all_reduce does the same but is deprecated in favour of this one
    return funcol.wait_tensor(funcol.all_reduce(t, "sum", pg))


class SyncBatchNorm(_BatchNorm):
    """``nn.BatchNorm{1,2,3}d`` whose training-mode statistics cover all processes of ``process_group``
    (default: the whole world). Same constructor as ``nn.SyncBatchNorm``; see the module docstring."""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        process_group: ProcessGroup | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device=device, dtype=dtype)
        self.process_group = process_group
        self._bn_class: type[_BatchNorm] | None = None  # the class :meth:`convert` replaced

    def _check_input_dim(self, input: Tensor) -> None:
        if self._bn_class is not None:
            self._bn_class._check_input_dim(self, input)  # the replaced layer's own shape check
        elif input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: Tensor) -> Tensor:
        if not self.training or _world_size(self.process_group) < 2:
            return super().forward(input)
        self._check_input_dim(input)
        return self._synced_forward(input)

    def _synced_forward(self, x: Tensor) -> Tensor:
        c = self.num_features
        dims = [0, *range(2, x.dim())]
        shape = [1, c] + [1] * (x.dim() - 2)
        world = _world_size(self.process_group)
        rank = dist.get_rank(self.process_group)
        with torch.autocast(x.device.type, enabled=False):
            xf = x.float()
            n = x.numel() // c if c else 0
            if n > 0:
                var, mean = torch.var_mean(xf, dim=dims, correction=0)
            else:  # an empty shard: zero statistics, zero weight in the merge
                mean = var = xf.sum(dims)
            local = torch.cat([mean, var * n, mean.new_full((1,), float(n))])
            rows = [local if r == rank else torch.zeros_like(local) for r in range(world)]
            table = _all_reduce_sum(torch.stack(rows), self.process_group)  # [world, 2C+1], row r = rank r's
            means, m2s, counts = table[:, :c], table[:, c : 2 * c], table[:, 2 * c :]
            total = counts.sum()
            mean = (counts * means).sum(0) / total
            var = (m2s.sum(0) + (counts * (means - mean).square()).sum(0)) / total  # biased, over the global batch
            y = (xf - mean.view(shape)) * torch.rsqrt(var + self.eps).view(shape)
            if self.affine:
                y = y * self.weight.float().view(shape) + self.bias.float().view(shape)
        if self.track_running_stats and self.running_mean is not None:
            self._update_running_stats(mean.detach(), var.detach(), total.detach())
        return y.to(x.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: Tensor, var: Tensor, total: Tensor) -> None:
        running_mean, running_var = self.running_mean, self.running_var
        assert running_mean is not None and running_var is not None  # the caller checked track_running_stats
        factor = 0.0 if self.momentum is None else self.momentum  # as nn.BatchNorm2d's forward
        if self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked)
        unbiased = var * (total / (total - 1).clamp_min(1))
        dtype = running_mean.dtype
        running_mean.copy_(mean.to(dtype) * factor + running_mean * (1 - factor))
        running_var.copy_(unbiased.to(dtype) * factor + running_var * (1 - factor))

    # ------------------------------------------------------------------------------------------
    # Swapping the layers of a model.

    @classmethod
    def convert(cls, module: nn.Module, process_group: ProcessGroup | None = None) -> nn.Module:
        """Replace every BatchNorm layer in ``module`` (``nn.BatchNorm{1,2,3}d``, ``nn.SyncBatchNorm``,
        any ``_BatchNorm``) by a :class:`SyncBatchNorm` holding the same parameters (same objects, so
        ``requires_grad`` and optimizer references carry over), running statistics, mode and ``qconfig``.
        Returns ``module`` itself (converted in place) unless it is a BatchNorm layer.
        """
        out = module
        if isinstance(module, _BatchNorm) and not isinstance(module, (cls, LazyModuleMixin)):
            out = cls(
                module.num_features,
                module.eps,
                module.momentum,
                module.affine,
                module.track_running_stats,
                process_group,
            )
            out._bn_class = type(module)
            _copy_state(module, out)
        for name, child in module.named_children():
            out.add_module(name, cls.convert(child, process_group))
        return out

    @classmethod
    def revert(cls, module: nn.Module) -> nn.Module:
        """Undo :meth:`convert`: each :class:`SyncBatchNorm` it made becomes its original class again."""
        out = module
        if isinstance(module, cls) and module._bn_class is not None:
            original = module._bn_class
            kwargs: dict[str, Any] = (
                dict(process_group=module.process_group) if issubclass(original, nn.SyncBatchNorm) else {}
            )
            out = original(
                module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats, **kwargs
            )
            _copy_state(module, out)
        for name, child in module.named_children():
            out.add_module(name, cls.revert(child))
        return out


def _copy_state(src: _BatchNorm, dst: _BatchNorm) -> None:
    if src.affine:
        with torch.no_grad():
            dst.weight = src.weight
            dst.bias = src.bias
    dst.running_mean = src.running_mean
    dst.running_var = src.running_var
    dst.num_batches_tracked = src.num_batches_tracked
    dst.train(src.training)
    if hasattr(src, "qconfig"):
        dst.qconfig = src.qconfig
