"""Building blocks shared by the networks: equalized-lr layers, FIR resampling, modulated convolution,
SyncBatchNorm on every backend.
"""
