"""The layers of docs/architecture.md, enforced: imports go one way and there are no cycles.

    cli, web  ->  api, train, metrics  ->  latent, render, perception  ->  checkpoints, data  ->  networks

``train`` and ``metrics`` do not import each other (a training run is handed its metrics by the caller);
``networks`` imports nothing of ours but itself; the small utility modules (errors, files, progress,
devices, distributed) import nothing of ours (distributed: the device choice) and may be imported by
every layer above ``networks``.
Every import counts, including those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "stylegan"

RANK = {
    "networks": 0,
    "checkpoints": 1, "data": 1,
    "latent": 2, "render": 2, "perception": 2,
    "api": 3, "train": 3, "metrics": 3,
    "cli": 4, "web": 4,
}
UTILITIES = {"errors", "files", "progress", "devices", "distributed"}   # each may import errors, nothing else of ours
UTILITY_IMPORTS = {"distributed": {"errors", "devices"}}      # ... except these (joining torchrun picks the device)
#: Imports between packages of the same rank that keep the graph acyclic (source -> targets).
SAME_RANK = {
    "latent": {"render", "perception"},
    "cli": {"web"},                 # `stylegan serve` starts the explorer; the explorer never calls the CLI
}


#: Back-edges and cycles that exist today and are being removed (issue #14); this set only shrinks.
KNOWN: set[tuple[str, str]] = set()


def _unit(module: str) -> str | None:
    """``stylegan.latent.mixing`` -> ``latent``; the package root and data folders -> None."""
    parts = module.split(".")
    if parts[0] != "stylegan" or len(parts) < 2:
        return None
    return parts[1]


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every ``stylegan.*`` module imported by ``path`` (absolute or relative), with its line."""
    rel = path.relative_to(SRC.parent).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    if rel.name == "__init__":
        package = list(rel.parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "stylegan"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "stylegan":
                continue
            if node.module is None or mod.count(".") == 0:  # "from . import x" / "from .. import cli"
                out += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, mod))
    return out


def _edges() -> list[tuple[str, str, str]]:
    edges = []
    for path in sorted(SRC.rglob("*.py")):
        src_unit = _unit(".".join(path.relative_to(SRC.parent).with_suffix("").parts))
        if src_unit is None or src_unit == "__init__":
            continue
        for line, module in _imports(path):
            dst = _unit(module)
            if dst is None or dst == src_unit or dst == "__version__":
                continue
            edges.append((src_unit, dst, f"{path.relative_to(SRC.parent)}:{line} imports {module}"))
    return edges


def _allowed(src: str, dst: str) -> bool:
    if src in UTILITIES:
        return dst in UTILITY_IMPORTS.get(src, {"errors"}) and src != dst
    if dst in UTILITIES:
        return src != "networks"
    if src not in RANK or dst not in RANK:
        return False
    return RANK[dst] < RANK[src] or dst in SAME_RANK.get(src, set())


def test_every_module_belongs_to_a_layer():
    units = {_unit(".".join(p.relative_to(SRC.parent).with_suffix("").parts)) for p in SRC.rglob("*.py")}
    unknown = sorted(u for u in units - {None, "__init__"} if u not in RANK and u not in UTILITIES)
    assert not unknown, f"modules outside the layering (add them to RANK in this test and docs/architecture.md): {unknown}"


def test_imports_go_one_way():
    edges = _edges()
    bad = [why for src, dst, why in edges if not _allowed(src, dst) and (src, dst) not in KNOWN]
    assert not bad, "imports against the layering:\n" + "\n".join(bad)
    gone = {k for k in KNOWN if "." not in k[0] and not any((s, d) == k for s, d, _ in edges)}
    assert not gone, f"remove these fixed back-edges from KNOWN: {sorted(gone)}"


def test_the_rule_catches_a_back_edge():
    assert not _allowed("networks", "checkpoints") and not _allowed("train", "metrics")
    assert not _allowed("metrics", "train") and not _allowed("networks", "errors")
    assert not _allowed("errors", "files") and not _allowed("files", "networks")
    assert not _allowed("checkpoints", "latent") and _allowed("files", "errors")
    assert _allowed("distributed", "devices") and not _allowed("devices", "distributed")
    assert _allowed("cli", "networks") and _allowed("latent", "render") and not _allowed("render", "latent")


@pytest.mark.parametrize("package", sorted(p.name for p in SRC.iterdir() if (p / "__init__.py").exists()))
def test_no_import_cycles_between_modules(package):
    """Modules inside one package form no import cycle, counting imports inside functions too (a cycle
    hidden in a function is still two modules that need each other)."""
    modules = {p: ".".join(p.relative_to(SRC.parent).with_suffix("").parts) for p in (SRC / package).rglob("*.py")}
    graph = {}
    for path, name in modules.items():
        tree = ast.parse(path.read_text())
        rel = name.split(".")
        pkg = rel[:-1] if path.name != "__init__.py" else rel[:-1]
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = pkg[:len(pkg) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                for a in node.names:
                    for cand in (f"{target}.{a.name}", target):
                        if cand in modules.values() or f"{cand}.__init__" in modules.values():
                            deps.add(cand)
                            break
        graph[name.removesuffix(".__init__")] = {d.removesuffix(".__init__") for d in deps}
    seen, stack = set(), []

    def visit(node):
        if node in stack:
            cycle = stack[stack.index(node):] + [node]
            if (not all(n == cycle[0] or n.startswith(cycle[0] + ".") for n in cycle)   # a package and its modules
                    and not any((a, b) in KNOWN or (b, a) in KNOWN for a, b in zip(cycle, cycle[1:]))):
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            return
        if node in seen:
            return
        seen.add(node)
        stack.append(node)
        for dep in graph.get(node, ()):
            if dep != node:
                visit(dep)
        stack.pop()

    for node in graph:
        visit(node)
