"""What every gamut GAN LightningModule shares: progress, exact resume, the optimizer step, and
multi-process training.

**Progress.** Lightning's ``global_step`` counts optimizer steps (a GAN takes two to four per
iteration), so modules count images seen (``cur_nimg``) and iterations themselves (:meth:`advance`).

**Exact resume.** The counters and the RNG states travel in the checkpoint under ``"gamut"``. The RNG
states are restored right before the first resumed step, so nothing done while rebuilding the run
(network init, data set-up) shifts the random stream. A fresh run re-seeds at that point too, as
Lightning's DDP re-seeds each rank after the model is built, so 1 and N processes draw the same numbers.

**The family contract** is :class:`GANModule`'s class docstring: what a family must provide, what
it may override (with the defaults here), and what it states about the config
(:class:`src.utils.family_rules.FamilyRules`, which config validation asks). Callers use those
names and never probe a module for attributes.

**The engine** every optimizer step runs on lives beside the contract in :mod:`src.modules.engine`;
the base holds its objects and exposes them through public methods:

- *multi-process (DDP, as stylegan3's training loop)*: Lightning's DDP wrapper is kept for its
  start-up broadcast and per-forward buffer sync, but its gradient hooks are switched off
  (:meth:`GANModule.begin_iteration`); :meth:`GANModule.step` averages each phase's gradients itself
  with one flat ``all_reduce`` (:mod:`src.modules.engine.grad_sync`). So every phase, double backward
  and lazy intervals included, syncs exactly the parameters it trained, without
  ``find_unused_parameters``. Random draws go through :meth:`GANModule.draw`: one draw for the global
  batch, of which each rank takes its rows (``rank``, ``world_size``);
- *gradient accumulation* (``data.batch_gpu``, NVIDIA's ``--batch-gpu``):
  :meth:`GANModule.accumulate` runs a phase in :meth:`GANModule.rounds` rounds and steps once, the
  rounds drawing exactly what the whole batch would (:mod:`src.modules.engine.accumulation`);
- *fp16* (``16-mixed``): one GradScaler per optimizer (:mod:`src.modules.engine.loss_scalers`), saved
  in the checkpoint; double-backward penalties run in float32 (:meth:`GANModule.fp32`);
- *speed* (``model.perf``, issue 8): ``channels_last`` stores every 4-D weight and the real batch in
  NHWC memory format; ``compile`` wraps the networks of the main phases in ``torch.compile``
  (:meth:`GANModule.compiled`), falling back to eager with one warning
  (:mod:`src.modules.engine.compile_fallback`). Double-backward phases stay eager. Neither option
  changes what is computed; ``tests/test_speed_paths.py`` holds them to the plain path's outputs.
  :meth:`GANModule.phase` marks the phases so the benchmark can time them and count their FLOPs.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from lightning_fabric.utilities.seed import reset_seed
from torch import Tensor

from src.colorspaces import ColorSpace
from src.datamodules.image_datamodule import ImageDataModule
from src.datamodules.labels import draw_labels
from src.modules.engine.accumulation import RoundLoss, Rounds, accumulate_rounds, draw_rows, draw_shared, rounds_for
from src.modules.engine.compile_fallback import CompiledOrEager
from src.modules.engine.grad_sync import average_gradients
from src.modules.engine.loss_scalers import LossScalers
from src.profiling.measure import PhaseRecorder
from src.utils.family_rules import FamilyRules
from src.utils.faults import NonFiniteState

__all__ = ["GANModule", "merge_options", "sanitize_grads", "DEFAULT_PERF"]

#: room for phase indices in each iteration of the non-finite record (:meth:`GANModule.note_finite`)
_PHASE_SLOTS = 64

DEFAULT_PERF = dict(channels_last=False, compile=False)


def merge_options(defaults: dict, given: dict | None, key: str) -> dict:
    """``given`` over ``defaults``; an unknown key is a ``ValueError`` naming ``key.<name>`` and the allowed ones."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(
            f"unknown key(s) {', '.join(f'{key}.{u}' for u in unknown)}; "
            f"allowed: {', '.join(f'{key}.{k}' for k in defaults)}"
        )
    return {**defaults, **given}


#: what :func:`sanitize_grads` puts in place of +-Inf (NVIDIA's ``posinf=1e5, neginf=-1e5``)
GRAD_INF_VALUE = 1e5


def sanitize_grads(optimizer) -> None:
    """In place on the gradients of ``optimizer``'s parameters: NaN -> 0, +-Inf -> +-1e5.

    ``torch.nan_to_num(grad, nan=0, posinf=1e5, neginf=-1e5)`` as NVlabs/stylegan3
    training/training_loop.py, one in-place pass per gradient, with no host sync. Finite values
    pass unchanged, however large; in a float16 gradient the replacement is float16's largest
    value. (PyTorch has no ``_foreach`` nan_to_num; NVIDIA's flat buffer (concatenate, clean, copy
    back) measured 16x slower than this loop on CPU for a 24M-parameter G, 165 ms against 10 ms,
    next to a 220 ms Adam step, for its extra allocation and two extra passes over memory.)
    """
    for group in optimizer.param_groups:
        for p in group["params"]:
            grad = p.grad
            if grad is not None:
                big = min(GRAD_INF_VALUE, torch.finfo(grad.dtype).max)
                grad.nan_to_num_(nan=0.0, posinf=big, neginf=-big)


class GANModule(pl.LightningModule, FamilyRules):
    """Base class of every model family: manual optimization, counters, resume state, NaN checks, DDP
    gradient sync, and the family contract. Callers (``src/train.py``, callbacks, metrics, tools) use
    the contract below and never probe a module for attributes.

    **A family must provide**

    - *its networks*, built in ``__init__``: ``G`` and ``D`` (generator families also ``G_ema``,
      never trained, a :class:`src.nn.style_generator.StyleGenerator`), and the attributes
      ``colorspace`` (a ``ColorSpace``), ``resolution`` (``(height, width)``) and ``num_classes``;
    - ``configure_optimizers()``: one optimizer per network;
    - *its phases*: :meth:`phase_intervals` (every phase's name and how often it runs, in run order)
      and :meth:`train_phases` (one iteration: the phases due, each a method of its own marked with
      :meth:`phase` and ending in :meth:`step` or :meth:`accumulate`; returns what to log). The
      base's :meth:`training_step` runs :meth:`begin_iteration`, the phases, :meth:`advance` and the
      logging;
    - *its checkpoint state*: the constructor's arguments, recorded with ``save_hyperparameters``
      (``src.checkpoints.load.load_module`` rebuilds the class from them), and everything learned
      or tracked in parameters and registered buffers (``state_dict``). The base adds the counters,
      RNG states, colour space, class path, run config and loss scalers (:meth:`on_save_checkpoint`).

    **A family may override** (the defaults are here)

    - :meth:`prepare_fit`: what it needs from outside before training (pretrained weights, the data's
      class frequencies); called by ``src/train.py`` before the run folder exists and by :meth:`setup`;
    - *generation*: :attr:`z_dim` (the latent size; 0: no latent input) and :meth:`sample` (images
      from latents: the grid's ``fakes``); :attr:`img_channels` follows the colour space;
    - *colorization*: ``colorizes = True`` with :meth:`colorize` and :meth:`gray_baseline` (the grid's
      ``gray | prediction | truth``);
    - *label conditioning*: ``conditional_on_labels`` (False when ``num_classes`` is not the data's
      classes), :meth:`labels_to_onehot` (class indices -> what G and D take) and
      :meth:`label_frequencies` (what :meth:`random_labels` and the metrics draw the labels of
      generated images from; uniform by default);
    - ``nonfinite_advice``: what the non-finite-loss error tells the user to change;
      ``validation_metrics``: the keys it logs itself (a sweep may optimize them);
    - *its config rules* (:class:`~src.utils.family_rules.FamilyRules`, class attributes and class
      methods asked by config validation before anything is built): the size rule
      (``doubles_from_base``), the per-device batch (``check_batch``), gradient accumulation
      (``accumulates_gradients``, ``no_accumulation_reason``, ``check_batch_gpu``), and ``kwargs_to``.

    **The engine** (:mod:`src.modules.engine`) is reached through :meth:`step`, :meth:`accumulate`,
    :meth:`rounds`, :meth:`in_rounds`, :meth:`draw`, :meth:`draw_shared`, :meth:`compiled`,
    :meth:`loss_scales`, :attr:`rank` and :attr:`world_size`.
    """

    G: torch.nn.Module
    D: torch.nn.Module
    G_ema: torch.nn.Module  # generator families: a src.nn.style_generator.StyleGenerator
    colorspace: ColorSpace
    resolution: tuple[int, int]
    num_classes: int
    _nonfinite: Tensor  # buffer: the first non-finite loss, iteration * _PHASE_SLOTS + phase index; -1 while none

    #: appended to the non-finite-loss error: what to change for this family
    nonfinite_advice = "Lower the learning rate or resume from an earlier checkpoint."
    #: ``num_classes`` counts the data's classes (labels reach G and D); False for a class head of its own
    conditional_on_labels = True
    #: the sample grid shows colorizations (:meth:`colorize`) instead of generated images (:meth:`sample`)
    colorizes = False
    #: keys the family logs to trainer.callback_metrics itself (a sweep's optimized_metric may name them)
    validation_metrics: tuple[str, ...] = ()

    def __init__(self, check_finite_every: int = 50, perf: dict | None = None) -> None:
        super().__init__()
        self.perf = merge_options(DEFAULT_PERF, perf, "model.perf")
        self.phase_recorder: PhaseRecorder | None = None  # set by the benchmark (src/benchmark/); see :meth:`phase`
        self.run_config: dict | None = None  # set by src/train.py; saved in checkpoints under gamut.config
        self._compiled: dict[int, CompiledOrEager] = {}
        self.automatic_optimization = False
        self.cur_nimg = 0
        self.iteration = 0
        self.check_finite_every = check_finite_every
        self._pending_rng: dict | None = None
        self._rank, self._world = 0, 1
        self.batch_gpu: int | None = None  # rows per forward/backward pass (None: the whole batch); families set it
        self._rounds: Rounds | None = None  # the accumulation round under way (see accumulate)
        self.loss_scalers = LossScalers()  # one loss scaler per optimizer (16-mixed)
        # the first non-finite loss, where it came from, with no host sync until a check reads it
        self.register_buffer("_nonfinite", torch.full([], -1, dtype=torch.int64), persistent=False)
        self._phase_names: list[str] = []  # the phases seen, in order: their index is stored above
        self._phase_now: str | None = None

    # ------------------------------------------------------------------------------------------
    # The family contract: phases (must), preparation, generation, previews and labels (may).

    def phase_intervals(self) -> dict[str, int]:
        """Every phase's name -> how often it runs (every k-th iteration), in the order it runs.

        The benchmark (``src/benchmark/``) amortizes per-phase timings with it; :meth:`due` reads it.
        """
        raise NotImplementedError(f"{type(self).__name__} must define phase_intervals()")

    def train_phases(self, batch: dict) -> dict[str, Tensor]:
        """Run this iteration's phases on ``batch`` (``{"image", "label"?}``); return the values to log."""
        raise NotImplementedError(f"{type(self).__name__} must define train_phases()")

    def due(self, name: str) -> bool:
        """Whether phase ``name`` runs this iteration (``iteration % interval == 0``)."""
        return self.iteration % self.phase_intervals()[name] == 0

    def training_step(self, batch: dict, batch_idx: int) -> None:
        """One iteration: :meth:`begin_iteration`, the family's :meth:`train_phases`, :meth:`advance`, logging."""
        self.begin_iteration()
        log = self.train_phases(batch)
        self.advance(batch["image"].shape[0])
        self.log_iteration(log)

    def log_iteration(self, log: Mapping[str, Tensor | float]) -> None:
        """Log ``log`` and the progress, keyed by images seen (loggers' x-axis), not Lightning's step count."""
        values = {**log, "progress/kimg": self.kimg, "step": float(self.cur_nimg)}
        self.log_dict(values, on_step=True, on_epoch=False)
        self.log("kimg", self.kimg, on_step=True, on_epoch=False, prog_bar=True, logger=False)

    def prepare_fit(self, datamodule: ImageDataModule | None = None, resuming: bool = False) -> list[str]:
        """Take what training needs from outside the config (``datamodule``: gamut's ``ImageDataModule``
        or None); returns notes for ``train.log``. Nothing by default.

        Called by ``src/train.py`` after the model and data are built and before the run folder
        exists (a missing pretrained file stops the launch cleanly), and again by :meth:`setup`, so
        it must be harmless to repeat. Runs before a resumed checkpoint is restored.
        """
        return []

    def setup(self, stage: str) -> None:
        if stage == "fit":
            # Lightning's data connector sets trainer.datamodule (None without one); Trainer does not declare it
            datamodule = self.trainer.datamodule  # type: ignore[attr-defined]
            self.prepare_fit(datamodule, resuming=self.trainer.ckpt_path is not None)

    @property
    def z_dim(self) -> int:
        """The latent size :meth:`sample` takes (columns of ``z``); 0 for a family that does not
        generate from latents (the default)."""
        return 0

    @property
    def img_channels(self) -> int:
        """Channels of the images the networks see and make: the colour space's."""
        return self.colorspace.channels

    @torch.no_grad()
    def sample(self, z: Tensor, labels: Tensor | None = None, **options: Any) -> Tensor:
        """Images in the model's colour space from latents ``z`` (and class ``labels``): generator
        families. ``options`` every generator takes: ``psi``, ``cutoff``, ``noise_mode`` (default
        ``const``), ``ema`` (default True: ``G_ema``); a family may take more (SEGAN's edits)."""
        raise NotImplementedError(f"{type(self).__name__} does not generate images from latents")

    @torch.no_grad()
    def colorize(self, images: Tensor) -> Tensor:
        """``images`` in the model's colour space -> the same with predicted colour: colorizers (``colorizes``)."""
        raise NotImplementedError(f"{type(self).__name__} is not a colorization model")

    def gray_baseline(self, images: Tensor) -> Tensor:
        """The trivial colorization of ``images`` (no colour) beside :meth:`colorize` in the grids."""
        raise NotImplementedError(f"{type(self).__name__} is not a colorization model")

    def labels_to_onehot(self, labels: Tensor | None) -> Tensor | None:
        """Class indices ``[N]`` -> the one-hot float32 ``[N, num_classes]`` that G and D take; None
        for ``labels`` None or a model that is not label-conditional."""
        if not self.conditional_on_labels or self.num_classes == 0 or labels is None:
            return None
        return F.one_hot(labels.long(), self.num_classes).to(torch.float32)

    def label_frequencies(self) -> Tensor | None:
        """The data's class frequencies ``[num_classes]`` that generated labels are drawn from; None or
        all zeros = not known (labels are then uniform). None by default."""
        return None

    def random_labels(self, n: int) -> Tensor | None:
        """One-hot labels ``[n, num_classes]`` of ``n`` generated images, this rank's rows of one global
        draw (:meth:`draw`) from :meth:`label_frequencies`; None when the model is not label-conditional.

        As NVIDIA's stylegan2-ada-pytorch training/training_loop.py draws ``gen_c`` from
        ``training_set.get_label``; decided on the device, so drawing never waits for the host.
        """
        if not self.conditional_on_labels or self.num_classes == 0:
            return None
        frequencies, classes = self.label_frequencies(), self.num_classes
        labels = self.draw(lambda m, device: draw_labels(frequencies, classes, m, device=device), n)
        return F.one_hot(labels, classes).float()

    # ------------------------------------------------------------------------------------------
    # Progress and processes.

    @property
    def kimg(self) -> float:
        return self.cur_nimg / 1000.0

    @property
    def rank(self) -> int:
        """This process's index among :attr:`world_size` (0 outside multi-process training)."""
        return self._rank

    @property
    def world_size(self) -> int:
        """How many processes train together (1 outside multi-process training); set at train start."""
        return self._world

    def begin_iteration(self) -> None:
        """Call first in ``training_step``: hands gradient sync from DDP's reducer to :meth:`step`.

        Lightning re-arms ``require_backward_grad_sync`` after every manual-optimization step.
        """
        if self._world > 1:
            model = self.trainer.strategy.model
            if isinstance(model, torch.nn.parallel.DistributedDataParallel):
                model.require_backward_grad_sync = False

    def advance(self, batch_size: int) -> int:
        """Call last in ``training_step``: count one iteration of ``batch_size`` images per process;
        checks for non-finite losses every ``check_finite_every`` iterations. Returns the global batch."""
        global_batch = int(batch_size) * self._world
        self.cur_nimg += global_batch
        self.iteration += 1
        if self.check_finite_every and self.iteration % self.check_finite_every == 0:
            self.check_finite()
        return global_batch

    # ------------------------------------------------------------------------------------------
    # Steps, accumulation, draws, precision (the engine: src/modules/engine/).

    def step(self, opt, loss: Tensor) -> None:
        """Backward ``loss`` into ``opt``'s parameters, average their gradients over the ranks,
        sanitize them, step.

        **Gradient hygiene (as NVlabs/stylegan3 training/training_loop.py).** Before the optimizer
        uses them, NaN gradients become 0 and +-Inf become +-1e5 (``torch.nan_to_num(grad, nan=0,
        posinf=1e5, neginf=-1e5)``), after the rank averaging, in every family: one bad sample or
        one overflowing regularizer costs a large but finite step instead of NaN weights forever.
        The non-finite *loss* check (:meth:`check_finite`) is kept: it reports a run that has gone
        bad instead of letting it train on clipped garbage.

        The cleaning runs in :meth:`on_before_optimizer_step`, which Lightning calls inside
        ``opt.step()``, right before the update and (under fp16 loss scaling) *after* the
        GradScaler's ``unscale_``. Cleaning before that would turn an overflowed (Inf) scaled
        gradient into a finite 1e5 and hide the overflow from the scaler, which would then neither
        skip the step nor back off its scale. After ``unscale_`` the scaler has already recorded the
        overflow and still skips the step; a step it does take has every gradient finite, and the
        cleaning is then a no-op (or catches a finite gradient that overflows when divided by a
        loss scale below 1). So Lightning's GradScaler semantics are unchanged, and without loss
        scaling (fp32, bf16) every step is cleaned, NVIDIA's way.
        """
        self.use_loss_scaler(opt)
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        self.sync_gradients(opt)
        opt.step()  # -> on_before_optimizer_step: nan_to_num on the gradients, then the update
        self.note_finite(loss)

    def rounds(self, batch: int) -> int:
        """How many accumulation rounds a per-device batch of ``batch`` rows takes (``batch / batch_gpu``)."""
        return rounds_for(batch, self.batch_gpu)

    @contextmanager
    def in_rounds(self, rounds: Rounds) -> Iterator[Rounds]:
        """Within: :meth:`draw` and :meth:`draw_shared` draw for ``rounds``' current round (its
        :meth:`~src.modules.engine.accumulation.Rounds.begin`); the enclosing rounds (or none) after."""
        outer, self._rounds = self._rounds, rounds
        try:
            yield rounds
        finally:
            self._rounds = outer

    def accumulate(
        self,
        opt,
        round_loss: RoundLoss,
        rows: int,
        rounds: int,
        log: dict[str, Tensor],
        replay: Rounds | None = None,
    ) -> None:
        """One phase's optimizer step over ``rows`` rows of this rank in ``rounds`` rounds (gradient
        accumulation, NVIDIA's ``--batch-gpu``).

        ``round_loss(k, b, log_k)`` computes round ``k``'s loss over its ``b = rows / rounds`` rows
        (rows ``k::rounds`` of the phase's batch; its draws through :meth:`draw` are those rows of the
        whole batch's draws) as a mean over them, and may write values to log in ``log_k``. Each
        round's gradient is added with weight ``1 / rounds``, so the step sees the mean over all rows;
        the logged values are averaged over the rounds into ``log``. One round is :meth:`step`.
        ``replay``: the draws of an earlier pass over the same rounds, used again (Greg's two passes).
        """
        if rounds == 1 and replay is None:
            loss = round_loss(0, rows, log)
            self.step(opt, loss)
            return
        state = replay if replay is not None else Rounds(rounds)
        self.use_loss_scaler(opt)
        opt.zero_grad(set_to_none=True)

        def backward(loss: Tensor) -> None:
            self.manual_backward(loss / rounds)
            self.note_finite(loss)

        with self.in_rounds(state):
            accumulate_rounds(state, rows, round_loss, backward, log)
        self.sync_gradients(opt)
        opt.step()

    def sync_gradients(self, opt) -> None:
        """Average the gradients of ``opt``'s parameters over the ranks (one flat ``all_reduce``); a
        no-op in one process. :meth:`step` and :meth:`accumulate` call it before the update."""
        if self._world > 1:
            average_gradients(opt, self._world)

    def on_before_optimizer_step(self, optimizer) -> None:
        """Lightning's hook right before each update (after ``unscale_`` under fp16): see :meth:`step`."""
        sanitize_grads(optimizer)

    def use_loss_scaler(self, opt) -> None:
        """Under fp16 loss scaling, put ``opt``'s own GradScaler into the precision plugin
        (:class:`~src.modules.engine.loss_scalers.LossScalers`); :meth:`step` and :meth:`accumulate` call it."""
        self.loss_scalers.use(self.trainer, opt, self.device.type)

    def loss_scales(self) -> list[float]:
        """The current fp16 loss scale of each optimizer (empty without loss scaling)."""
        return self.loss_scalers.scales()

    def draw(self, fn: Callable[..., Tensor], n: int, *shape: int, device=None) -> Tensor:
        """``fn(n, *shape)`` (``torch.randn``, ``torch.rand``) for this rank: its rows of one global draw.

        In accumulation round ``k`` of ``R`` (:meth:`accumulate`) the rows of virtual rank
        ``rank + world * k`` of ``world * R``: the first round draws for the whole batch and keeps the
        draw, later rounds take their rows of it, so the rounds together draw what one pass would.
        """
        device = self.device if device is None else device
        return draw_rows(fn, n, shape, device, self._rank, self._world, self._rounds)

    def draw_shared(self, fn: Callable[[], Tensor]) -> Tensor:
        """``fn()``: a draw every rank and every accumulation round shares (e.g. the style-mixing cutoff)."""
        return draw_shared(fn, self._rounds)

    def fp32(self):
        """Autocast off: double-backward penalties (R1, path length, gradient penalty) run in float32."""
        return torch.autocast(self.device.type, enabled=False)

    # ------------------------------------------------------------------------------------------
    # Speed options and phase marks.

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Context for one training phase (``Gmain``, ``Greg``, ...): timed or FLOP-counted by an
        attached :class:`src.profiling.measure.PhaseRecorder`; a non-finite loss inside it is reported
        under ``name`` (:meth:`check_finite`)."""
        outer, self._phase_now = self._phase_now, name
        try:
            with nullcontext() if self.phase_recorder is None else self.phase_recorder(name):
                yield
        finally:
            self._phase_now = outer

    def note_finite(self, loss: Tensor) -> None:
        """Record the first non-finite ``loss`` (a scalar) with its phase and iteration (1-based, as
        checkpoints count them), in tensor ops only: the host reads them at :meth:`check_finite`."""
        name = self._phase_now or "(no phase)"
        if name not in self._phase_names:
            self._phase_names.append(name)
        code = (self.iteration + 1) * _PHASE_SLOTS + self._phase_names.index(name)
        first = ~torch.isfinite(loss.detach()) & (self._nonfinite < 0)
        self._nonfinite.copy_(torch.where(first, code, self._nonfinite))

    def compiled(self, module: torch.nn.Module) -> Callable:
        """``module`` itself, or its ``torch.compile`` wrapper when ``model.perf.compile`` is on.

        The wrapper is kept outside the module tree, so checkpoints and ``state_dict`` keys are the
        same either way. FLOP counting always runs the eager module.
        """
        if not self.perf["compile"] or (self.phase_recorder is not None and self.phase_recorder.counting):
            return module
        wrapper = self._compiled.get(id(module))
        if wrapper is None:
            wrapper = self._compiled[id(module)] = CompiledOrEager(module)
        return wrapper

    def to_memory_format(self, x: Tensor) -> Tensor:
        """``x`` in channels-last layout when ``model.perf.channels_last`` is on (4-D tensors only)."""
        if self.perf["channels_last"] and x.ndim == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def on_fit_start(self) -> None:
        if self.perf["channels_last"]:
            self.to(memory_format=torch.channels_last)

    def check_finite(self, weights: bool = False) -> None:
        """Raise :class:`~src.utils.faults.NonFiniteState` if any loss since the start was NaN/Inf,
        naming the phase and iteration of the first (one host sync per call); ``weights``: also if a
        parameter (G, D, G_ema) is (before a checkpoint is written)."""
        code = int(self._nonfinite)
        if code >= 0:
            at, phase = divmod(code, _PHASE_SLOTS)
            raise NonFiniteState(
                f"non-finite loss (NaN/Inf) in phase {self._phase_names[phase]} at iteration {at} (found at "
                f"iteration {self.iteration}, kimg {self.kimg:.3f}); training stopped instead of continuing on "
                f"garbage, and nothing non-finite was saved. {self.nonfinite_advice}"
            )
        if weights:
            # parameters only: some buffers hold NaN by design (e.g. ADA's r_t before its first measurement)
            bad = [name for name, t in self.named_parameters() if not t.isfinite().all()]
            if bad:
                raise NonFiniteState(
                    f"non-finite weights (NaN/Inf) at iteration {self.iteration} (kimg {self.kimg:.3f}): "
                    f"{', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}; training stopped, and nothing "
                    f"non-finite was saved. {self.nonfinite_advice}"
                )

    # ------------------------------------------------------------------------------------------
    # Exact resume.

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        rng = {"torch": torch.get_rng_state(), "python": random.getstate()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        checkpoint["gamut"] = {
            "cur_nimg": self.cur_nimg,
            "iteration": self.iteration,
            "rng": rng,
            "colorspace": self.colorspace.name,
            "module": f"{type(self).__module__}.{type(self).__qualname__}",
        }
        if self.run_config is not None:  # the run's resolved config (src/train.py): resume without its folder
            checkpoint["gamut"]["config"] = self.run_config
        if self.loss_scalers.scalers:
            checkpoint["gamut"]["grad_scalers"] = self.loss_scalers.state_dicts()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("gamut", {})
        self.cur_nimg = int(state.get("cur_nimg", 0))
        self.iteration = int(state.get("iteration", 0))
        self._pending_rng = state.get("rng")
        self.loss_scalers.pending = state.get("grad_scalers")

    def on_train_start(self) -> None:
        self._rank, self._world = self.trainer.global_rank, self.trainer.world_size
        rng, self._pending_rng = self._pending_rng, None
        if not rng:
            reset_seed()  # fresh run: start the training stream from the seed on every rank
            return
        torch.set_rng_state(rng["torch"])
        random.setstate(rng["python"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
