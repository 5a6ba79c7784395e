"""The latent explorer: a local web page over any generator or colorizer (docs/explorer.md).

:mod:`src.explorer.views` holds the server functions (one per view, each calling the functions the CLI
tools use); :mod:`src.explorer.app` lays them out as a Gradio page and serves it.
"""
