"""StyleGAN2 (Karras et al., CVPR 2020): mapping + skip generator, ResNet discriminator, lazy R1 and
path-length regularization.
"""
