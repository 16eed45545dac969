"""Writing graph scripts: node-link JSON (lossless), GraphML, Graphviz DOT text and a readable PNG."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from procvid.errors import ProcvidError
from procvid.graph.script import END, START
from procvid.outputs import atomic_save, atomic_write, ensure_dir

FORMATS = ("json", "graphml", "dot", "png")


def to_node_link(graph) -> dict:
    import networkx as nx

    return nx.node_link_data(graph, edges="edges")


def write_json(graph, path) -> Path:
    return atomic_write(path, json.dumps(to_node_link(graph), indent=1) + "\n")


def read_json(path):
    """A graph script written by write_json (or any node-link file with edges="edges"), checked: every
    edge joins listed nodes, START and END are there and the graph has no cycle."""
    import networkx as nx

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ProcvidError(f"{path}: cannot read the graph file ({e.strerror or e})") from None
    try:
        data = json.loads(text)
        listed = {n["id"] for n in data["nodes"]}
        unknown = [e[k] for e in data["edges"] for k in ("source", "target") if e[k] not in listed]
        graph = nx.node_link_graph(data, edges="edges")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ProcvidError(f"{path}: not a node-link graph file ({e})") from None
    if unknown:
        raise ProcvidError(f"{path}: an edge names step {unknown[0]!r}, which is not among the graph's nodes")
    missing = [n for n in (START, END) if n not in graph]
    if missing:
        raise ProcvidError(f"{path}: not a graph script (no {missing[0]} node)")
    if not nx.is_directed_acyclic_graph(graph):
        cycle = " -> ".join(str(u) for u, _ in nx.find_cycle(graph))
        raise ProcvidError(f"{path}: a graph script has no cycles, but this one has {cycle}")
    return graph


def write_graphml(graph, path) -> Path:
    """GraphML holds only scalar attributes: list-valued graph attributes are stored as JSON strings."""
    import networkx as nx

    flat = graph.copy()
    flat.graph = {k: v if isinstance(v, (str, int, float, bool)) else json.dumps(v)
                  for k, v in graph.graph.items()}
    return atomic_save(path, lambda f: nx.write_graphml(flat, f))


def _label(node, text: str | None, width: int = 24, lines: int = 4) -> str:
    """Node caption "id. text" (the text alone where it is the id), wrapped to `lines` lines of `width`."""
    if node in (START, END):
        return str(node)
    caption = text if text and text == str(node) else f"{node}. {text or ''}"
    return "\n".join(textwrap.wrap(caption, width, max_lines=lines, placeholder=" ..."))


def _quote(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph, name: str = "task") -> str:
    """Graphviz DOT text, left to right; optional steps dashed; edge labels are the weights."""
    optional = set(graph.graph.get("optional", []))
    lines = [f"digraph {_quote(name)} {{", "  rankdir=LR;",
             '  node [shape=box, style="rounded", fontname="Helvetica"];']
    for node, text in graph.nodes(data="text"):
        attrs = [f"label={_quote(_label(node, text))}"]
        if node in (START, END):
            attrs.append("shape=ellipse")
        elif node in optional:
            attrs.append('style="rounded,dashed"')
        lines.append(f"  {_quote(node)} [{', '.join(attrs)}];")
    for u, v, weight in graph.edges(data="weight"):
        label = f" [label={_quote(f'{weight:.2f}')}]" if weight is not None and weight < 1 else ""
        lines.append(f"  {_quote(u)} -> {_quote(v)}{label};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_dot(graph, path, name: str = "task") -> Path:
    atomic_write(path, to_dot(graph, name))
    return Path(path)


def layered_positions(graph) -> dict:
    """x = topological generation, y = rank within it (ordered by the mean rank of predecessors)."""
    import networkx as nx

    rank: dict = {}
    positions = {}
    for x, layer in enumerate(nx.topological_generations(graph)):
        def key(node):
            preds = [rank[p] for p in graph.predecessors(node) if p in rank]
            return (sum(preds) / len(preds) if preds else 0.0, str(node))

        layer = sorted(layer, key=key)
        for i, node in enumerate(layer):
            rank[node] = i - (len(layer) - 1) / 2
            positions[node] = (float(x), -rank[node])
    return positions


def write_png(graph, path, title: str | None = None) -> Path:
    """A left-to-right drawing with wrapped step texts; optional steps dashed, darker edges = higher weight."""
    from matplotlib.figure import Figure

    positions = layered_positions(graph)
    n_layers = max(x for x, _ in positions.values()) + 1
    tallest = max(sum(1 for x, _ in positions.values() if x == layer) for layer in range(int(n_layers)))
    fig = Figure(figsize=(max(6.0, 2.1 * n_layers), max(3.0, 1.1 * tallest + 1)))
    ax = fig.subplots()
    ax.set_axis_off()
    optional = set(graph.graph.get("optional", []))
    boxes = {}
    for node, (x, y) in positions.items():
        special = node in (START, END)
        style = dict(boxstyle="round,pad=0.4", linewidth=1.2,
                     facecolor="#dde8f7" if special else ("#fdf3dc" if node in optional else "white"),
                     edgecolor="#33558b", linestyle="--" if node in optional else "-")
        boxes[node] = ax.text(x, y, _label(node, graph.nodes[node].get("text")), ha="center", va="center",
                              fontsize=8.5, bbox=style, zorder=3)
    for u, v, weight in graph.edges(data="weight"):
        shade = 0.35 + 0.65 * min(max(weight if weight is not None else 1.0, 0.0), 1.0)
        ax.annotate("", xy=positions[v], xytext=positions[u], zorder=2,
                    arrowprops=dict(arrowstyle="-|>", color=(0.1, 0.15, 0.3, shade), lw=1.2, shrinkA=2, shrinkB=2,
                                    patchA=boxes[u].get_bbox_patch(), patchB=boxes[v].get_bbox_patch(),
                                    connectionstyle="arc3,rad=0.05"))
    xs = [x for x, _ in positions.values()]
    ys = [y for _, y in positions.values()]
    ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
    ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
    if title:
        ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return atomic_save(path, lambda f: fig.savefig(f, dpi=120, format="png"))


def write_all(graph, out_dir, stem: str, title: str | None = None, formats=FORMATS) -> list[Path]:
    """The graph as <stem>.json/.graphml/.dot/.png in out_dir."""
    out_dir = ensure_dir(out_dir)
    writers = {
        "json": lambda p: write_json(graph, p),
        "graphml": lambda p: write_graphml(graph, p),
        "dot": lambda p: write_dot(graph, p, stem),
        "png": lambda p: write_png(graph, p, title),
    }
    return [writers[fmt](out_dir / f"{stem}.{fmt}") for fmt in formats]
