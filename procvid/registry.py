"""Name -> thing registries in timm's `register_model` style, and procvid's registries.

A module registers what it defines, where it defines it:

    from procvid.registry import DETECTORS

    @DETECTORS.register("uvd", "UVD: recursive subgoal discovery from the last frame backwards")
    @dataclass
    class UVDDetector(Detector): ...

and each registry names the modules that register into it. `names()` and `items()` read those modules'
`.register(NAME, DESCRIPTION, ...)` calls from their source (string literals or module-level string
constants) without importing them, so listing and CLI validation never import torch or Lightning;
`get(name)` imports only the module that registers `name`. Entries registered from elsewhere count too.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util

from procvid.errors import ProcvidError


class Registry:
    def __init__(self, kind: str, modules=()):
        self.kind = kind  # "detector", "graph method", ...: errors say "unknown <kind> 'name'"
        self.modules = list(modules)
        self._registered: dict[str, tuple[str, object]] = {}  # name -> (description, target)
        self._declared: dict[str, tuple[str, str]] | None = None  # name -> (description, module), from source

    def register(self, name: str, description: str, target=None):
        """Register `target` as `name`; without a target, a decorator registering what it decorates."""
        def add(obj):
            self._registered[name] = (description, obj)
            return obj

        return add if target is None else add(target)

    def items(self) -> list[tuple[str, str]]:
        """(name, one-line description) of every entry, in the order of `modules`."""
        if self._declared is None:
            self._declared = {name: (text, m) for m in self.modules for name, text in declarations(m)}
        entries = {name: text for name, (text, _) in {**self._declared, **self._registered}.items()}
        return list(entries.items())

    def names(self) -> list[str]:
        return [name for name, _ in self.items()]

    def check(self, name: str) -> str:
        """`name` if it is registered, else a one-line ProcvidError with the choices (fits argparse `type=`)."""
        if name not in self.names():
            raise ProcvidError(f"unknown {self.kind} {name!r}; choose from: {', '.join(self.names())}")
        return name

    def get(self, name: str):
        """The registered target, importing the module that registers it on first use."""
        if name not in self._registered:
            self.check(name)
            importlib.import_module(self._declared[name][1])
        if name not in self._registered:
            raise LookupError(f"{self._declared[name][1]} declares {self.kind} {name!r} but did not register it")
        return self._registered[name][1]


def declarations(module: str):
    """(name, description) of each `X.register(NAME, DESCRIPTION, ...)` call in a module's source."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        raise ModuleNotFoundError(f"No module named {module!r}", name=module)
    tree = ast.parse(spec.loader.get_source(module))
    constants = {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
                 and isinstance(node.value, ast.Constant) for target in node.targets if isinstance(target, ast.Name)}

    def text(arg):
        value = arg.value if isinstance(arg, ast.Constant) else constants.get(getattr(arg, "id", None))
        return value if isinstance(value, str) else None

    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and getattr(node.func, "attr", None) == "register" and len(node.args) >= 2]
    for node in sorted(calls, key=lambda node: (node.lineno, node.col_offset)):  # in source order
        name, description = text(node.args[0]), text(node.args[1])
        if name is not None and description is not None:
            yield name, description


def _modules(package: str, *names: str) -> list[str]:
    return [f"{package}.{name}" for name in names]


DETECTORS = Registry("detector", _modules("procvid.segment", "sbd", "uvd", "baselines"))
GRAPH_METHODS = Registry("graph method", _modules("procvid.graph", "precedence", "tgml", "count"))
DATASETS = Registry("dataset", _modules("procvid.data", "crosstask", "coin", "captaincook4d", "niv", "ego4d",
                                        "graph_script", "synthetic_reader", "assembly101"))
MODELS = Registry("model", _modules("procvid.train", "clip", "video", "sbd", "kig", "script", "forecast", "planner",
                                    "discover"))
ENCODERS = Registry("encoder", ["procvid.encoders"])
GENERATORS = Registry("generator", ["procvid.generate.kig"])
COMMANDS = Registry("command", _modules("procvid.commands", "demo", "run", "synth", "embed", "segment", "ground",
                                        "train", "graph", "mistakes", "forecast", "plan", "eval", "generate",
                                        "discover", "list"))
MISTAKES = Registry("mistake detector", _modules("procvid.mistakes", "precondition", "probability"))
DISCOVERERS = Registry("discovery method", _modules("procvid.discover", "cluster", "agglomerative", "steps"))
EVAL_COMMANDS = Registry("eval command", _modules("procvid.commands", "eval_encoder", "eval_segment"))

# what `procvid list` shows, in this order
LISTED = {"encoders": ENCODERS, "detectors": DETECTORS, "graph-methods": GRAPH_METHODS, "datasets": DATASETS,
          "models": MODELS, "generators": GENERATORS, "mistake-detectors": MISTAKES, "discovery-methods": DISCOVERERS,
          "commands": COMMANDS}
