"""Utilities at the bottom of the layers: config validation, resolutions, resolvers, resume rules,
atomic IO, the tools' command line.
"""
