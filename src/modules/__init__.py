"""The model families: the shared GANModule contract (base.py), the training engine beside it
(engine/) and one package per family (stylegan2, segan, chromagan).
"""
