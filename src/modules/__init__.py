"""The model families: the shared GANModule contract (base.py) and one package per family (stylegan2,
segan, chromagan).
"""
