"""Views of a generator for researchers: style mixing, interpolation videos, layer and noise views,
training progress, discriminator scores (issue 7; like stylegan3's tools). One concern per file."""
