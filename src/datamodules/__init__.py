"""Data from file to batch: readers for folders and zips, the built-in shapes, TinyImageNet, class
labels, the endless sampler and the one DataModule.
"""
