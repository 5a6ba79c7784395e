"""``python scripts/study.py ...`` runs :mod:`src.tools.study` (its docstring lists the keys).

The same tool runs as ``gamut-study ...`` or ``python -m src.tools.study ...``. All need gamut installed
in the environment (``make install``, or ``pip install -e ".[study]"``), which puts ``src`` on the import
path: no script edits ``sys.path`` or imports another script.
"""

from src.tools.study import main

if __name__ == "__main__":
    main()
