"""reidlib's layers, checked on the source with ``ast`` (nothing is imported, so this runs in a second).

Every ``import``/``from ... import`` of every module counts, those inside functions too (a lazy
import is still a dependency), relative ones resolved against the module's package. Three
rules (DESIGN.md, "reidlib: layers, one direction only"; the list is also the docstring of
``reidlib/__init__.py``):

* a module imports only from its own layer or lower ones (:data:`LAYERS`);
* no cycle between reidlib modules;
* reidlib never imports ``book``.

The import graph has one node per module (a package's ``__init__`` is the node named after the
package). An import points at the most specific module it names: ``from reidlib.data import
attributes`` at ``reidlib.data.attributes`` (a submodule), ``from reidlib.data import Record`` at
``reidlib.data`` (a name of the package's ``__init__``). The parent packages that Python runs first
are not edges, so a package ``__init__`` importing its own submodules is no cycle by itself, while a
submodule taking a name from its own package's ``__init__`` that imports it back is one.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "reidlib"

# Layer of each subpackage/module of reidlib, lowest first (reidlib/__init__.py lists the same).
LAYERS: dict[str, int] = {
    "data": 0, "nn": 0, "paths": 0, "registry": 0,
    "losses": 1,
    "saliency": 2,
    "models": 3,
    "eval": 4, "retrieval": 4,
    "engine": 5,
    "papers": 6,
    "viz": 7,
}
FORBIDDEN = ("book",)  # top-level packages reidlib must never import


def layer_order() -> str:
    """``data, nn, paths, registry -> losses -> ...`` for the error messages."""
    groups: dict[int, list[str]] = {}
    for name, layer in LAYERS.items():
        groups.setdefault(layer, []).append(name)
    return " -> ".join(", ".join(groups[k]) for k in sorted(groups))


# ---------------------------------------------------------------- reading the source


@dataclass(frozen=True)
class Import:
    """One imported module: ``target`` is the resolved dotted name (a reidlib module where it names one)."""

    source: str  # the importing module, e.g. "reidlib.data.datasets"
    path: Path  # its file
    line: int
    target: str
    lazy: bool  # inside a function (or class) body, not at module level

    def where(self, root: Path) -> str:
        try:
            shown = self.path.relative_to(root)
        except ValueError:
            shown = self.path
        return f"{shown}:{self.line}"


def module_files(root: Path, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``root/package`` (``__init__`` named after its package)."""
    files: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


def _resolve_base(source: str, is_package: bool, module: str | None, level: int, where: str) -> str:
    """The absolute module a (relative) ``from`` import starts from."""
    if level == 0:
        return module or ""
    package = source.split(".") if is_package else source.split(".")[:-1]
    if level - 1 >= len(package):
        raise ValueError(f"{where}: relative import with level {level} goes above the top package")
    base = package[: len(package) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _most_specific(name: str, modules: set[str]) -> str:
    """``name`` if it is a module; else its longest prefix that is one (``reidlib.data.X`` -> ``reidlib.data``)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return name


def collect_imports(root: Path, package: str = PACKAGE) -> list[Import]:
    """Every import of every module under ``root/package``, resolved (see the module docstring)."""
    files = module_files(root, package)
    modules = set(files)
    found: list[Import] = []
    for source, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        # Statements nested in if/try/with, and class bodies, still run at import time: only a
        # function body makes an import lazy.
        eager: set[int] = set()
        stack: list[ast.AST] = list(tree.body)
        while stack:
            node = stack.pop()
            eager.add(id(node))
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                stack.extend(ast.iter_child_nodes(node))
        for node in ast.walk(tree):
            lazy = id(node) not in eager
            where = f"{path}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found.append(Import(source, path, node.lineno, _most_specific(alias.name, modules), lazy))
            elif isinstance(node, ast.ImportFrom):
                base = _resolve_base(source, is_package, node.module, node.level, where)
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    # `from pkg import sub` names the submodule when there is one, else a name of pkg
                    target = full if full in modules else _most_specific(base, modules)
                    found.append(Import(source, path, node.lineno, target, lazy))
    return found


def layer_of(module: str, package: str = PACKAGE) -> tuple[str, int] | None:
    """``(layer name, layer)`` of a module of ``package``; None for the package root or outside it.

    Raises ``KeyError`` for a subpackage missing from :data:`LAYERS`.
    """
    parts = module.split(".")
    if parts[0] != package or len(parts) == 1:
        return None
    return parts[1], LAYERS[parts[1]]


# ---------------------------------------------------------------- the three rules


def layer_violations(imports: list[Import], root: Path, package: str = PACKAGE) -> list[str]:
    problems = []
    for imp in imports:
        src, dst = layer_of(imp.source, package), layer_of(imp.target, package)
        if src is None or dst is None:
            continue  # the package root is exempt (test_package_root_imports_lazily); outside: not a layer
        if dst[1] > src[1]:
            problems.append(
                f"{imp.where(root)}: {imp.source} (layer {src[1]}, {src[0]!r}) imports {imp.target} "
                f"(layer {dst[1]}, {dst[0]!r}){' inside a function' if imp.lazy else ''}; a module may import only "
                f"its own layer or lower ones: {layer_order()}"
            )
    return problems


def forbidden_imports(imports: list[Import], root: Path) -> list[str]:
    return [
        f"{imp.where(root)}: {imp.source} imports {imp.target}; the book imports reidlib, never the reverse"
        for imp in imports
        if imp.target.split(".")[0] in FORBIDDEN
    ]


def import_graph(imports: list[Import], package: str = PACKAGE) -> dict[str, dict[str, Import]]:
    """module -> {imported module: first import of it}, reidlib modules only, no self-edges.

    The package root is left out: Python runs it before any submodule anyway, and it may import
    only lazily (:func:`test_package_root_imports_lazily`), so ``import reidlib`` for ``__version__``
    inside a module that the root's lazy ``__getattr__`` imports is no cycle.
    """
    graph: dict[str, dict[str, Import]] = {}
    for imp in imports:
        if imp.source == package:
            continue
        graph.setdefault(imp.source, {})
        if imp.target.split(".")[0] == package and imp.target not in (imp.source, package):
            graph[imp.source].setdefault(imp.target, imp)
    return graph


def find_cycles(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """One cycle ``[a, b, ..., a]`` per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(v: str) -> None:  # recursion depth <= number of modules (~100)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_in(comp, graph) for comp in components]


def _cycle_in(component: list[str], graph: dict[str, dict[str, Import]]) -> list[str]:
    """A concrete cycle through the component's first module (breadth-first, so the shortest)."""
    members, start = set(component), component[0]
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph.get(v, {})):
                if w not in members:
                    continue
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return path[::-1] + [start]
                if w not in parent:
                    parent[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle through {start} in {component}")  # a component always has one


def describe_cycle(cycle: list[str], graph: dict[str, dict[str, Import]], root: Path) -> str:
    steps = [f"{a} -> {b} ({graph[a][b].where(root)}{', lazy' if graph[a][b].lazy else ''})"
             for a, b in zip(cycle, cycle[1:])]
    return "import cycle: " + "; ".join(steps)


def cycle_problems(imports: list[Import], root: Path, package: str = PACKAGE) -> list[str]:
    graph = import_graph(imports, package)
    return [describe_cycle(c, graph, root) for c in find_cycles(graph)]


# ---------------------------------------------------------------- the real tree


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    return collect_imports(ROOT)


def test_every_part_of_reidlib_has_a_layer():
    names = {p.stem if p.suffix == ".py" else p.name for p in (ROOT / PACKAGE).iterdir()
             if (p.suffix == ".py" and p.name != "__init__.py") or (p / "__init__.py").exists()}
    missing = sorted(names - set(LAYERS))
    assert not missing, (f"reidlib/{missing} has no layer: add it to LAYERS in tests/test_layers.py and to the "
                         f"docstring of reidlib/__init__.py ({layer_order()})")


def test_no_import_of_a_higher_layer(imports):
    problems = layer_violations(imports, ROOT)
    assert not problems, "\n".join(problems)


def test_no_import_cycle(imports):
    problems = cycle_problems(imports, ROOT)
    assert not problems, "\n".join(problems)


def test_reidlib_never_imports_book(imports):
    problems = forbidden_imports(imports, ROOT)
    assert not problems, "\n".join(problems)


def test_package_root_imports_lazily(imports):
    eager = [f"{imp.where(ROOT)}: reidlib/__init__.py imports {imp.target} at import time; import it inside a "
             f"function (e.g. a module __getattr__) so that `import reidlib` stays light"
             for imp in imports if imp.source == PACKAGE and not imp.lazy and imp.target.startswith(PACKAGE + ".")]
    assert not eager, "\n".join(eager)


def test_package_docstring_lists_the_layers():
    doc = ast.get_docstring(ast.parse((ROOT / PACKAGE / "__init__.py").read_text(encoding="utf-8"))) or ""
    for name, layer in LAYERS.items():
        lines = [line for line in doc.splitlines() if line.lstrip().startswith(f"{layer}.")]
        assert lines and f"``{name}``" in lines[0], f"reidlib/__init__.py's docstring must list ``{name}`` at {layer}."


def test_the_collector_sees_lazy_and_relative_imports(imports):
    # Guards against a collector that silently sees nothing: known imports of the real tree.
    targets = {(imp.source, imp.target) for imp in imports}
    assert ("reidlib.data", "reidlib.data.attributes") in targets  # `from . import attributes`
    assert ("reidlib.models.pooling", "reidlib.nn") in targets
    assert any(imp.lazy and imp.source == "reidlib.data.datasets" and imp.target == "reidlib.data.attributes"
               for imp in imports)


# ---------------------------------------------------------------- the checker on synthetic trees


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


BASE = {
    "reidlib/__init__.py": '"""root"""\n__version__ = "0"\n',
    "reidlib/data/__init__.py": "from . import attributes\nfrom .datasets import build\nfrom .errors import E\n",
    "reidlib/data/errors.py": "class E(ValueError):\n    pass\n",
    "reidlib/data/records.py": "R = 1\n",
    "reidlib/models/__init__.py": "from .heads import Head\n",
    "reidlib/models/heads.py": "from reidlib.data import records\nHead = 1\n",
    "reidlib/losses/__init__.py": "",
}


def test_synthetic_cycle_attributes_datasets_is_caught_even_when_one_side_is_lazy(tmp_path):
    root = write_tree(tmp_path, {
        **BASE,
        "reidlib/data/attributes.py": "from .datasets import E\n",  # the old shape: errors lived in datasets
        "reidlib/data/datasets.py": "from .errors import E\n\ndef build():\n    from .attributes import x\n",
    })
    problems = cycle_problems(collect_imports(root), root)
    assert len(problems) == 1
    assert "reidlib.data.attributes -> reidlib.data.datasets (reidlib/data/attributes.py:1)" in problems[0]
    assert "reidlib.data.datasets -> reidlib.data.attributes (reidlib/data/datasets.py:4, lazy)" in problems[0]


def test_synthetic_tree_after_the_move_has_no_cycle(tmp_path):
    root = write_tree(tmp_path, {
        **BASE,
        # the root's lazy facade and a module reading reidlib.__version__: no cycle
        "reidlib/__init__.py": "__version__ = '0'\n\ndef __getattr__(name):\n    from reidlib.models import heads\n",
        "reidlib/models/heads.py": "from reidlib.data import records\nimport reidlib\nHead = reidlib.__version__\n",
        "reidlib/data/attributes.py": "from .errors import E\nfrom reidlib.data.records import R\n",
        "reidlib/data/datasets.py": "from .errors import E\n\ndef build():\n    from .attributes import x\n",
    })
    imports = collect_imports(root)
    assert cycle_problems(imports, root) == []  # __init__ -> its submodules is no cycle
    assert layer_violations(imports, root) == []
    graph = import_graph(imports)
    assert set(graph["reidlib.data"]) == {"reidlib.data.attributes", "reidlib.data.datasets", "reidlib.data.errors"}
    assert set(graph["reidlib.models.heads"]) == {"reidlib.data.records"}  # `from pkg import submodule`
    assert "reidlib" not in graph


def test_synthetic_submodule_taking_a_name_from_its_own_package_is_a_cycle(tmp_path):
    # data/__init__ imports datasets; datasets takes E from data/__init__: a real cycle (a half-initialised
    # package at import time), unlike `from .errors import E`.
    root = write_tree(tmp_path, {
        **BASE,
        "reidlib/data/attributes.py": "",
        "reidlib/data/datasets.py": "from reidlib.data import E\n",
    })
    (problem,) = cycle_problems(collect_imports(root), root)
    assert "reidlib.data -> reidlib.data.datasets" in problem and "reidlib.data.datasets -> reidlib.data" in problem


def test_synthetic_three_module_cycle_across_packages(tmp_path):
    root = write_tree(tmp_path, {
        **BASE,
        "reidlib/data/attributes.py": "import reidlib.models.heads\n",
        "reidlib/data/datasets.py": "",
        "reidlib/models/heads.py": "from ..losses import x\n",
        "reidlib/losses/__init__.py": "def f():\n    from reidlib.data.attributes import y\n",
    })
    (problem,) = cycle_problems(collect_imports(root), root)
    for edge in ("reidlib.data.attributes -> reidlib.models.heads", "reidlib.models.heads -> reidlib.losses",
                 "reidlib.losses -> reidlib.data.attributes"):
        assert edge in problem


def test_synthetic_layer_violation_names_file_line_and_module(tmp_path):
    root = write_tree(tmp_path, {
        **BASE,
        "reidlib/data/attributes.py": "",
        "reidlib/data/datasets.py": "",
        "reidlib/losses/triplet.py": "import torch\n\n\ndef f():\n    from ..models.heads import Head\n",
        "reidlib/nn.py": "import numpy\nfrom reidlib.losses import triplet\n",
    })
    problems = layer_violations(collect_imports(root), root)
    assert len(problems) == 2
    assert problems[0].startswith("reidlib/losses/triplet.py:5: reidlib.losses.triplet (layer 1, 'losses') imports "
                                  "reidlib.models.heads (layer 3, 'models') inside a function")
    assert problems[1].startswith("reidlib/nn.py:2: reidlib.nn (layer 0, 'nn') imports reidlib.losses.triplet")
    assert "data, nn, paths, registry -> losses -> saliency -> models" in problems[0]


def test_synthetic_book_import_and_bad_relative_import(tmp_path):
    root = write_tree(tmp_path, {**BASE, "reidlib/viz/__init__.py": "def f():\n    import book.esnet.esnet_demo\n"})
    (problem,) = forbidden_imports(collect_imports(root), root)
    assert problem.startswith("reidlib/viz/__init__.py:2: reidlib.viz imports book.esnet.esnet_demo")
    write_tree(tmp_path, {"reidlib/viz/__init__.py": "from .... import x\n"})
    with pytest.raises(ValueError, match="level 4 goes above the top package"):
        collect_imports(root)


def test_relative_imports_resolve_against_the_package():
    assert _resolve_base("reidlib.data.datasets", False, "errors", 1, "") == "reidlib.data.errors"
    assert _resolve_base("reidlib.data", True, None, 1, "") == "reidlib.data"  # `from . import x` in an __init__
    assert _resolve_base("reidlib.models.heads", False, "nn", 2, "") == "reidlib.nn"
    assert _resolve_base("reidlib.models", True, "nn", 2, "") == "reidlib.nn"
    assert _most_specific("reidlib.data.Record", {"reidlib", "reidlib.data"}) == "reidlib.data"
    assert _most_specific("torch.nn", {"reidlib"}) == "torch.nn"
