"""Color spaces as their own package (in the manner of kornia.color): RGB <-> the space a model trains in.

``conversions`` holds the function pairs (RGB in ``[0, 1]`` <-> model space, ~``[-1, 1]``);
``registry`` the :class:`ColorSpace` records, ``COLORSPACE_NAMES`` and :func:`get_colorspace`.
The names below are the package's public interface. It sits at the bottom of the layers
(docs/architecture.md): it imports nothing else from gamut.
"""

from src.colorspaces import conversions, registry
from src.colorspaces.conversions import *  # noqa: F403 (the package re-exports conversions.__all__)
from src.colorspaces.registry import *  # noqa: F403 (and registry.__all__)

__all__ = [*conversions.__all__, *registry.__all__]
