"""Image-quality metrics for generators: FID, KID (Inception features) and PPL (LPIPS-VGG).

Specs: stylegan2 §3 (how NVIDIA computes them), segan §4 (the PPL protocol SEGAN reports).
Entry points: ``python -m src.eval`` (conf/eval.yaml) and :class:`src.callbacks.metrics.GeneratorMetrics`.
"""
