"""The import graph of `voiceapp/`: no cycles, and no lower layer importing a higher one.

An `ast` scan of every module (module-level and function-level imports alike; `if TYPE_CHECKING:` imports
count too). Run `python tests/test_architecture.py` to print the graph's findings.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "voiceapp"

# The layer order, written once: a module may import its own layer and the layers before it, never a later one.
# A name is a module or a package prefix; the longest prefix wins. Every `*.cli` module and `ui` is the top.
LAYERS: list[tuple[str, ...]] = [
    ("voiceapp", "voiceapp.errors", "voiceapp.progress", "voiceapp.workspace", "voiceapp.manifests",
     "voiceapp.devices", "voiceapp.services"),
    ("voiceapp.audio", "voiceapp.assets", "voiceapp.plots"),
    ("voiceapp.nets",),
    ("voiceapp.features", "voiceapp.index", "voiceapp.voices", "voiceapp.separate"),
    ("voiceapp.train", "voiceapp.infer", "voiceapp.metrics"),
    ("voiceapp.tts", "voiceapp.dataset", "voiceapp.demo", "voiceapp.live", "voiceapp.cover"),
    ("voiceapp.cli", "voiceapp.__main__", "voiceapp.ui"),
]
TOP = len(LAYERS) - 1


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The voiceapp modules that `path` imports (a `from pkg import sub` names the submodule)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "voiceapp"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] != "voiceapp":
                continue
            subs = {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules}
            found |= subs or {base}
            if len(subs) < len(node.names):
                found.add(base)
    return {m for m in found if m in modules and m != name}


def layer_of(module: str) -> int:
    if module.rpartition(".")[2] == "cli" or module.startswith("voiceapp.ui"):
        return TOP
    best, layer = -1, None
    for i, names in enumerate(LAYERS):
        for prefix in names:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, layer = len(prefix), i
    if layer is None:
        raise AssertionError(f"{module} is in no layer; add it to LAYERS in tests/test_architecture.py")
    return layer


def graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: imports_of(path, modules) for name, path in modules.items()}


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} (layer {layer_of(a)}) -> {b} (layer {layer_of(b)})"
                  for a, targets in edges.items() for b in targets if layer_of(b) > layer_of(a))


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(out)


def test_every_module_has_a_layer():
    for name in all_modules():
        layer_of(name)


def test_no_lower_layer_imports_a_higher_one():
    assert upward_imports(graph()) == []


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_networks_import_no_stage():
    edges = graph()
    assert not [(a, b) for a, targets in edges.items() if a.startswith("voiceapp.nets") for b in targets
                if not b.startswith(("voiceapp.nets", "voiceapp.errors"))]


if __name__ == "__main__":
    edges = graph()
    print(f"{len(edges)} modules, {sum(map(len, edges.values()))} import edges")
    print("cycles:", *(" <-> ".join(c) for c in cycles(edges)) or ["none"], sep="\n  ")
    print("upward imports:", *upward_imports(edges) or ["none"], sep="\n  ")
