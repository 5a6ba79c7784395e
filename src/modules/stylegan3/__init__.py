"""StyleGAN3 (Karras et al. 2021), gamut's fourth family — under construction."""
