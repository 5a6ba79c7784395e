"""Views of a generator for researchers: style mixing, interpolation videos, layer and noise views,
training progress, discriminator scores (issue 7; spec stylegan2 §2.4). One concern per file."""
