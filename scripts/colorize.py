"""``python scripts/colorize.py ...`` runs :mod:`src.tools.colorize` (its docstring lists the keys).

The same tool runs as ``gamut-colorize ...`` or ``python -m src.tools.colorize ...``. All need gamut
installed in the environment (``make install``, or ``pip install -e .``), which puts ``src`` on the
import path: no script edits ``sys.path`` or imports another script.
"""

from src.tools.colorize import main

if __name__ == "__main__":
    main()
