"""Invariants of pruning.proto that the parsers, printers and validator rely on."""

from __future__ import annotations

from pruning_spec import _schema
from pruning_spec.v1 import pruning_pb2


def test_every_repeated_field_is_a_rule_list() -> None:
    # The hparam language, the text parser, the printers and the validator handle lists
    # of rules (`pattern:value`) only; a repeated scalar field would need code for it.
    descriptor = pruning_pb2.PruningSpec.DESCRIPTOR
    repeated = [field.name for field in descriptor.fields if field.is_repeated]
    assert repeated
    assert [name for name in repeated if not _schema.is_rule_list(_schema.FIELDS[name])] == []
