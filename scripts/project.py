"""``python scripts/project.py ...`` runs :mod:`src.tools.project` (its docstring lists the keys).

The same tool runs as ``gamut-project ...`` or ``python -m src.tools.project ...``. All need gamut
installed in the environment (``make install``, or ``pip install -e .``), which puts ``src`` on the
import path: no script edits ``sys.path`` or imports another script.
"""

from src.tools.project import main

if __name__ == "__main__":
    main()
