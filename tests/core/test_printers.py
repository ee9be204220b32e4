"""Printers: contrib's to_json, canonical text format and hparam strings."""

from __future__ import annotations

import json

from pruning_spec import NormalizedSpec, parse_hparams, parse_spec_text


def test_default_to_json_is_byte_identical_to_r115(r115_default_json: str) -> None:
    assert NormalizedSpec().to_json() == r115_default_json


def test_to_json_writes_maps_as_contrib_entry_strings() -> None:
    spec = parse_hparams("weight_sparsity_map=[conv1:0.8],block_dims_map=[dense1:4x-1]")
    values = json.loads(spec.to_json(indent=2))
    assert values["weight_sparsity_map"] == ["conv1:0.8"]
    assert values["block_dims_map"] == ["dense1:4x-1"]
    assert spec.values() == values


def test_default_hparams_string() -> None:
    assert NormalizedSpec().to_hparams() == (
        "name=model_pruning,begin_pruning_step=0,end_pruning_step=-1,weight_sparsity_map=[],"
        "block_dims_map=[],threshold_decay=0.0,pruning_frequency=10,nbins=256,block_height=1,"
        "block_width=1,block_pooling_function=AVG,initial_sparsity=0.0,target_sparsity=0.5,"
        "sparsity_function_begin_step=0,sparsity_function_end_step=100,"
        "sparsity_function_exponent=3.0,use_tpu=false"
    )
    assert NormalizedSpec().to_hparams(include_defaults=False) == ""


def test_textproto_is_canonical_and_reparses() -> None:
    spec = parse_hparams('name=n,weight_sparsity_map=["a\\"b\\\\.c\\nd":0.5]')
    text = spec.to_textproto()
    assert text.startswith("# proto-file: pruning_spec/v1/pruning.proto\n")
    assert '  pattern: "a\\"b\\\\.c\\nd"\n' in text
    assert parse_spec_text(text) == spec
    assert parse_spec_text(text).to_textproto() == text


def test_float_printing_is_shortest_exact() -> None:
    spec = parse_hparams("target_sparsity=0.30000000000000004,threshold_decay=1e-05")
    assert "target_sparsity=0.30000000000000004" in spec.to_hparams()
    assert "threshold_decay=1e-05" in spec.to_hparams()
    assert parse_hparams(spec.to_hparams()) == spec
