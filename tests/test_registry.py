"""One Registry for every table of names a user types: register, look up with a hint, list, plug in."""

import sys

import pytest

from clipxai.errors import ClipxaiError, TermError
from clipxai.util.registry import Registry


def test_register_lookup_and_list_by_pattern():
    r = Registry("colour")

    @r.register("red")
    def red():
        return "red"

    r.register("rose")(lambda: "rose")
    assert r.lookup("red") is red
    assert r.names() == ["red", "rose"] and r.names("ro*") == ["rose"]


def test_an_unknown_name_is_one_sentence_with_the_closest_name():
    r = Registry("colour", {"red": 1, "green": 2}, error=TermError)
    with pytest.raises(TermError) as info:
        r.lookup("gren")
    message = str(info.value)
    assert "Unknown colour 'gren' (did you mean green?)" in message and "choose one of green, red" in message
    assert "did you mean" not in str(pytest.raises(TermError, r.lookup, "xyzzy").value)


def test_a_plugin_is_imported_on_first_lookup(tmp_path, monkeypatch):
    (tmp_path / "colour_plugin.py").write_text(
        "from tests_registry_target import r\nr['blue'] = 'from the plugin'\n")
    (tmp_path / "tests_registry_target.py").write_text(
        "from clipxai.util.registry import Registry\nr = Registry('colour', plugins={'blue': 'colour_plugin'})\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import tests_registry_target as target
    try:
        assert "blue" not in target.r and target.r.names() == ["blue"]
        assert target.r.lookup("blue") == "from the plugin"
    finally:
        sys.modules.pop("colour_plugin", None)
        sys.modules.pop("tests_registry_target", None)


def test_a_plugin_whose_extra_is_missing_names_it():
    r = Registry("parameterization", plugins={"ghost": "clipxai_no_such_extra.module"})
    with pytest.raises(ClipxaiError, match="The 'ghost' parameterization needs an optional extra that is not installed"):
        r.lookup("ghost")


def test_every_table_of_names_is_one_registry():
    from clipxai.ascent.config import PRESETS
    from clipxai.cli.commands import COMMANDS
    from clipxai.models.registry import FORMS, NAMED
    from clipxai.params.base import PARAMS
    from clipxai.terms.base import TERMS

    for table in (PRESETS, COMMANDS, FORMS, NAMED, PARAMS, TERMS):
        assert isinstance(table, Registry)
    assert {"default", "zer0int"} <= set(PRESETS.names())
    assert "cosine" in TERMS.names() and "pixels" in PARAMS.names() and "vqgan" in PARAMS.names()
