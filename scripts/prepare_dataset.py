"""``python scripts/prepare_dataset.py ...`` runs :mod:`src.tools.prepare_dataset` (its docstring lists the keys).

The same tool runs as ``gamut-prepare-dataset ...`` or ``python -m src.tools.prepare_dataset ...``. All need gamut
installed in the environment (``make install``, or ``pip install -e .``), which puts ``src`` on the
import path: no script edits ``sys.path`` or imports another script.
"""

from src.tools.prepare_dataset import main

if __name__ == "__main__":
    main()
