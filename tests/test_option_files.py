"""One source for every default: an option file of ``conf/branch``, ``conf/fusion`` or
``conf/embedding`` and the constructor of the class it builds cannot disagree."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import pytest
import yaml

from fusionlab.config.schema import locate

CONF = Path(__file__).resolve().parents[1] / "conf"
GROUPS = ("branch", "fusion", "embedding")
FILES = [p for g in GROUPS for p in sorted((CONF / g).glob("*.yaml"))]


def _node(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def _is_preset(node: dict) -> bool:
    """A hand-written preset: a variant of another option (``defaults:``) or a stack of stages; its
    values are choices of its own, not the class's defaults."""
    return "defaults" in node or "stages" in node


def _parameters(cls: type) -> dict[str, inspect.Parameter]:
    injected = set(getattr(cls, "injected", ()))
    return {n: p for n, p in inspect.signature(cls.__init__).parameters.items()
            if n != "self" and n not in injected and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _plain(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


@pytest.mark.parametrize("path", [p for p in FILES if not _is_preset(_node(p))],
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_an_option_file_states_exactly_its_class_defaults(path: Path) -> None:
    """Every constructor argument appears with the constructor's default, and nothing else: a changed
    default on either side fails here (``TransformerBranch(patch_size=1)`` against ``patch_size: 2``)."""
    node = _node(path)
    cls = locate(node["_target_"])
    params = _parameters(cls)
    stated = {k: v for k, v in node.items() if not k.startswith("_")}
    assert sorted(stated) == sorted(params), f"{path.name}: keys {sorted(stated)} != arguments {sorted(params)}"
    for key, value in stated.items():
        default = params[key].default
        if default is inspect.Parameter.empty:
            assert value == "???", f"{path.name}: {key} has no default in {cls.__name__}; state it as ???"
            continue
        assert value == _plain(default), (f"{path.name}: {key}: {value!r} but {cls.__name__}({key}={default!r}); "
                                          "run python scripts/gen_option_files.py")


@pytest.mark.parametrize("path", [p for p in FILES if "defaults" in _node(p)], ids=lambda p: p.stem)
def test_a_variant_states_only_what_differs_from_its_base(path: Path) -> None:
    node = _node(path)
    bases = [d for d in node["defaults"] if d != "_self_"]
    base = {}
    for b in bases:
        base |= _node(path.parent / f"{b}.yaml")
    for key, value in node.items():
        if key != "defaults":
            assert base.get(key) != value, f"{path.name}: {key}: {value!r} restates its base's value"


def _generator():
    spec = importlib.util.spec_from_file_location("gen_option_files", CONF.parent / "scripts" / "gen_option_files.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_option_files_are_what_their_classes_generate() -> None:
    """The files marked "generated from <class>" equal the generator's output: the header is the
    class's docstring summary, each key's comment its ``Args:`` entry."""
    assert _generator().stale() == {}
    generated = [p for p in FILES if "# generated from " in p.read_text()]
    assert {f"{p.parent.name}/{p.stem}" for p in generated} >= {
        "branch/cnn", "branch/rnn", "branch/transformer", "fusion/film", "fusion/gated", "embedding/learned"}


def test_a_changed_default_makes_the_generated_file_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fusionlab.branches import TransformerBranch

    gen = _generator()
    for group in GROUPS:
        (tmp_path / group).mkdir()
    (tmp_path / "branch" / "transformer.yaml").write_text((CONF / "branch" / "transformer.yaml").read_text())
    assert gen.stale(tmp_path) == {}
    names = [n for n, p in inspect.signature(TransformerBranch.__init__).parameters.items()
             if p.default is not inspect.Parameter.empty]
    defaults = list(TransformerBranch.__init__.__defaults__)
    defaults[names.index("patch_size")] = 1  # the constructor's default changes, the file does not
    monkeypatch.setattr(TransformerBranch.__init__, "__defaults__", tuple(defaults))
    stale = gen.stale(tmp_path)
    assert list(stale) == [tmp_path / "branch" / "transformer.yaml"]
    assert "patch_size: 1 " in stale[tmp_path / "branch" / "transformer.yaml"]
