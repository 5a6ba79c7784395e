"""``python scripts/visualize.py ...`` runs :mod:`src.tools.visualize` (its docstring lists the keys).

The same tool runs as ``gamut-visualize ...`` or ``python -m src.tools.visualize ...``. All need gamut
installed in the environment (``make install``, or ``pip install -e .``), which puts ``src`` on the
import path: no script edits ``sys.path`` or imports another script.
"""

from src.tools.visualize import main

if __name__ == "__main__":
    main()
