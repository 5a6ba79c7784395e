"""SEGAN: StyleGAN2 with EigenGAN-style linear subspaces per layer (modes 0-3) and semantic edits."""
