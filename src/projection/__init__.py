"""GAN inversion: project images into a generator's W or W+ space (spec stylegan2 §4)."""
