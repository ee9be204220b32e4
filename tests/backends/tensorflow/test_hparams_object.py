"""`get_pruning_hparams()`: the HParams object of r1.15 (docs/semantics.md §a, §e, §h)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from pruning_spec import NormalizedSpec, SpecError, parse_hparams
from pruning_spec.backends.tensorflow import Pruning, PruningHParams, get_pruning_hparams


def test_to_json_is_r115s_default_json(r115_default_json: str) -> None:
    assert get_pruning_hparams().to_json() == r115_default_json


def test_to_json_with_an_indent_is_json_dumps_of_the_values(r115_defaults: dict[str, Any]) -> None:
    assert get_pruning_hparams().to_json(indent=2) == json.dumps(r115_defaults, indent=2)


def test_values_equal_r115s_defaults_in_insertion_order(r115_defaults: dict[str, Any]) -> None:
    values = get_pruning_hparams().values()
    assert values == r115_defaults
    assert list(values) == list(r115_defaults)
    # The types are r1.15's too (HParams.parse types values by their defaults).
    assert {name: type(value) for name, value in values.items()} == {
        name: type(value) for name, value in r115_defaults.items()
    }


def test_values_returns_a_new_dict() -> None:
    hparams = get_pruning_hparams()
    hparams.values()["target_sparsity"] = 0.9
    assert hparams.values()["target_sparsity"] == 0.5


def test_each_call_returns_an_independent_object() -> None:
    first, second = get_pruning_hparams(), get_pruning_hparams()
    assert first is not second
    first.parse("target_sparsity=0.9")
    assert second.target_sparsity == 0.5


def test_parse_mutates_in_place_and_returns_self() -> None:
    hparams = get_pruning_hparams()
    returned = hparams.parse("target_sparsity=0.9,begin_pruning_step=100")
    assert returned is hparams
    assert isinstance(hparams, PruningHParams)
    assert hparams.target_sparsity == 0.9
    assert hparams.begin_pruning_step == 100
    # A second parse applies on top of the first.
    hparams.parse("end_pruning_step=200")
    assert (hparams.target_sparsity, hparams.begin_pruning_step) == (0.9, 100)
    assert hparams.end_pruning_step == 200
    assert hparams.spec == parse_hparams(
        "target_sparsity=0.9,begin_pruning_step=100,end_pruning_step=200"
    )


def test_parse_of_the_empty_flag_is_a_no_op(r115_defaults: dict[str, Any]) -> None:
    hparams = get_pruning_hparams().parse("")
    assert hparams.values() == r115_defaults
    assert hparams.spec == NormalizedSpec()


def test_the_cifar10_readme_flag(r115_defaults: dict[str, Any]) -> None:
    hparams = get_pruning_hparams().parse(
        "name=cifar10_pruning,begin_pruning_step=10000,end_pruning_step=100000,"
        "target_sparsity=0.9,sparsity_function_begin_step=10000,"
        "sparsity_function_end_step=100000"
    )
    expected = dict(
        r115_defaults,
        name="cifar10_pruning",
        begin_pruning_step=10000,
        end_pruning_step=100000,
        target_sparsity=0.9,
        sparsity_function_begin_step=10000,
        sparsity_function_end_step=100000,
    )
    assert hparams.values() == expected


def test_maps_read_back_in_r115s_entry_syntax_and_lists_are_replaced_wholesale() -> None:
    hparams = get_pruning_hparams().parse(
        "weight_sparsity_map=[conv1:0.8,conv.*/kernel:0.6],block_dims_map=[dense1:4x4]"
    )
    values = hparams.values()
    assert values["weight_sparsity_map"] == ["conv1:0.8", "conv.*/kernel:0.6"]
    assert values["block_dims_map"] == ["dense1:4x4"]
    hparams.parse("weight_sparsity_map=[fc:0.7]")
    assert hparams.values()["weight_sparsity_map"] == ["fc:0.7"]
    assert hparams.values()["block_dims_map"] == ["dense1:4x4"]


def test_every_scalar_hparam_reads_as_an_attribute() -> None:
    hparams = get_pruning_hparams().parse(
        "name=p2,threshold_decay=0.25,pruning_frequency=3,block_height=2,block_width=-1,"
        "block_pooling_function=MAX,initial_sparsity=0.1,sparsity_function_exponent=2"
    )
    values = hparams.values()
    for name, value in values.items():
        if not isinstance(value, list):
            assert getattr(hparams, name) == value, name
    assert hparams.block_pooling_function == "MAX"
    assert hparams.sparsity_function_exponent == 2.0
    assert isinstance(hparams.sparsity_function_exponent, float)
    assert hparams.use_tpu is False
    assert "target_sparsity" in hparams
    assert "target_sparsty" not in hparams
    with pytest.raises(AttributeError, match="target_sparsity"):
        _ = hparams.target_sparsty


def test_fields_added_since_r115_read_as_attributes_though_values_leaves_them_out() -> None:
    hparams = get_pruning_hparams()
    assert "pruning_scope" not in hparams.values()  # r1.15's parser must read what it writes
    assert hparams.pruning_scope == hparams.get("pruning_scope") == "PER_WEIGHT"
    assert hparams.min_weight_density == 0.0
    assert hparams.exclude == hparams.global_group == [""]
    hparams.parse("pruning_scope=GLOBAL,global_group=[^enc/:encoder@0.8]")
    assert hparams.values()["pruning_scope"] == hparams.pruning_scope == "GLOBAL"
    assert hparams.global_group == ["^enc/:encoder@0.8"]
    hparams.min_weight_density = 0.1
    assert hparams.spec.min_weight_density == 0.1


def test_str_parses_back() -> None:
    hparams = get_pruning_hparams().parse(
        'weight_sparsity_map=["a,b":0.5,conv1:0.8],threshold_decay=0.5,name=x'
    )
    assert parse_hparams(str(hparams)) == hparams.spec
    assert get_pruning_hparams().parse(str(hparams)).values() == hparams.values()


@pytest.mark.parametrize(
    ("flag", "code"),
    [
        ("target_sparsty=0.9", "unknown-name"),
        ("begin_pruning_step=1.5", "invalid-value"),
        ("target_sparsity=1.0", "out-of-range"),
        ("target_sparsity=0.6,,", None),
        ("target_sparsity=0.5,target_sparsity=0.6", None),
    ],
)
def test_a_bad_parse_raises_spec_error_and_changes_nothing(flag, code) -> None:
    hparams = get_pruning_hparams().parse("target_sparsity=0.7")
    with pytest.raises(SpecError) as raised:
        hparams.parse(flag)
    assert raised.value.errors
    if code is not None:
        assert code in [d.code for d in raised.value.errors]
    assert hparams.target_sparsity == 0.7
    assert hparams.spec == parse_hparams("target_sparsity=0.7")


def test_a_bad_parse_reports_every_problem() -> None:
    with pytest.raises(SpecError) as raised:
        get_pruning_hparams().parse("begin_pruning_step=1.5,target_sparsity=1.0")
    assert {d.field_path for d in raised.value.errors} == {
        "begin_pruning_step",
        "target_sparsity",
    }
    with pytest.raises(SpecError, match="did you mean 'target_sparsity'"):
        get_pruning_hparams().parse("target_sparsty=0.9")


# r1.15 honoured assignment; here it is validated with the whole spec, then seen everywhere.


def test_assignment_takes_effect_everywhere() -> None:
    hparams = get_pruning_hparams()
    hparams.target_sparsity = 0.9
    assert hparams.target_sparsity == 0.9
    assert hparams.values()["target_sparsity"] == 0.9
    assert "target_sparsity=0.9" in str(hparams)
    assert json.loads(hparams.to_json())["target_sparsity"] == 0.9
    assert hparams.spec.target_sparsity == 0.9
    with tf.Graph().as_default():
        step = tf.compat.v1.train.get_or_create_global_step()
        assert Pruning(hparams, global_step=step).spec.target_sparsity == 0.9


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("target_sparsity", 1.0, id="out-of-range"),
        pytest.param("target_sparsity", "0.9", id="string-for-float"),
        pytest.param("pruning_frequency", True, id="bool-for-int"),
        pytest.param("pruning_frequency", 10.0, id="float-for-int"),
        pytest.param("use_tpu", 1, id="int-for-bool"),
        pytest.param("name", 3, id="int-for-string"),
        pytest.param("target_sparsity", [0.5], id="list-for-scalar"),
        pytest.param("weight_sparsity_map", "conv1:0.8", id="scalar-for-list"),
        pytest.param("weight_sparsity_map", ["conv1"], id="entry-without-colon"),
        pytest.param("end_pruning_step", -7, id="cross-field-rule"),
    ],
)
def test_a_bad_assignment_raises_at_once_and_changes_nothing(name: str, value: object) -> None:
    hparams = get_pruning_hparams().parse("target_sparsity=0.7")
    before = hparams.spec
    with pytest.raises(SpecError) as raised:
        setattr(hparams, name, value)
    assert name in {d.field_path.split("[")[0].split(".")[0] for d in raised.value.errors}
    assert hparams.spec == before
    with pytest.raises(SpecError):
        hparams.set_hparam(name, value)
    assert hparams.spec == before


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        pytest.param("sparsity_function_exponent", 2, 2.0, id="int-for-float"),
        pytest.param("target_sparsity", np.float32(0.75), 0.75, id="numpy-float32"),
        pytest.param("pruning_frequency", np.int64(4), 4, id="numpy-int"),
        pytest.param("name", b"bytes_name", "bytes_name", id="bytes-for-string"),
        pytest.param("block_pooling_function", "MAX", "MAX", id="enum-spelling"),
    ],
)
def test_assignment_accepts_r115s_compatible_types(
    name: str, value: object, expected: object
) -> None:
    hparams = get_pruning_hparams()
    setattr(hparams, name, value)
    assert getattr(hparams, name) == expected
    assert type(getattr(hparams, name)) is type(expected)


def test_maps_read_as_r115s_strings_and_the_typed_rules_live_in_spec() -> None:
    hparams = get_pruning_hparams()
    assert hparams.weight_sparsity_map == [""]
    assert hparams.block_dims_map == [""]
    hparams.parse("weight_sparsity_map=[conv1:0.8]")
    assert hparams.weight_sparsity_map == ["conv1:0.8"]
    assert [name.split(":") for name in hparams.weight_sparsity_map] == [["conv1", "0.8"]]
    (rule,) = hparams.spec.weight_sparsity_map
    assert (rule.pattern, rule.sparsity) == ("conv1", 0.8)
    hparams.weight_sparsity_map = ["fc:0.5", "conv2:0.25"]
    assert hparams.weight_sparsity_map == ["fc:0.5", "conv2:0.25"]
    hparams.block_dims_map = ["dense1:4x-1"]
    assert hparams.spec.block_dims_map[0].block_width == -1


def test_override_from_dict_is_all_or_nothing() -> None:
    hparams = get_pruning_hparams()
    returned = hparams.override_from_dict({"target_sparsity": 0.8, "begin_pruning_step": 5})
    assert returned is hparams
    assert (hparams.target_sparsity, hparams.begin_pruning_step) == (0.8, 5)
    with pytest.raises(SpecError):
        hparams.override_from_dict({"target_sparsity": 0.6, "pruning_frequency": "x"})
    assert hparams.target_sparsity == 0.8


def test_unknown_names_raise_key_error_with_a_suggestion() -> None:
    hparams = get_pruning_hparams()
    with pytest.raises(KeyError, match="did you mean 'target_sparsity'"):
        hparams.set_hparam("target_sparsty", 0.9)
    with pytest.raises(KeyError):
        hparams.override_from_dict({"nope": 1})
    with pytest.raises(AttributeError, match=r"fields of pruning_spec\.v1\.PruningSpec"):
        hparams.nope = 1


def test_parse_json_applies_r115s_json(r115_defaults: dict[str, Any]) -> None:
    hparams = get_pruning_hparams().parse_json(
        '{"target_sparsity": 0.9, "weight_sparsity_map": ["conv1:0.8"], "name": "x"}'
    )
    assert hparams.values() == dict(
        r115_defaults, target_sparsity=0.9, weight_sparsity_map=["conv1:0.8"], name="x"
    )
    with pytest.raises(KeyError, match="did you mean 'target_sparsity'"):
        hparams.parse_json('{"target_sparsty": 0.9}')
    with pytest.raises(SpecError, match="expected a JSON object"):
        hparams.parse_json("[1, 2]")
    other = get_pruning_hparams().parse_json(hparams.to_json())
    assert other.spec == hparams.spec


def test_to_json_takes_r115s_arguments() -> None:
    hparams = get_pruning_hparams()
    assert hparams.to_json(separators=(";", "=")).startswith('{"name"="model_pruning";')
    assert list(json.loads(hparams.to_json(sort_keys=True))) == sorted(hparams.values())
    assert hparams.to_json(sort_keys=True).startswith('{"begin_pruning_step": 0')


def test_get_returns_the_value_or_the_default() -> None:
    hparams = get_pruning_hparams().parse("target_sparsity=0.8")
    assert hparams.get("target_sparsity") == 0.8
    assert hparams.get("target_sparsity", 0.1) == 0.8
    assert hparams.get("weight_sparsity_map", []) == [""]
    assert hparams.get("no_such_hparam") is None
    assert hparams.get("no_such_hparam", 7) == 7
    with pytest.raises(ValueError, match="does not fit"):
        hparams.get("target_sparsity", "high")
    with pytest.raises(ValueError, match="does not fit"):
        hparams.get("weight_sparsity_map", "conv1:0.8")


def test_the_set_of_hparams_is_the_schemas() -> None:
    hparams = get_pruning_hparams()
    with pytest.raises(ValueError, match=r"pruning\.proto"):
        hparams.add_hparam("learning_rate", 0.1)
    with pytest.raises(ValueError, match=r"pruning\.proto"):
        hparams.del_hparam("target_sparsity")
    with pytest.raises(AttributeError):
        del hparams.target_sparsity
    assert all(name in hparams for name in hparams.values())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("[" * 100_000 + "]" * 100_000, "nested more than 32 deep", id="deep"),
        pytest.param(
            '{"target_sparsity": 0.9, "target_sparsity": 0.1}',
            "appears more than once",
            id="duplicate-key",
        ),
        pytest.param('{"target_sparsity": 1.5}', "must be in", id="out-of-range"),
    ],
)
def test_parse_json_reads_as_the_loader_does_and_changes_nothing_on_error(
    text: str, message: str
) -> None:
    hparams = get_pruning_hparams().parse("target_sparsity=0.7")
    with pytest.raises(SpecError, match=message):
        hparams.parse_json(text)
    assert hparams.target_sparsity == 0.7
