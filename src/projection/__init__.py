"""GAN inversion: project images into a generator's W or W+ space (Karras et al. 2020, §5)."""
