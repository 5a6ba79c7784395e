"""``python scripts/explore.py ...`` runs :mod:`src.tools.explore` (its docstring lists the keys).

The same tool runs as ``gamut-explore ...`` or ``python -m src.tools.explore ...``. All need gamut
installed in the environment (``make install``, or ``pip install -e .``), which puts ``src`` on the
import path: no script edits ``sys.path`` or imports another script.
"""

from src.tools.explore import main

if __name__ == "__main__":
    main()
