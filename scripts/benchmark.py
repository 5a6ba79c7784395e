"""``python scripts/benchmark.py ...`` runs :mod:`src.tools.benchmark` (its docstring lists the keys).

The same tool runs as ``gamut-benchmark ...`` or ``python -m src.tools.benchmark ...``. All need gamut
installed in the environment (``make install``, or ``pip install -e .``), which puts ``src`` on the
import path: no script edits ``sys.path`` or imports another script.
"""

from src.tools.benchmark import main

if __name__ == "__main__":
    main()
