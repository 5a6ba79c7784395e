"""``python scripts/traverse.py ...`` runs :mod:`src.tools.traverse` (its docstring lists the keys).

The same tool runs as ``gamut-traverse ...`` or ``python -m src.tools.traverse ...``. All need gamut
installed in the environment (``make install``, or ``pip install -e .``), which puts ``src`` on the
import path: no script edits ``sys.path`` or imports another script.
"""

from src.tools.traverse import main

if __name__ == "__main__":
    main()
