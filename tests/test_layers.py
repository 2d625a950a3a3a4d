"""Imports point down, read from the source with ``ast`` (nothing is imported to check it).

Every ``import``/``from ... import`` of a ``spectran`` module counts, at module level or inside a
function (only ``if TYPE_CHECKING:`` blocks, which never run, are left out):

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


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def spectran_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of a spectran module in ``path``."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if _is_type_checking(node):
            return
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


def test_the_checker_sees_imports_inside_functions(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import spectran.api\n"
                     "def f():\n    from spectran.train.loop import Trainer\n")
    assert spectran_imports(probe) == [(5, "spectran.train.loop")]


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
