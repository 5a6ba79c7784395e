"""The benchmark's subjects, one module each, each ending with its :class:`~src.benchmark.options.Subject`:

================ ==============================================================================
``stylegan2``    one StyleGAN2 training iteration (``nvidia=PATH``: NVIDIA's beside it)
``stylegan3``    one StyleGAN3 iteration (``cfg=t|r``) and ``G(z)`` (``nvidia=PATH``: NVIDIA's beside it)
``segan``        one SEGAN training iteration in ``mode`` 0-3
``inference``    one batch of ``G(z)`` (``nvidia=PATH``: NVIDIA's beside it)
``chromagan``    one ChromaGAN iteration (teacher, G step, critic step)
``explore``      the latent explorer's latency per live control
``loader``       the real train loader over PNG files or a zip
``colorspace``   encode and decode of each color space (and skimage's, when installed)
================ ==============================================================================

:mod:`src.benchmark.registry` lists them for the command line.
"""
