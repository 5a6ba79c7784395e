"""Imports point one way: a package imports only its own layer and the layers below it.

Every ``.py`` file under ``src/`` and ``scripts/`` is parsed with :mod:`ast` (no code runs) and each
``import`` / ``from ... import`` naming a gamut module, at any depth (inside functions and
``TYPE_CHECKING`` blocks too), becomes an edge of the import graph. The rules, as
docs/architecture.md states them:

- a module never imports a module of a higher layer (:data:`LAYERS`, bottom first);
- a tool (``src/tools/<tool>.py``) never imports another tool, and a script never imports a script;
- ``scripts/`` and ``src/tools/`` never edit ``sys.path`` (the package is installed).

A failure names the importing ``file:line`` and the imported module.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Bottom first. A package may import its own layer and every layer below; nothing above.
LAYERS: list[tuple[str, ...]] = [
    ("src.colorspaces",),  # 0 foundation: RGB <-> model space, no gamut imports
    ("src.utils", "src.profiling"),  # 1 foundation: config checks, IO, CLI, timing
    ("src.nn",),  # 2 foundation: network building blocks
    ("src.pretrained", "src.latents", "src.augment"),  # 3 shared concepts: weights, latents, D augmentation
    ("src.datamodules",),  # 4 data
    ("src.metrics",),  # 5 metrics (of images and generators)
    ("src.modules",),  # 6 model families
    ("src.checkpoints",),  # 7 checkpoint files (build modules on import)
    (
        "src.callbacks",
        "src.sweeps",
        "src.loggers",
        "src.projection",
        "src.visualize",
        "src.explorer",
    ),  # 8 services/views
    ("src.train", "src.eval", "src.tools"),  # 9 entry points and tools
    ("scripts",),  # 10 thin wrappers around the tools
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


@dataclass(frozen=True)
class Edge:
    importer: str  # module name, e.g. src.tools.generate
    where: str  # file:line
    imported: str  # module name as imported (a submodule when ``from pkg import sub`` names one)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_internal(name: str, scripts: set[str]) -> bool:
    return name == "src" or name.startswith(("src.", "scripts")) or name.split(".")[0] in scripts


def collect(root: Path, files: list[Path]) -> list[Edge]:
    """The gamut-internal import edges of ``files`` (paths under ``root``)."""
    scripts = {p.stem for p in files if p.parent == root / "scripts"}
    modules = {module_name(p, root) for p in files}
    edges = []
    for path in files:
        me = module_name(path, root)
        package = me if path.name == "__init__.py" else me.rpartition(".")[0]
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against this file's package
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                submodules = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
                names = submodules or [base]  # ``from pkg import sub``: the submodule is what is used
            where = f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}"
            edges += [Edge(me, where, n) for n in names if _is_internal(n, scripts)]
    return edges


def layer_of(module: str) -> int | None:
    """The rank of ``module``'s layer: the longest prefix in :data:`LAYERS` (None: not assigned)."""
    parts = module.split(".")
    for k in range(len(parts), 0, -1):
        rank = RANK.get(".".join(parts[:k]))
        if rank is not None:
            return rank
    return None


def violations(edges: list[Edge], scripts: set[str]) -> list[str]:
    problems = []
    for e in edges:
        imported = e.imported
        if e.importer.startswith("scripts") and (imported.startswith("scripts") or imported.split(".")[0] in scripts):
            problems.append(f"{e.where}: a script imports a script: {imported}")
            continue
        if e.importer.startswith("src.tools.") and imported.startswith("src.tools") and imported != e.importer:
            problems.append(f"{e.where}: a tool imports another tool: {imported} (move the shared code below)")
            continue
        mine, theirs = layer_of(e.importer), layer_of(imported)
        if mine is None or theirs is None:
            missing = e.importer if mine is None else imported
            problems.append(
                f"{e.where}: {missing} has no layer; add its package to LAYERS in "
                f"tests/test_import_layers.py and to docs/architecture.md"
            )
        elif theirs > mine:
            problems.append(
                f"{e.where}: {e.importer} (layer {mine}: {', '.join(LAYERS[mine])}) imports "
                f"{imported} (layer {theirs}: {', '.join(LAYERS[theirs])}), a higher layer"
            )
    return problems


def path_edits(root: Path, files: list[Path]) -> list[str]:
    """``sys.path.insert/append/extend`` or assignments to ``sys.path`` in ``files``."""
    hits = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            target = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                target = node.func.value
            elif isinstance(node, (ast.Assign, ast.AugAssign)):
                target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            if (
                isinstance(target, ast.Attribute)
                and target.attr == "path"
                and isinstance(target.value, ast.Name)
                and target.value.id == "sys"
            ):
                hits.append(f"{path.relative_to(root)}:{node.lineno}: edits sys.path")
    return hits


def _files(root: Path) -> list[Path]:
    return sorted(
        p for p in [*(root / "src").rglob("*.py"), *(root / "scripts").glob("*.py")] if "__pycache__" not in p.parts
    )


FILES = _files(ROOT)
EDGES = collect(ROOT, FILES)
SCRIPTS = {p.stem for p in FILES if p.parent == ROOT / "scripts"}


def test_the_graph_is_not_empty():
    """The walk finds the code and its imports (a broken walk would pass every rule vacuously)."""
    assert len(FILES) >= 100, len(FILES)
    assert len(EDGES) >= 200, len(EDGES)
    importers = {e.importer.split(".")[0] for e in EDGES}
    assert importers == {"src", "scripts"}, importers
    used = {layer_of(e.importer) for e in EDGES}
    assert used >= set(range(1, len(LAYERS))), sorted(used)  # colorspaces (0) imports nothing of gamut
    assert any(e.importer == "src.tools.generate" and e.imported == "src.latents.seeds" for e in EDGES)
    assert any(e.importer == "scripts.generate" and e.imported == "src.tools.generate" for e in EDGES)


def test_every_package_has_a_layer():
    packages = {f"src.{p.name}" for p in (ROOT / "src").iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    packages |= {f"src.{p.stem}" for p in (ROOT / "src").glob("*.py") if p.stem != "__init__"}
    assert not sorted(p for p in packages if layer_of(p) is None), "add these to LAYERS and docs/architecture.md"


def test_imports_point_down():
    problems = violations(EDGES, SCRIPTS)
    assert not problems, "\n".join(problems)


def test_scripts_and_tools_do_not_edit_sys_path():
    files = [p for p in FILES if p.parent in (ROOT / "scripts", ROOT / "src" / "tools")]
    assert len(files) >= 18
    hits = path_edits(ROOT, files)
    assert not hits, "\n".join(hits)


def test_the_checker_catches_bad_imports(tmp_path):
    """A synthetic tree with each kind of bad import: every one is reported, with file:line and target."""
    sources = {
        "src/__init__.py": "",
        "src/utils/__init__.py": "",
        "src/utils/low.py": "import os\n\n\ndef f():\n    from src.modules.base import GANModule  # upward\n",
        "src/utils/rel.py": "from ..datamodules import readers  # upward, relative\n",
        "src/nn/__init__.py": "",
        "src/nn/ok.py": "from src.utils import low\nfrom src.colorspaces import get_colorspace\n",
        "src/datamodules/__init__.py": "",
        "src/datamodules/readers.py": "",
        "src/modules/__init__.py": "",
        "src/modules/base.py": "from src.nn.ok import f\n",
        "src/tools/__init__.py": "",
        "src/tools/a.py": "from src.tools.b import main\n",
        "src/tools/b.py": "import sys\nsys.path.insert(0, '.')\n",
        "src/newpkg/__init__.py": "",
        "src/newpkg/x.py": "from src.utils import low\n",
        "scripts/one.py": "from scripts.two import main\n",
        "scripts/two.py": "import one\nfrom src.tools.a import main\n",
    }
    for name, text in sources.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    files = _files(tmp_path)
    problems = violations(collect(tmp_path, files), {p.stem for p in files if p.parent == tmp_path / "scripts"})
    text = "\n".join(problems)
    assert "src/utils/low.py:5: src.utils.low (layer 1" in text and "imports src.modules.base (layer 6" in text
    assert "src/utils/rel.py:1:" in text and "src.datamodules.readers" in text
    assert "src/tools/a.py:1: a tool imports another tool: src.tools.b" in text
    assert "scripts/one.py:1: a script imports a script: scripts.two" in text
    assert "scripts/two.py:1: a script imports a script: one" in text
    assert "src/newpkg/x.py:1: src.newpkg.x has no layer" in text
    assert len(problems) == 6, text  # nn -> utils/colorspaces, modules -> nn, scripts -> tools are fine
    assert path_edits(tmp_path, files) == ["src/tools/b.py:2: edits sys.path"]
