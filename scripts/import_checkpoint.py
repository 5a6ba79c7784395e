"""``python scripts/import_checkpoint.py ...`` runs :mod:`src.tools.import_checkpoint` (its docstring lists the keys).

The same tool runs as ``gamut-import-checkpoint ...`` or ``python -m src.tools.import_checkpoint ...``. All need gamut
installed in the environment (``make install``, or ``pip install -e .``), which puts ``src`` on the
import path: no script edits ``sys.path`` or imports another script.
"""

from src.tools.import_checkpoint import main

if __name__ == "__main__":
    main()
