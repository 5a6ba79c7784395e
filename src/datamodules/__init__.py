"""Data from file to batch: the data-set contract (``dataset.ImageDataset``), readers for folders and
zips, the built-in shapes, TinyImageNet, Fashion-MNIST, class labels, the endless sampler and the one
DataModule.
"""
