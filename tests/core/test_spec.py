"""NormalizedSpec: effective values, immutability, identity and the backend helpers."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest

import pruning_spec
from pruning_spec import (
    BlockDimsRule,
    NormalizedSpec,
    PruningSpec,
    SpecError,
    WeightSparsityRule,
    _schema,
    parse_hparams,
)
from pruning_spec._schema import Kind
from pruning_spec.v1 import pruning_pb2


def test_every_field_has_its_effective_value() -> None:
    spec = NormalizedSpec(PruningSpec(target_sparsity=0.9))
    assert spec.target_sparsity == 0.9
    assert spec.name == "model_pruning"
    assert spec.end_pruning_step == -1
    assert spec.block_pooling_function == "AVG"
    assert spec.weight_sparsity_map == ()
    assert spec.pruning_scope == "PER_WEIGHT"
    assert spec.min_weight_density == 0.0
    full = spec.proto
    singular = [f for f in full.DESCRIPTOR.fields if not f.is_repeated]
    # r1.15's fields are always set; those added since only off their default, so that a
    # spec which does not use them keeps its canonical bytes (and fingerprint).
    assert [f.name for f in singular if not full.HasField(f.name)] == [
        "pruning_scope",
        "min_weight_density",
    ]


def test_a_field_added_since_r115_set_to_its_default_is_the_same_spec() -> None:
    plain = NormalizedSpec()
    explicit = NormalizedSpec(PruningSpec(pruning_scope=PruningSpec.PER_WEIGHT))
    assert explicit == plain and explicit.fingerprint == plain.fingerprint
    assert NormalizedSpec(PruningSpec(min_weight_density=-0.0)) != plain
    assert NormalizedSpec(PruningSpec(pruning_scope=PruningSpec.GLOBAL)) != plain


def test_invalid_message_is_rejected_with_every_problem() -> None:
    with pytest.raises(SpecError) as caught:
        NormalizedSpec(PruningSpec(target_sparsity=1.0, begin_pruning_step=-1))
    assert len(caught.value.errors) == 2


def test_spec_is_immutable() -> None:
    spec = NormalizedSpec()
    with pytest.raises(AttributeError, match="immutable"):
        spec.target_sparsity = 0.1  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        spec.warnings = ()  # type: ignore[misc]
    rules = NormalizedSpec(
        PruningSpec(weight_sparsity_map=[WeightSparsityRule(pattern="a", sparsity=0.5)])
    )
    rules.weight_sparsity_map[0].sparsity = 0.9
    rules.proto.target_sparsity = 0.1
    assert rules.weight_sparsity_map[0].sparsity == 0.5
    assert rules.target_sparsity == 0.5


def test_unknown_attribute_suggests_the_field() -> None:
    with pytest.raises(AttributeError, match="did you mean 'target_sparsity'"):
        _ = NormalizedSpec().target_sparsty  # type: ignore[attr-defined]


def test_equality_hash_and_fingerprint_ignore_how_defaults_were_given() -> None:
    implicit = NormalizedSpec(PruningSpec())
    explicit = NormalizedSpec(PruningSpec(target_sparsity=0.5, name="model_pruning"))
    other = NormalizedSpec(PruningSpec(target_sparsity=0.6))
    assert implicit == explicit and hash(implicit) == hash(explicit)
    assert implicit.fingerprint == explicit.fingerprint
    assert implicit != other and implicit.fingerprint != other.fingerprint
    assert len({implicit, explicit, other}) == 2


def test_fingerprint_is_stable_across_releases() -> None:
    # A changed fingerprint for the same spec breaks users' caches: change it only on purpose.
    assert (
        NormalizedSpec().fingerprint
        == "bb7aa077c5c959c5b41e2971c5cc5d22361a5e1637d218758e4d268f04d8ac56"
    )


def test_rule_for_uses_re_search_on_the_weight_name() -> None:
    spec = parse_hparams("weight_sparsity_map=[conv1:0.8,dense/kernel$:0.3]")
    assert spec.rule_for("model/conv1/weights").sparsity == 0.8  # type: ignore[union-attr]
    assert spec.rule_for("dense/kernel/masked") is None
    assert spec.target_sparsity_for("dense/kernel") == 0.3
    assert spec.target_sparsity_for("other") == 0.5


def test_two_matching_rules_name_the_weight_and_both_rules() -> None:
    spec = parse_hparams("weight_sparsity_map=[conv:0.8,kernel:0.6]")
    with pytest.raises(SpecError, match=r"'conv1/kernel' matches both weight_sparsity_map\[0\]"):
        spec.rule_for("conv1/kernel")


def test_per_weight_schedule_uses_the_rule_as_its_target() -> None:
    spec = parse_hparams("initial_sparsity=0.1,target_sparsity=0.5,weight_sparsity_map=[conv1:0.8]")
    # r1.15 scaled the curve by m/target, giving 0.16 before the schedule starts.
    assert spec.sparsity_at(0, "conv1/w") == pytest.approx(0.1)
    assert spec.sparsity_at(100, "conv1/w") == pytest.approx(0.8)
    assert spec.sparsity_at(100, "conv2/w") == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((8, 6), (4, 6)),  # -1 resolves against this weight's own width
        ((8, 10), (4, 10)),  # ... and again for the next weight (r1.15 leaked the first)
        ((1, 1, 8, 12), (4, 12)),  # 1x1 conv squeezes to rank 2
        ((3, 3, 8, 12), (1, 1)),  # rank 4: element-wise
        ((12,), (1, 1)),  # rank 1: element-wise
    ],
)
def test_block_dims_for(shape: tuple[int, ...], expected: tuple[int, int]) -> None:
    spec = NormalizedSpec(
        PruningSpec(block_dims_map=[BlockDimsRule(pattern="dense", block_height=4, block_width=-1)])
    )
    assert spec.block_dims_for("dense/kernel", shape) == expected


def test_global_block_dims_apply_without_a_rule() -> None:
    spec = parse_hparams("block_height=-1,block_width=2")
    assert spec.block_dims_for("any", (6, 8)) == (6, 2)


def test_repr_shows_the_non_default_fields() -> None:
    assert repr(parse_hparams("target_sparsity=0.8")) == "NormalizedSpec('target_sparsity=0.8')"


def test_warnings_are_kept_on_the_spec() -> None:
    spec = parse_hparams("nbins=100")
    assert [w.code for w in spec.warnings] == ["deprecated-field"]


def test_rules_are_matched_by_re2_wherever_a_spec_meets_a_name() -> None:
    # Every consumer (lints, explain, verify, the backends) asks rule_index; RE2's ASCII
    # \w tells its answer from Python's, and a backtracking engine would not answer at all.
    spec = parse_hparams('weight_sparsity_map=["^\\\\w+$":0.5,"(a|a){0,100}b":0.7]')
    assert spec.rule_for("dense") is not None
    assert spec.rule_for("dénse") is None
    assert spec.rule_for("a" * 10_000 + "!") is None
    assert spec.target_sparsity_for("x/" + "a" * 30 + "b") == 0.7


def _field_kind_type(field: _schema.Field) -> object:
    """The return type NormalizedSpec's property must declare for a PruningSpec field."""
    if field.is_repeated:
        assert field.message_type is not None
        return tuple[getattr(pruning_pb2, field.message_type.name), ...]  # type: ignore[misc]
    return {
        Kind.INT: int,
        Kind.FLOAT: float,
        Kind.BOOL: bool,
        Kind.STRING: str,
        Kind.ENUM: str,  # the hparam spelling
    }[_schema.kind_of(field)]


def test_every_field_is_a_typed_property() -> None:
    # A field added to pruning.proto without its property fails here.
    properties = {
        name: value
        for name, value in vars(NormalizedSpec).items()
        if isinstance(value, property) and name not in {"warnings", "proto", "fingerprint"}
    }
    assert set(properties) == set(_schema.FIELDS)
    for name, field in _schema.FIELDS.items():
        getter = properties[name].fget
        assert getter is not None and getter.__doc__, name
        assert typing.get_type_hints(getter)["return"] == _field_kind_type(field), name


def test_properties_return_what_the_schema_says() -> None:
    # Every field set away from its default; enums read as their hparam spelling.
    spec = parse_hparams(
        "name=scope,begin_pruning_step=3,end_pruning_step=90,weight_sparsity_map=[a:0.25],"
        "block_dims_map=[b:2x-1],threshold_decay=0.5,pruning_frequency=4,nbins=7,"
        "block_height=2,block_width=-1,block_pooling_function=MAX,initial_sparsity=0.125,"
        "target_sparsity=0.75,sparsity_function_begin_step=5,sparsity_function_end_step=80,"
        "sparsity_function_exponent=2.5,use_tpu=true,exclude=[c],pruning_scope=GLOBAL,"
        "global_group=[d:decoder],min_weight_density=0.125"
    )
    proto = spec.proto
    for name, field in _schema.FIELDS.items():
        value = getattr(spec, name)
        stored = getattr(proto, name)
        if field.is_repeated:
            assert type(value) is tuple and list(value) == list(stored), name
            assert all(a is not b for a, b in zip(value, stored, strict=True)), name
        elif _schema.kind_of(field) is Kind.ENUM:
            default = _schema.enum_spelling(field, field.default_value)
            assert value == _schema.enum_spelling(field, stored) != default, name
        else:
            assert type(value) is type(stored) and value == stored, name
            assert value != field.default_value, name


def test_mypy_catches_a_misspelt_field(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api", reason="mypy is not installed")
    snippet = tmp_path / "snippet.py"
    snippet.write_text(
        "from pruning_spec import NormalizedSpec\n"
        "spec = NormalizedSpec()\n"
        "sparsity: float = spec.target_sparsity\n"
        "steps: int = spec.target_sparsity\n"
        "typo = spec.target_sparsty\n"
    )
    # The package's own directory, for the editable install is an import hook mypy ignores.
    root = Path(pruning_spec.__file__).resolve().parent.parent
    config = tmp_path / "mypy.ini"
    config.write_text(f"[mypy]\nmypy_path = {root}\nstrict = true\n")
    out, err, status = api.run(
        [
            "--config-file",
            str(config),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-error-summary",
            "--hide-error-context",
            str(snippet),
        ]
    )
    assert status == 1, out + err
    errors = sorted(line.split(": error: ")[0] for line in out.splitlines() if ": error: " in line)
    assert errors == [f"{snippet}:4", f"{snippet}:5"], out
    assert '"NormalizedSpec" has no attribute "target_sparsty"' in out


def test_a_rule_of_sparsity_zero_keeps_its_weights_dense_for_the_whole_run() -> None:
    spec = parse_hparams(
        "initial_sparsity=0.6,target_sparsity=0.8,sparsity_function_end_step=100,"
        "weight_sparsity_map=[logits:0,conv:0.9]"
    )
    assert [spec.sparsity_at(step, "logits/kernel") for step in (0, 50, 100)] == [0.0] * 3
    assert spec.sparsity_at(0, "conv1/kernel") == pytest.approx(0.6)
    assert spec.sparsity_at(0, "dense/kernel") == pytest.approx(0.6)
    assert spec.keeps_dense("logits/kernel") and not spec.keeps_dense("dense/kernel")
    assert parse_hparams("target_sparsity=0").keeps_dense("any")
    assert not parse_hparams("initial_sparsity=0.5,target_sparsity=0").keeps_dense("any")


# exclude: weights left dense for the whole run, whatever the maps say.


def test_exclusions_keep_weights_dense_and_win_over_the_maps() -> None:
    spec = parse_hparams(
        "initial_sparsity=0.5,target_sparsity=0.8,weight_sparsity_map=[logits:0.9],"
        'exclude=[logits,"emb:0"]'
    )
    assert [rule.pattern for rule in spec.exclude] == ["logits", "emb:0"]
    assert spec.is_excluded("model/logits/kernel") and spec.is_excluded("emb:0/embeddings")
    assert spec.keeps_dense("model/logits/kernel")  # the map's 0.9 does not apply
    assert spec.sparsity_at(100, "model/logits/kernel") == 0.0
    assert not spec.keeps_dense("dense/kernel")
    assert spec.sparsity_at(100, "dense/kernel") == pytest.approx(0.8)


def test_exclusions_print_and_parse_back_in_every_form() -> None:
    spec = parse_hparams('exclude=[logits,"a,b:c",x:y]')
    assert spec.to_hparams(include_defaults=False) == 'exclude=[logits,"a,b:c",x:y]'
    assert parse_hparams(spec.to_hparams()) == spec
    assert pruning_spec.parse_spec_text(spec.to_textproto()) == spec
    assert json.loads(spec.to_json())["exclude"] == ["logits", "a,b:c", "x:y"]
    # r1.15 had no `exclude`: left out of its forms while unused, so its parser reads them.
    default = NormalizedSpec()
    assert "exclude" not in default.to_hparams() and "exclude" not in default.to_json()
    assert parse_hparams("exclude=[]").to_hparams() == default.to_hparams()
    assert parse_hparams("exclude=['']") == default


def test_a_bad_exclusion_is_located() -> None:
    with pytest.raises(SpecError) as raised:
        parse_hparams("exclude=[ok,(unclosed]")
    (error,) = raised.value.errors
    assert (error.code, error.field_path) == ("invalid-regex", "exclude[1].pattern")
    assert error.span is not None and error.span.offset == 12


# Global groups (pruning_scope GLOBAL, global_group): which weights share a threshold.


def test_global_scope_groups_the_weights_no_rule_claims() -> None:
    spec = parse_hparams(
        "pruning_scope=GLOBAL,weight_sparsity_map=[logits:0.3],exclude=[emb],"
        "global_group=[^enc/:encoder@0.8]"
    )
    assert spec.group_for("dense/kernel") == "global"
    assert spec.group_for("enc/q/kernel") == "encoder"
    assert spec.group_for("logits/kernel") is None  # its own rule: ranked alone
    assert spec.group_for("emb/table") is None  # excluded: dense
    assert spec.target_sparsity_for("enc/q/kernel") == 0.8
    assert spec.group_target("global") == spec.target_sparsity == 0.5
    assert spec.group_sparsity_at(100, "encoder") == pytest.approx(0.8)


def test_named_groups_work_in_per_weight_scope_too() -> None:
    spec = parse_hparams("global_group=[^enc/:encoder]")
    assert spec.group_for("enc/q/kernel") == "encoder"
    assert spec.group_for("dec/q/kernel") is None


def test_a_weight_two_rules_claim_is_ambiguous() -> None:
    spec = parse_hparams(
        "global_group=[^enc/:encoder,q:queries],weight_sparsity_map=[kernel:0.5],"
        "block_dims_map=[^dec/:2x2],pruning_scope=GLOBAL"
    )
    with pytest.raises(SpecError, match=r"'enc/q/w' matches both global_group\[0\]"):
        spec.group_for("enc/q/w")
    with pytest.raises(SpecError, match=r"claimed by both weight_sparsity_map\[0\] \('kernel'\)"):
        spec.group_for("enc/kernel")
    with pytest.raises(SpecError, match=r"block_dims_map\[0\] \('\^dec/'\) and group 'global'"):
        spec.group_for("dec/w")


def test_a_group_member_cannot_be_pruned_in_blocks() -> None:
    spec = parse_hparams("pruning_scope=GLOBAL,block_height=2,weight_sparsity_map=[own:0.5]")
    with pytest.raises(SpecError) as caught:
        spec.group_for("dense/kernel")
    assert [d.code for d in caught.value.diagnostics] == ["block-in-group"]
    assert spec.group_for("own/kernel") is None  # ranked alone: blocks allowed


def test_a_named_group_of_sparsity_zero_keeps_its_members_dense() -> None:
    spec = parse_hparams("initial_sparsity=0.3,global_group=[^enc/:encoder@0]")
    assert spec.keeps_dense("enc/kernel") and spec.group_for("enc/kernel") is None
    assert spec.sparsity_at(0, "enc/kernel") == 0.0


@pytest.mark.parametrize(
    ("hparams", "code"),
    [
        ("global_group=[a:global]", "reserved-group-name"),
        ("global_group=[a:g,b:g]", "duplicate-group"),
        ("global_group=[a:9g]", "invalid-string"),
        ("global_group=[a:g@1.0]", "out-of-range"),
        ("min_weight_density=1.5", "out-of-range"),
        ("pruning_scope=EVERYWHERE", "invalid-enum"),
    ],
)
def test_group_fields_are_validated_with_their_location(hparams: str, code: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_hparams(hparams)
    (error,) = caught.value.errors
    assert error.code == code and error.span is not None


# N:M rules (n_m_map): n kept of every m values along an axis.


@pytest.mark.parametrize(
    ("shape", "axis"),
    [
        ((784, 256), 0),  # a Dense kernel [in, out]: -2 is in
        ((3, 3, 16, 32), 2),  # a convolution kernel [h, w, cin, cout]: -2 is cin
        ((64,), 0),  # rank 1: the only axis
    ],
)
def test_n_m_for_defaults_to_the_reduction_axis(shape: tuple[int, ...], axis: int) -> None:
    spec = parse_hparams("n_m_map=[w:2/4]")
    assert spec.n_m_for("w", shape) == pruning_spec.NMPattern(2, 4, axis, "REJECT", 0)


@pytest.mark.parametrize(
    ("entry", "shape", "axis"),
    [
        ("w:2/4/REJECT/1", (6, 8), 1),
        ("w:2/4/REJECT/-1", (3, 3, 6, 8), 3),
        ("w:2/4/REJECT/-4", (8, 3, 3, 6), 0),
        ("w:1/2/REJECT/0", (8, 3), 0),
    ],
)
def test_n_m_for_takes_an_explicit_or_negative_axis(
    entry: str, shape: tuple[int, ...], axis: int
) -> None:
    pattern = parse_hparams(f"n_m_map=[v:1/2,{entry}]").n_m_for("w", shape)
    assert pattern is not None and (pattern.axis, pattern.rule) == (axis, 1)


@pytest.mark.parametrize(
    ("entry", "shape", "code", "path", "message"),
    [
        ("w:2/4/REJECT/2", (8, 8), "n-m-axis", "n_m_map[0].axis",
         "axis 2 is out of range for weight 'w' of shape [8, 8]"),
        ("w:2/4/REJECT/-3", (8, 8), "n-m-axis", "n_m_map[0].axis",
         "axis -3 is out of range for weight 'w' of shape [8, 8]"),
        ("w:2/4", (), "n-m-axis", "n_m_map[0]",
         "weight 'w' is a scalar: it has no axis to group along"),
        ("w:2/4", (6, 8), "n-m-remainder", "n_m_map[0].m",
         "weight 'w' of shape [6, 8] has 6 values along axis 0, not a multiple of m = 4"),
        ("w:2/4/REJECT/1", (8, 10), "n-m-remainder", "n_m_map[0].m",
         "weight 'w' of shape [8, 10] has 10 values along axis 1, not a multiple of m = 4"),
    ],
)  # fmt: skip
def test_an_n_m_rule_that_does_not_fit_the_weight_is_an_error_at_the_rule(
    entry: str, shape: tuple[int, ...], code: str, path: str, message: str
) -> None:
    with pytest.raises(SpecError) as caught:
        parse_hparams(f"n_m_map=[{entry}]").n_m_for("w", shape)
    [error] = caught.value.diagnostics
    assert (error.code, error.field_path, error.message) == (code, path, message)


def test_a_remainder_other_than_reject_accepts_any_extent() -> None:
    for remainder in ("DENSE", "KEEP_N"):
        pattern = parse_hparams(f"n_m_map=[w:2/4/{remainder}]").n_m_for("w", (6, 8))
        assert pattern is not None and pattern.remainder == remainder


@pytest.mark.parametrize(
    ("other", "claim"),
    [
        ("weight_sparsity_map=[dense:0.5]", "weight_sparsity_map[0] ('dense')"),
        ("block_dims_map=[kernel:2x2]", "block_dims_map[0] ('kernel')"),
        ("global_group=[^dense/:encoder]", "global_group[0] ('^dense/')"),
        ("n_m_map=[^dense/:2/4,kernel:1/4]", "n_m_map[1] ('kernel')"),
    ],
)
def test_an_n_m_weight_claimed_by_another_rule_is_ambiguous(other: str, claim: str) -> None:
    hparams = other if other.startswith("n_m_map") else f"n_m_map=[^dense/:2/4],{other}"
    spec = parse_hparams(hparams)
    with pytest.raises(SpecError) as caught:
        spec.n_m_for("dense/kernel", (8, 8))
    [error] = caught.value.diagnostics
    assert error.code == "ambiguous-rule"
    assert "n_m_map[0] ('^dense/')" in error.message and claim in error.message
    assert spec.n_m_for("other/bias", (8,)) is None  # no rule of either matches it


def test_an_exclusion_wins_over_an_n_m_rule() -> None:
    spec = parse_hparams("n_m_map=[dense:2/4],exclude=[^dense/kernel$]")
    assert spec.n_m_rule_for("dense/kernel") is None
    assert spec.n_m_for("dense/kernel", (6, 8)) is None  # no n-m-remainder either: not N:M
    assert spec.keeps_dense("dense/kernel") and spec.sparsity_at(10_000, "dense/kernel") == 0.0
    assert spec.n_m_for("dense/bias", (8,)) == pruning_spec.NMPattern(2, 4, 0, "REJECT", 0)


def test_global_scope_leaves_n_m_weights_out_of_the_global_group() -> None:
    spec = parse_hparams("pruning_scope=GLOBAL,target_sparsity=0.9,n_m_map=[^dense/:1/4]")
    assert spec.group_for("dense/kernel") is None
    assert spec.group_for("conv/kernel") == "global"
    assert not spec.keeps_dense("dense/kernel")
    # No schedule: 1 - 1/4 at any step, while the group follows the curve.
    assert spec.target_sparsity_for("dense/kernel") == 0.75
    assert spec.sparsity_at(0, "dense/kernel") == spec.sparsity_at(10**6, "dense/kernel") == 0.75
    assert spec.group_sparsity_at(0, "global") == 0.0


def test_an_n_m_rule_written_with_its_default_remainder_is_the_same_spec() -> None:
    written = parse_hparams("n_m_map=[d:2/4/REJECT/1]")
    left_out = pruning_spec.parse_spec_text('n_m_map { pattern: "d" n: 2 m: 4 axis: 1 }')
    assert written == left_out and written.fingerprint == left_out.fingerprint
    assert not written.n_m_map[0].HasField("remainder")
    dense = parse_hparams("n_m_map=[d:2/4/DENSE/1]")
    assert dense != written and dense.fingerprint != written.fingerprint


def test_print_hparams_round_trips_an_axis_set_and_a_remainder_unset() -> None:
    spec = pruning_spec.parse_spec_text('n_m_map { pattern: "d" n: 2 m: 4 axis: -1 }')
    # The remainder comes before the axis: written at its default so the axis has its place.
    assert spec.to_hparams(include_defaults=False) == "n_m_map=[d:2/4/REJECT/-1]"
    for text in (spec.to_hparams(), spec.to_hparams(include_defaults=False)):
        again = parse_hparams(text)
        assert again == spec and again.fingerprint == spec.fingerprint
        assert again.n_m_map[0].axis == -1 and not again.n_m_map[0].HasField("remainder")
    without_axis = parse_hparams("n_m_map=[d:2/4]")
    assert without_axis.to_hparams(include_defaults=False) == "n_m_map=[d:2/4]"
    assert not without_axis.n_m_map[0].HasField("axis")


def test_n_m_for_needs_the_whole_shape() -> None:
    spec = parse_hparams("n_m_map=[w:2/4]")
    with pytest.raises(ValueError, match=r"whole shape of weight 'w', not \[None, 4\]"):
        spec.n_m_for("w", [None, 4])
    assert spec.n_m_for("other", [None, 4]) is None
