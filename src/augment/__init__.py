"""Discriminator augmentation for small data sets: ADA (Karras et al. 2020) and DiffAugment (Zhao
et al. 2020), in any colour space.

``pipeline`` is the front end (``model.augment``: :class:`Augmentation`, :func:`check_augment`);
``ada`` the transforms of ADA's pipeline, ``geometry`` their matrices and anti-aliased resampling,
``hue`` hue as an angle through the stages that mix pixels (``hsv``),
``adaptive`` the rule that tunes ADA's probability ``p`` from D's outputs on reals, ``diffaugment``
DiffAugment's policies. It sits beside ``pretrained`` and ``latents`` in the layers
(docs/architecture.md): it imports colour spaces and ``nn`` only.
"""
