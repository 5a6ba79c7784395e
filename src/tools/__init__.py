"""The command-line tools, one module per tool, each with ``main(argv=None)`` and ``key=value`` arguments.

=================== ================================ ==========================================
tool                console script                   what it does
=================== ================================ ==========================================
``generate``        ``gamut-generate``               images per seed, or from a latent file
``project``         ``gamut-project``                GAN inversion of target images
``visualize``       ``gamut-visualize``              style mixing, interpolation, layer, noise, progress, D-score views
``traverse``        ``gamut-traverse``               SEGAN subspace traversals
``colorize``        ``gamut-colorize``               ChromaGAN on photos
``export``          ``gamut-export``                 G_ema as safetensors or TorchScript
``import_checkpoint`` ``gamut-import-checkpoint``    NVIDIA / rosinality StyleGAN2 -> gamut checkpoint
``prepare_dataset`` ``gamut-prepare-dataset``        images -> dataset_tool zip
``benchmark``       ``gamut-benchmark``              training step, loader and color-space timings
``explore``         ``gamut-explore``                the latent explorer: a local web page over the views
=================== ================================ ==========================================

Run a tool as ``python scripts/<tool>.py ...`` (a two-line wrapper), ``python -m src.tools.<tool>
...`` or its console script (``[project.scripts]`` in pyproject.toml, pointing at the module's
``cli``). Arguments are ``key=value`` items parsed by :func:`src.utils.cli.parse_key_values`;
``visualize`` and ``benchmark`` take a subcommand first (:func:`src.utils.cli.parse_subcommand`).
Tools sit on the top layer: they may import any package of ``src`` but never each other
(docs/architecture.md, tests/test_import_layers.py).
"""
