"""What a model family requires of the config, as config validation asks it: :class:`FamilyRules`.

A model family is a :class:`src.modules.base.GANModule` subclass (docs/architecture.md, "What a
model family provides"). Config validation (:mod:`src.utils.validation`) runs before anything is
built and must not import a family, so the rules it asks are declared here, below the families:
``GANModule`` inherits :class:`FamilyRules`, each family overrides what differs (its size rule, its
rules for the per-device batch and for ``data.batch_gpu``), and validation locates the class named
by ``model._target_`` and asks it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = ["FamilyRules"]


class FamilyRules:
    """What a model family states about the config it trains with; the base of ``GANModule``.

    Config validation asks the class named by ``model._target_`` (a subclass) before anything is
    built. The defaults suit a family that takes any image size and trains on the whole per-device
    batch at once; a family overrides the class attributes and class methods that differ (StyleGAN2:
    ``doubles_from_base``, ``accumulates_gradients``, :meth:`check_batch`, :meth:`check_batch_gpu`).
    Errors are ``ValueError`` naming the keys and what is allowed (validation reports them as
    ``ConfigError``).
    """

    #: The size rule. True: the generator grows from a small ``b_h x b_w`` constant by doublings, so
    #: ``data.resolution`` must be ``(b_h * 2**k, b_w * 2**k)`` (``src.utils.resolution.parse_resolution``,
    #: which names the nearest valid sizes) and ``model.num_fp16_res`` counts those resolutions.
    #: False: any size.
    doubles_from_base: ClassVar[bool] = False
    #: True: every phase runs in rounds of ``data.batch_gpu`` rows (``GANModule.accumulate``) and the
    #: model takes ``batch_gpu``. False: a ``data.batch_gpu`` is refused, naming :attr:`no_accumulation_reason`.
    accumulates_gradients: ClassVar[bool] = False
    #: why the family does not accumulate gradients (in the refusal of ``data.batch_gpu``)
    no_accumulation_reason: ClassVar[str] = "its phases train on the whole per-device batch at once"
    #: The class whose constructor receives the family's ``**kwargs`` when the family passes a network's
    #: options through without subclassing it (ChromaGAN: its generator); validation then knows those
    #: ``model.*`` keys. Read from the class that declares it.
    kwargs_to: ClassVar[type | None] = None
    #: The ``model.*`` keys that are training settings rather than architecture: a fine-tune
    #: (``ckpt_init``) keeps this config's values for them instead of the checkpoint's. A family adds
    #: its own (StyleGAN2: ``mbstd_group``, ``w_avg_beta``).
    training_keys: ClassVar[frozenset[str]] = frozenset(
        {"loss", "optim", "ema", "augment", "freeze_d", "check_finite_every", "perf"}
    )

    @classmethod
    def check_batch(cls, model: Mapping[str, Any], batch: int) -> None:
        """Refuse a per-device batch ``batch`` (``data.batch_size``, a positive int) that the family's
        networks, configured by ``model`` (``cfg.model``), cannot train on. Nothing by default."""

    @classmethod
    def check_batch_gpu(cls, model: Mapping[str, Any], batch: int, batch_gpu: int) -> None:
        """Refuse ``data.batch_gpu=batch_gpu`` rows per pass for the per-device ``batch`` (already known to
        divide it, in more than one round) that the family's phases cannot split. Called only when
        :attr:`accumulates_gradients`; nothing by default."""
