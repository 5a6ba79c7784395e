"""The training engine beside the family contract (``src/modules/base.py``): what every family's
optimizer step runs on, whatever its phases are.

- :mod:`.accumulation`: gradient accumulation over rounds of ``data.batch_gpu`` rows
  (:class:`~.accumulation.Rounds`) and the rank- and round-consistent random draws;
- :mod:`.loss_scalers`: one fp16 GradScaler per optimizer (:class:`~.loss_scalers.LossScalers`);
- :mod:`.grad_sync`: the one flat ``all_reduce`` of a phase's gradients (:func:`~.grad_sync.average_gradients`);
- :mod:`.compile_fallback`: ``torch.compile`` with an eager fallback (:class:`~.compile_fallback.CompiledOrEager`).

:class:`src.modules.base.GANModule` holds these objects and exposes them through its public
methods (``step``, ``accumulate``, ``rounds``, ``in_rounds``, ``draw``, ``draw_shared``,
``compiled``, ``loss_scales``) and properties (``rank``, ``world_size``); a family uses those and
imports from here only :class:`~.accumulation.Rounds` when it runs rounds of its own.
"""
