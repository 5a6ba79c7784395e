"""``python scripts/export.py ...`` runs :mod:`src.tools.export` (its docstring lists the keys).

The same tool runs as ``gamut-export ...`` or ``python -m src.tools.export ...``. All need gamut
installed in the environment (``make install``, or ``pip install -e .``), which puts ``src`` on the
import path: no script edits ``sys.path`` or imports another script.
"""

from src.tools.export import main

if __name__ == "__main__":
    main()
