"""gamut: a PyTorch Lightning + Hydra platform for GANs (StyleGAN2, SEGAN, ChromaGAN);
docs/architecture.md maps its packages.
"""
