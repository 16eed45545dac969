"""The shape of the package: no import cycles (imports inside functions count too), and commands and
the pipeline only call stage functions."""

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parent.parent / "procvid"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> nx.DiGraph:
    """Module -> procvid modules it imports anywhere in its source (top level or inside functions)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                # `from pkg import sub` imports the module pkg.sub when there is one
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for target in targets:
                if target in modules and target != name:
                    graph.add_edge(name, target)
    return graph


def test_no_import_cycles():
    cycles = list(nx.simple_cycles(import_graph()))
    assert not cycles, f"import cycles: {cycles[:5]}"


def test_engines_know_no_stage():
    stage_modules = {"procvid.embedding", "procvid.segment.batch", "procvid.ground_files", "procvid.graph.build",
                     "procvid.generate.examples", "procvid.pipeline"}
    reached = nx.descendants(import_graph(), "procvid.engine")
    assert not reached & stage_modules


def test_commands_and_pipeline_hold_no_stage_loop():
    """Commands parse, call a stage and print; the pipeline only sequences stages: none of them opens
    files or loops over inputs with a progress bar of its own."""
    for path in [*sorted((PACKAGE / "commands").glob("*.py")), PACKAGE / "pipeline.py"]:
        text = path.read_text()
        for forbidden in ("tqdm(", "atomic_write(", ".write_text(", "load_features(", "get_detector(\n"):
            assert forbidden not in text, f"{path.name} does stage work ({forbidden})"
