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
        "src.benchmark",
    ),  # 8 services/views (the benchmark's subjects build the families)
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


# ---------------------------------------------------------------------------------------------------
# Declared contracts instead of probes (issue 31): a caller uses what a family, a data set or a logger
# declares; it never asks ``getattr``/``hasattr`` whether an object happens to have something, and never
# reaches for another module's private (leading-underscore) names.

#: The ``getattr``/``hasattr`` calls ``src/`` may keep: ``file -> why``. None of them asks a family, a
#: data set or a logger what it has; each reads a name it computed itself or asks a foreign object
#: (a stream, a PIL image, a pickle's module, torch) about a feature that object type documents.
ALLOWED_PROBES: dict[str, str] = {
    "src/pretrained/safe_pickle.py": "torch dtypes by their pickled name (torch.float32 ...), checked to be dtypes",
    "src/metrics/colorization.py": "the metric's own state names, built from its key list (add_state)",
    "src/metrics/lpips.py": "LPIPS's own linear heads head0..head4, registered under computed names",
    "src/metrics/progress.py": "whether a text stream is a terminal (io streams may lack isatty)",
    "src/callbacks/progress.py": "whether sys.stdout is a terminal (a replaced stdout may lack isatty)",
    "src/visualize/video.py": "a PIL image's frame count (only animated formats define n_frames)",
    "src/nn/sync_batchnorm.py": "torch's own BatchNorm conversion: copying qconfig when quantization set one",
    "src/utils/ddp_launch.py": "__main__.__spec__ (absent when Python runs a file rather than a module)",
    "hydra_plugins/gamut_optuna_sweeper/optuna_sweeper.py": "the sweeper's own count settings, by their names",
    "hydra_plugins/gamut_optuna_sweeper/_search_space.py": "Hydra's sweep values: only the sweep kinds carry tags",
}


def probes(root: Path, files: list[Path]) -> list[str]:
    """``getattr(...)``/``hasattr(...)`` calls in ``files``, as ``path:line: call``."""
    hits = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr")
            ):
                hits.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)[:80]}")
    return hits


def _self_private(tree: ast.AST) -> tuple[set[str], list[tuple[int, str]]]:
    """The private attributes a module assigns on ``self`` and every ``self._name`` it reads."""
    assigned: set[str] = set()
    used: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("_"):
            assigned.add(node.name)  # a private method of one of the module's classes
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            if isinstance(node.ctx, ast.Store):
                assigned.add(node.attr)
            else:
                used.append((node.lineno, node.attr))
    return assigned, used


def private_imports(root: Path, files: list[Path]) -> list[str]:
    """Private names used across gamut modules: ``from <gamut module> import _name``, and a
    ``self._name`` read in a module that does not set it while another module does (a subclass
    reaching into its base's internals)."""
    hits = []
    trees = {path: ast.parse(path.read_text(), filename=str(path)) for path in files}
    owners: dict[str, set[Path]] = {}
    for path, tree in trees.items():
        for name in _self_private(tree)[0]:
            owners.setdefault(name, set()).add(path)
    for path, tree in trees.items():
        where = path.relative_to(root)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (
                node.level or (node.module or "").split(".")[0] in ("src", "scripts")
            ):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        hits.append(f"{where}:{node.lineno}: imports {node.module}.{alias.name}")
        assigned, used = _self_private(tree)
        for line, name in sorted(set(used)):
            if name not in assigned and owners.get(name, set()) - {path}:
                other = min(str(p.relative_to(root)) for p in owners[name] - {path})
                hits.append(f"{where}:{line}: reads self.{name}, private to {other}")
    return hits


def _probe_files(root: Path) -> list[Path]:
    hydra = sorted((root / "hydra_plugins").rglob("*.py")) if (root / "hydra_plugins").is_dir() else []
    return [*_files(root), *(p for p in hydra if "__pycache__" not in p.parts)]


def _allowed(hit: str) -> bool:
    return any(hit.startswith(f"{prefix}:") or hit.startswith(f"{prefix}/") for prefix in ALLOWED_PROBES)


def test_no_attribute_probes_outside_the_allowed_uses():
    """A family, data set or logger is used through its declared contract: a new ``getattr``/``hasattr``
    in src/ fails here until it is either replaced by a declared name or added to ALLOWED_PROBES with
    the reason it asks no family, data set or logger."""
    hits = probes(ROOT, _probe_files(ROOT))
    assert len(hits) >= len(ALLOWED_PROBES) - 2  # the walk sees the allowed ones
    bad = [h for h in hits if not _allowed(h)]
    assert not bad, "\n".join(bad)
    unused = [p for p in ALLOWED_PROBES if not any(h.startswith(f"{p}:") or h.startswith(f"{p}/") for h in hits)]
    assert not unused, f"ALLOWED_PROBES lists files without a probe any more: {unused}"


def test_no_private_names_across_gamut_modules():
    hits = private_imports(ROOT, _probe_files(ROOT))
    assert not hits, "\n".join(hits)


#: The shared parts of src/modules/ (the contract and the engine); every other module there belongs to a family.
FAMILY_NEUTRAL_MODULES = ("src.modules.base", "src.modules.engine")

#: Modules about one family, which may import it: ``module prefix -> why``.
FAMILY_SPECIFIC: dict[str, str] = {
    "src.callbacks.traversal": "SEGAN's traversal grids during training",
    "src.tools.traverse": "SEGAN's traversal tool",
    "src.explorer.segan": "the explorer's SEGAN sliders and subspace table",
    "src.checkpoints.importing": "builds a StyleGAN2 or StyleGAN3 from NVIDIA's or rosinality's checkpoints",
    "src.checkpoints.importing_stylegan3": "checks an imported StyleGAN3's schedule and filters against the family's",
    "src.benchmark.subjects": "one benchmark subject per family",
}


def is_family_module(name: str) -> bool:
    parts = name.split(".")
    return (
        len(parts) >= 3
        and parts[:2] == ["src", "modules"]
        and not any(name == m or name.startswith(m + ".") for m in FAMILY_NEUTRAL_MODULES)
    )


def family_imports(edges: list[Edge]) -> list[str]:
    """Family-neutral code (src/utils, src/metrics, callbacks, tools, explorer, ...) importing a family."""
    neutral_roots = (
        "src.utils",
        "src.metrics",
        "src.callbacks",
        "src.tools",
        "src.explorer",
        "src.loggers",
        "src.sweeps",
        "src.datamodules",
        "src.visualize",
        "src.projection",
        "src.checkpoints",
        "src.train",
        "src.eval",
        "src.benchmark",
        "src.profiling",
    )
    bad = []
    for e in edges:
        if not is_family_module(e.imported) or not e.importer.startswith(neutral_roots):
            continue
        if any(e.importer == m or e.importer.startswith(m + ".") for m in FAMILY_SPECIFIC):
            continue
        bad.append(f"{e.where}: {e.importer} imports the family module {e.imported}")
    return bad


def test_family_neutral_code_imports_no_family():
    """utils, metrics, callbacks, tools, explorer views, ... know families only through GANModule's
    contract; only the modules about one family (FAMILY_SPECIFIC) import it."""
    bad = family_imports(EDGES)
    assert not bad, "\n".join(bad)


def test_the_contract_checks_catch_probes_and_private_imports(tmp_path):
    """A synthetic tree with a probe, a private import and a family import from utils: each is reported."""
    sources = {
        "src/__init__.py": "",
        "src/utils/__init__.py": "",
        "src/utils/a.py": "def f(model):\n    return getattr(model, 'z_dim', 512)\n",
        "src/utils/b.py": "from src.modules.base import _Rounds\nfrom src.utils.a import f\n",
        "src/utils/c.py": "def g():\n    from src.modules.stylegan2.module import StyleGAN2\n    return StyleGAN2\n",
        "src/modules/__init__.py": "",
        "src/modules/base.py": "class _Rounds: ...\n",
        "src/modules/stylegan2/__init__.py": "",
        "src/modules/stylegan2/module.py": (
            "from src.modules.base import _Rounds\n\n\nclass S:\n    def f(self):\n        return self._world\n"
        ),
        "src/modules/engine.py": (
            "class E:\n    def __init__(self):\n        self._world = 1\n\n    def g(self):\n"
            "        return self._world\n"
        ),
        "src/callbacks/__init__.py": "",
        "src/callbacks/traversal.py": "from src.modules.stylegan2.module import StyleGAN2\n",
    }
    for name, text in sources.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    files = _files(tmp_path)
    assert probes(tmp_path, files) == ["src/utils/a.py:2: getattr(model, 'z_dim', 512)"]
    assert private_imports(tmp_path, files) == [
        "src/modules/stylegan2/module.py:1: imports src.modules.base._Rounds",
        "src/modules/stylegan2/module.py:6: reads self._world, private to src/modules/engine.py",
        "src/utils/b.py:1: imports src.modules.base._Rounds",
    ]
    bad = family_imports(collect(tmp_path, files))
    assert bad == ["src/utils/c.py:2: src.utils.c imports the family module src.modules.stylegan2.module"], bad
