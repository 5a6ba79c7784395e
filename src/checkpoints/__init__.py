"""gamut's checkpoint files: writing, reading, exporting and importing them, in one package.

- :mod:`~src.checkpoints.io`: ``AtomicCheckpointIO``, the Lightning checkpoint IO that writes
  atomically and loads with ``weights_only=True``;
- :mod:`~src.checkpoints.load`: rebuild a module from a checkpoint, the tools' generator loader
  (``load_inference``: a checkpoint or an export), and starting a run from a checkpoint's weights
  (``ckpt_init``);
- :mod:`~src.checkpoints.export`: G_ema as safetensors (+ JSON config) or traced TorchScript;
- :mod:`~src.checkpoints.importing`: a foreign StyleGAN2 (read by :mod:`src.pretrained`) as a gamut
  checkpoint.

When checkpoints are written during training is the Lightning callback's concern
(``src/callbacks/checkpoint.py``).
"""
