"""Imports point down, read from the source with ``ast`` (nothing is imported to check it).

Every ``import``/``from ... import`` of a ``spectran`` module counts, at module level, inside a
function or under ``if TYPE_CHECKING:`` (a type named in a signature is a dependency too):

- every module imports only its own layer and the layers below it (:data:`LAYERS`, the order
  docs/extending.md describes: settings and data at the bottom, the CLI at the top);
- the model code (item encoders, backbones, the model, the objectives) imports no training,
  evaluation, sweep or assembly module: only its own layer and the shared types below it;
- the evaluation imports no training module;
- the package has no import circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "spectran"
MODEL_CODE = ["spectran.encoders", "spectran.backbones", "spectran.model", "spectran.objectives"]
# what the model code may import: its own layer and the types and helpers under it
BELOW_MODEL = MODEL_CODE + ["spectran.errors", "spectran.registry", "spectran.spectral"]
# the layers, bottom first: a module may import its own layer and those below it. A module is in
# the layer of the longest prefix that names it; every ``*.cli`` module is in the CLI layer
LAYERS = [
    ("foundation", ["spectran", "spectran.errors", "spectran.io", "spectran.typed", "spectran.textable",
                    "spectran.runlock", "spectran.registry"]),
    ("settings", ["spectran.settings", "spectran.recipes", "spectran.text.settings"]),
    ("data", ["spectran.data"]),
    ("embeddings", ["spectran.text", "spectran.spectral"]),
    ("model", MODEL_CODE),
    ("run", ["spectran.distributed", "spectran.runfolder", "spectran.assemble", "spectran.train", "spectran.eval"]),
    ("api", ["spectran.api"]),
    ("tools", ["spectran.experiments", "spectran.tune", "spectran.diagnostics", "spectran.serve",
               "spectran.advise"]),
    ("cli", ["spectran.cli", "spectran.__main__"]),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def spectran_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of a spectran module in ``path``."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            # `from spectran import distributed` imports the module spectran.distributed
            found.extend((node.lineno, f"{node.module}.{a.name}") if f"{node.module}.{a.name}" in MODULES
                         else (node.lineno, node.module) for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return [(line, m) for line, m in found if m == "spectran" or m.startswith("spectran.")]


def _under(module: str, prefixes: list[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _offending(sources: list[str], allowed=None, forbidden=None) -> list[str]:
    bad = []
    for name, path in MODULES.items():
        if not _under(name, sources):
            continue
        for line, target in spectran_imports(path):
            if (allowed is not None and not _under(target, allowed)) or (forbidden and _under(target, forbidden)):
                bad.append(f"{path.relative_to(SRC)}:{line} imports {target}")
    return bad


def layer_of(module: str) -> int:
    """Index in :data:`LAYERS` of ``module`` (the longest prefix that names it; ``*.cli``: the CLI)."""
    if module.endswith(".cli"):
        return len(LAYERS) - 1
    best = max(((len(p), i) for i, (_, prefixes) in enumerate(LAYERS) for p in prefixes
                if module == p or (p != "spectran" and module.startswith(p + "."))), default=None)
    assert best is not None, f"{module} is in no layer of tests/test_layers.py (add it to LAYERS)"
    return best[1]


def test_the_checker_sees_imports_inside_functions_and_for_type_checking(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import spectran.api\n"
                     "def f():\n    from spectran.train.loop import Trainer\n")
    assert spectran_imports(probe) == [(3, "spectran.api"), (5, "spectran.train.loop")]


def test_layers_are_placed_as_documented():
    assert layer_of("spectran.settings") < layer_of("spectran.data.prepare") < layer_of("spectran.text.api")
    assert layer_of("spectran.text.settings") == layer_of("spectran.settings")
    assert layer_of("spectran.data.cli") == layer_of("spectran.cli") == len(LAYERS) - 1
    assert layer_of("spectran.encoders.spectran") < layer_of("spectran.train.loop") < layer_of("spectran.api")


def test_every_import_points_to_its_own_layer_or_below():
    bad = [f"{path.relative_to(SRC)}:{line} ({LAYERS[layer_of(name)][0]}) imports {target} "
           f"({LAYERS[layer_of(target)][0]})"
           for name, path in MODULES.items() for line, target in spectran_imports(path)
           if target in MODULES and layer_of(target) > layer_of(name)]
    assert bad == []


def test_model_code_imports_no_training_or_experiment_module():
    assert _offending(MODEL_CODE, forbidden=["spectran.train", "spectran.experiments"]) == []


def test_model_code_imports_only_its_own_layer_and_the_types_below_it():
    assert _offending(MODEL_CODE, allowed=BELOW_MODEL) == []


def test_evaluation_imports_no_training_module():
    assert _offending(["spectran.eval"], forbidden=["spectran.train"]) == []


def test_no_import_circle():
    graph = {name: {m for _, m in spectran_imports(path) if m in MODULES and m != name}
             for name, path in MODULES.items()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def walk(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                pytest.fail("import circle: " + " -> ".join(trail[trail.index(nxt):] + [node, nxt]))
            if nxt not in state:
                walk(nxt, trail + [node])
        state[node] = 2

    for name in graph:
        if name not in state:
            walk(name, [])
