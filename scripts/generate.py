"""``python scripts/generate.py ...`` runs :mod:`src.tools.generate` (its docstring lists the keys).

The same tool runs as ``gamut-generate ...`` or ``python -m src.tools.generate ...``. All need gamut
installed in the environment (``make install``, or ``pip install -e .``), which puts ``src`` on the
import path: no script edits ``sys.path`` or imports another script.
"""

from src.tools.generate import main

if __name__ == "__main__":
    main()
