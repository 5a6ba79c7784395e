"""Training length: ``trainer.max_steps`` (iterations) or ``trainer.max_kimg`` (thousands of images).

One iteration is one G and one D update on one minibatch. ``max_kimg`` counts the images of all
devices together, as NVIDIA's ``--kimg`` (training/training_loop.py: ``done = cur_nimg >=
total_kimg * 1000``): the run stops at the first iteration where ``cur_nimg >= max_kimg * 1000``.
At most one of the two is set (src/utils/validation.py); neither (null, or ``max_steps=-1``)
means no limit: the run goes on until ``trainer.max_time`` or Ctrl-C.

A length named on the command line replaces the one an experiment or preset sets
(:func:`prefer_named_length`): ``experiment=quickstart trainer.max_steps=4`` trains 4 iterations
although the experiment sets ``trainer.max_kimg``. Both named on the command line stay an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities.rank_zero import rank_zero_warn

from src.utils.resume import override_key

#: keys of ``trainer`` that gamut reads itself and that pytorch_lightning.Trainer does not take
GAMUT_TRAINER_KEYS = ("max_kimg",)


@dataclass(frozen=True)
class Limits:
    """The run's length: ``max_steps`` iterations or ``max_kimg`` thousand images (None: not set)."""

    max_steps: int | None = None
    max_kimg: float | None = None

    @property
    def unlimited(self) -> bool:
        return self.max_steps is None and self.max_kimg is None

    @property
    def max_nimg(self) -> float | None:
        return None if self.max_kimg is None else self.max_kimg * 1000

    def describe(self) -> str:
        """The key that sets the length, as written on the command line."""
        if self.max_kimg is not None:
            return f"trainer.max_kimg={self.max_kimg:g}"
        if self.max_steps is not None:
            return f"trainer.max_steps={self.max_steps}"
        return "no limit"

    def key(self) -> str:
        return "trainer.max_kimg" if self.max_kimg is not None else "trainer.max_steps"


LENGTH_KEYS = ("trainer.max_steps", "trainer.max_kimg")


def _named(overrides: list[str]) -> list[str]:
    given = {override_key(o) for o in overrides}
    return [k for k in LENGTH_KEYS if k in given]


def prefer_named_length(cfg: DictConfig, overrides: list[str], first_launch: list[str] | None = None) -> str | None:
    """When ``overrides`` (this launch's command line) name exactly one of :data:`LENGTH_KEYS`, unset
    the other in ``cfg`` (it came from an experiment, a preset, the defaults or, for a resume, the
    first launch); when they name neither, the same for ``first_launch`` (a resume's first command
    line). Returns a note for the log, or None when nothing changed."""
    named = _named(overrides) or _named(first_launch or [])
    if len(named) != 1 or cfg.get("trainer") is None:
        return None
    other = next(k for k in LENGTH_KEYS if k not in named).split(".")[1]
    value = cfg.trainer.get(other)
    if value is None or value == -1:
        return None
    with open_dict(cfg):
        cfg.trainer[other] = None
    return f"{named[0]} given on the command line replaces trainer.{other}={value} of the experiment or preset"


def _number(value):
    return None if isinstance(value, bool) or not isinstance(value, (int, float)) else value


def limits_from_config(trainer_cfg) -> Limits:
    """The limits of a ``trainer`` config node. Lenient: a value that is not a valid limit (negative,
    not a number) counts as unset; src/utils/validation.py refuses those before training."""
    steps = _number(trainer_cfg.get("max_steps")) if trainer_cfg is not None else None
    kimg = _number(trainer_cfg.get("max_kimg")) if trainer_cfg is not None else None
    steps = int(steps) if steps is not None and steps >= 0 else None
    kimg = float(kimg) if kimg is not None and kimg >= 0 else None
    return Limits(max_steps=steps, max_kimg=kimg)


def reached(limits: Limits, iteration: int, cur_nimg: int) -> bool:
    """True when a set limit is reached at ``iteration`` / ``cur_nimg`` (global images); False when
    no limit is set."""
    if limits.max_steps is not None and iteration >= limits.max_steps:
        return True
    # 1e-6 image of slack: max_kimg * 1000 of a decimal kimg (0.3 -> 300.00000000000006) is exact
    return limits.max_kimg is not None and cur_nimg >= limits.max_kimg * 1000 - 1e-6


def lightning_trainer_config(trainer_cfg) -> dict:
    """The ``trainer`` node, resolved, without gamut's own keys (:data:`GAMUT_TRAINER_KEYS`)."""
    node = OmegaConf.to_container(trainer_cfg, resolve=True)
    assert isinstance(node, dict), "trainer is a mapping"
    for key in GAMUT_TRAINER_KEYS:
        node.pop(key, None)
    return node


class StopAtIteration(Callback):
    """Stop at the first iteration where a limit is reached (module counters ``iteration``, ``cur_nimg``).

    ``limits``: a :class:`Limits`, or an int number of iterations (-1: no limit). gamut's
    ``trainer.max_steps`` means iterations; Lightning's own ``max_steps`` would count optimizer
    steps, which a GAN takes 2 to 4 of per iteration (Lightning#17958).
    """

    def __init__(self, limits: Limits | int) -> None:
        if not isinstance(limits, Limits):
            limits = Limits(max_steps=int(limits) if int(limits) >= 0 else None)
        self.limits = limits

    @property
    def max_iterations(self) -> int:  # the former attribute: -1 when iterations are not the limit
        return -1 if self.limits.max_steps is None else self.limits.max_steps

    def _reached(self, pl_module) -> bool:
        return reached(self.limits, pl_module.iteration, pl_module.cur_nimg)

    def on_train_start(self, trainer, pl_module) -> None:
        if self._reached(pl_module):
            key = self.limits.key()
            rank_zero_warn(
                f"this run is already at iteration {pl_module.iteration}, kimg "
                f"{pl_module.cur_nimg / 1000:g} ({self.limits.describe()}): nothing to train. "
                f"Raise {key} to continue it."
            )
            trainer.should_stop = True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._reached(pl_module):
            trainer.should_stop = True


def bare_trainer(iterations: int, callbacks: list | tuple = (), **trainer_kwargs):
    """A CPU Trainer that runs only the training loop and stops after ``iterations`` iterations
    (the module's count): no logger, checkpoints, progress bar, summary or validation. For the
    benchmark and for tests that fit a module directly; ``trainer_kwargs`` override (``accelerator``,
    ``precision``, ``plugins``, ...)."""
    import pytorch_lightning as pl

    options: dict[str, Any] = dict(
        accelerator="cpu",
        devices=1,
        max_steps=-1,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    return pl.Trainer(**(options | trainer_kwargs), callbacks=[*callbacks, StopAtIteration(iterations)])
