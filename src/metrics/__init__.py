"""Image-quality metrics for generators: FID, KID (Inception features) and PPL (LPIPS-VGG).

Computed as stylegan2-ada-pytorch's ``metrics/`` does; PPL also with the protocol of SEGan_Pytorch's README.
Entry points: ``python -m src.eval`` (src/conf/eval.yaml) and :class:`src.callbacks.metrics.GeneratorMetrics`.
"""
