"""procvid.registry: lazy, self-registering name -> thing registries, `procvid list`, and CLI validation."""

import importlib
import subprocess
import sys
import textwrap

import pytest

from procvid.cli import main
from procvid.errors import ProcvidError
from procvid.registry import (COMMANDS, DATASETS, DETECTORS, ENCODERS, EVAL_COMMANDS, GENERATORS, GRAPH_METHODS,
                              LISTED, MODELS)


@pytest.fixture
def widgets(tmp_path, monkeypatch):
    """A registry filled by two made-up modules, none of them imported yet."""
    files = {
        "fakereg_holder": """
            from procvid.registry import Registry
            WIDGETS = Registry("widget", ["fakereg_round", "fakereg_square"])
        """,
        "fakereg_round": """
            from fakereg_holder import WIDGETS
            TEXT = "a round widget"

            @WIDGETS.register("round", TEXT)
            class Round:
                pass
        """,
        "fakereg_square": """
            from fakereg_holder import WIDGETS

            def make_square():
                return "square"

            WIDGETS.register("square", "a square " "widget", make_square)
        """,
    }
    for name, source in files.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("fakereg_holder").WIDGETS
    for name in files:
        sys.modules.pop(name, None)


def test_names_come_from_source_and_get_imports_only_the_registering_module(widgets):
    assert widgets.items() == [("round", "a round widget"), ("square", "a square widget")]
    assert widgets.names() == ["round", "square"]
    assert "fakereg_round" not in sys.modules and "fakereg_square" not in sys.modules  # listing imports nothing
    assert widgets.get("square")() == "square"
    assert "fakereg_square" in sys.modules and "fakereg_round" not in sys.modules
    assert widgets.get("round").__name__ == "Round"


def test_unknown_name_is_one_line_naming_kind_name_and_choices(widgets):
    with pytest.raises(ProcvidError) as e:
        widgets.get("hexagon")
    assert str(e.value) == "unknown widget 'hexagon'; choose from: round, square"
    assert widgets.check("round") == "round"
    assert "fakereg_round" not in sys.modules


def test_entries_registered_elsewhere_count(widgets):
    widgets.register("oval", "added at run time", "OVAL")
    assert widgets.names() == ["round", "square", "oval"]
    assert widgets.get("oval") == "OVAL"


@pytest.mark.parametrize("registry", [
    DETECTORS, GRAPH_METHODS, DATASETS, COMMANDS, EVAL_COMMANDS,
    *(pytest.param(r, marks=pytest.mark.slow) for r in (ENCODERS, MODELS, GENERATORS)),  # torch, Lightning
], ids=lambda r: r.kind)
def test_every_declared_entry_is_registered_by_its_module(registry):
    """What names() reads from the source is what importing the modules registers."""
    assert registry.names()
    for name in registry.names():
        assert registry.get(name) is not None


def test_list_shows_every_registry_fast_and_without_torch():
    code = "import sys; from procvid.cli import main; main(['list']); assert 'torch' not in sys.modules"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    for what, registry in LISTED.items():
        assert f"{what}:" in out
        for name, description in registry.items():
            assert f"  {name}" in out and description in out
    for name in [*DETECTORS.names(), *GRAPH_METHODS.names(), *DATASETS.names(), *MODELS.names()]:
        assert name in out


def test_list_one_registry(capsys):
    assert main(["list", "detectors"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == DETECTORS.names()


@pytest.mark.parametrize("argv, message", [
    (["segment", "x", "--method", "nope"], "unknown detector 'nope'; choose from: sbd, uvd"),
    (["graph", "build", "--data", "x", "--out", "y", "--method", "nope"], "unknown graph method 'nope'"),
    (["train", "nope"], "unknown model 'nope'; choose from: clip"),
])
def test_unknown_registry_name_on_the_command_line_is_one_line_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err
