"""Property tests: exact round trips in every format, and parser totality.

docs/semantics.md, principle 4: `parse(print(spec)) == spec` for every valid spec, in
every format, and printing is canonical. Principle 3 / Testing: any input to a
parser either parses or raises `SpecError` (never another exception, never a
hang).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sized
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, find, given, note, settings
from hypothesis import strategies as st

from pruning_spec import (
    BlockDimsRule,
    ExcludeRule,
    GlobalGroup,
    NMSparsityRule,
    NormalizedSpec,
    PruningSpec,
    SpecError,
    WeightSparsityRule,
    _loader,
    _schema,
    load_spec,
    parse_hparams,
    parse_spec_text,
)
from pruning_spec._regex import pattern_problem
from pruning_spec._scalars import quote
from pruning_spec._schema import Kind
from pruning_spec._textproto import ParsedSource, Step, parse_textproto

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
TIME_LIMIT = 2.0  # seconds per parser call: generous, only meant to catch hangs

ROUND_TRIP = settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _totality(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# Valid specs.

NAME_REGEX = r"[A-Za-z0-9.][A-Za-z0-9_.\-/>]*"
FLOAT32_MAX = 3.4028234663852886e38  # the schedule is float32: a larger exponent is refused

# Finite doubles in [0, 1), not only "nice" ones; -0.0 compares >= 0 and is accepted too.
unit_interval = st.floats(0, 1, exclude_max=True) | st.just(-0.0)
block_dim = st.just(-1) | st.integers(1, INT64_MAX) | st.integers(1, 16)


def _valid_regex(text: str) -> bool:
    return pattern_problem(text) is None


# Characters that stress quoting and escaping in every printer: separators of the hparam
# language, quotes, backslashes, whitespace of all kinds (including what str.splitlines
# treats as a line break), control characters and non-ASCII text.
_INTERESTING_CHARS = list(
    ",]:[ \"'\\/._-=x#{}<>;|"
    "\t\n\r\x00\x01\x0b\x0c\x1c\x1d\x1e\x1f\x7f\x85\xa0\u2028\u2029\u3000"
    "aZ09é€ßλ日本\U0001d11e\U0001f600"
)
_REGEX_PIECES = [
    r"[0-9]+",
    r"[,\]]",
    r"[:]",
    r"[\[]",
    r"[^,]*",
    r"\d",
    r"\s+",
    r"\\",
    r"\]",
    r"\[",
    r"\"",
    r"\'",
    r"\:",
    r"(a|b)",
    r"(?:x:y)",
    r".*",
    r"^",
    r"$",
    r"a{2,3}",
    r"\u00e9",
    r"\x2c",
    "conv[0-9]+/kernel",
    "dense1",
    "^conv1/",
    "a:b",
    "a, b",
    "x]:0.5",
    '"quoted"',
    "'single'",
    "\\\\n",
]
# Lists joined, not st.text(): text() merges a one_of alphabet into one character set, and
# the few interesting characters would almost never be drawn.
_literal_text = st.lists(
    st.sampled_from(_INTERESTING_CHARS)
    | st.characters(exclude_categories=("Cs",), exclude_characters="()[{*+?\\"),
    min_size=1,
    max_size=6,
).map("".join)
patterns = (
    st.lists(st.sampled_from(_REGEX_PIECES) | _literal_text, min_size=1, max_size=4)
    .map("".join)
    .filter(_valid_regex)
) | st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=8).filter(_valid_regex)


def _distinct_patterns(max_size: int = 4) -> st.SearchStrategy[list[str]]:
    return st.lists(patterns, max_size=max_size, unique=True)


_group_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,8}", fullmatch=True)


@st.composite
def valid_specs(draw: st.DrawFn) -> PruningSpec:
    """Valid `PruningSpec` messages: any subset of the fields set, every constraint kept."""
    spec = PruningSpec()

    def maybe(field: str, strategy: st.SearchStrategy[Any]) -> None:
        if draw(st.booleans()):
            setattr(spec, field, draw(strategy))

    maybe("name", st.from_regex(NAME_REGEX, fullmatch=True))

    # begin_pruning_step < end_pruning_step, or end_pruning_step == -1 (the default).
    maybe("begin_pruning_step", st.integers(0, INT64_MAX) | st.integers(0, 1000))
    begin = spec.begin_pruning_step
    if begin < INT64_MAX:
        maybe("end_pruning_step", st.just(-1) | st.integers(begin + 1, INT64_MAX))
    else:
        maybe("end_pruning_step", st.just(-1))

    if draw(st.booleans()):
        spec.weight_sparsity_map.extend(
            WeightSparsityRule(pattern=pattern, sparsity=draw(unit_interval))
            for pattern in draw(_distinct_patterns())
        )
    if draw(st.booleans()):
        spec.block_dims_map.extend(
            BlockDimsRule(
                pattern=pattern, block_height=draw(block_dim), block_width=draw(block_dim)
            )
            for pattern in draw(_distinct_patterns())
        )
    if draw(st.booleans()):
        spec.exclude.extend(ExcludeRule(pattern=p) for p in draw(_distinct_patterns()))
    maybe("pruning_scope", st.sampled_from([PruningSpec.PER_WEIGHT, PruningSpec.GLOBAL]))
    if draw(st.booleans()):
        for index, pattern in enumerate(draw(_distinct_patterns())):
            group = GlobalGroup(pattern=pattern, name=draw(_group_names) + f"_{index}")
            if draw(st.booleans()):
                group.sparsity = draw(unit_interval)
            spec.global_group.append(group)
    maybe("min_weight_density", st.floats(0, 1) | st.sampled_from([0.0, 0.05, 1.0]))
    if draw(st.booleans()):
        for pattern in draw(_distinct_patterns()):
            m = draw(st.integers(2, 64))
            rule = NMSparsityRule(pattern=pattern, n=draw(st.integers(1, m - 1)), m=m)
            if draw(st.booleans()):
                rule.remainder = draw(st.sampled_from(list(NMSparsityRule.Remainder.values())[1:]))
            if draw(st.booleans()):
                rule.axis = draw(st.integers(-64, 63))
            spec.n_m_map.append(rule)

    maybe("threshold_decay", unit_interval)
    maybe("pruning_frequency", st.integers(1, INT64_MAX) | st.integers(1, 100))
    maybe("nbins", st.just(256))  # any other value is a deprecation warning
    maybe("block_height", block_dim)
    maybe("block_width", block_dim)
    maybe("block_pooling_function", st.sampled_from([PruningSpec.AVG, PruningSpec.MAX]))
    maybe("initial_sparsity", unit_interval)
    maybe("target_sparsity", unit_interval)

    # sparsity_function_begin_step < sparsity_function_end_step (effective values; end's
    # default is 100).
    end_set = draw(st.booleans())
    highest_begin = INT64_MAX - 1 if end_set else 99
    maybe("sparsity_function_begin_step", st.integers(0, highest_begin) | st.integers(0, 99))
    if end_set:
        low = spec.sparsity_function_begin_step + 1
        spec.sparsity_function_end_step = draw(
            st.integers(low, INT64_MAX) | st.integers(low, min(low + 100, INT64_MAX))
        )

    maybe(
        "sparsity_function_exponent",
        st.floats(0, FLOAT32_MAX, exclude_min=True) | st.sampled_from([1.0, 2.0, 3.0, 0.5]),
    )
    maybe("use_tpu", st.just(False))  # True is a deprecation warning
    return spec


@pytest.mark.parametrize("field", [f.name for f in PruningSpec.DESCRIPTOR.fields])
def test_valid_specs_can_set_every_field_of_the_schema(field: str) -> None:
    # A field added to pruning.proto must be added to valid_specs() too.
    def sets_it(message: PruningSpec) -> bool:
        value = getattr(message, field)
        return len(value) > 0 if isinstance(value, Sized) else message.HasField(field)

    found = find(valid_specs(), sets_it, settings=settings(database=None, max_examples=2000))
    assert sets_it(found)


# Round trips.


def _normalized(message: PruningSpec) -> NormalizedSpec:
    spec = NormalizedSpec(message)
    assert not spec.warnings, "valid_specs() should only generate specs without warnings"
    return spec


def _assert_same(parsed: NormalizedSpec, spec: NormalizedSpec) -> None:
    assert parsed == spec
    assert parsed.to_binary() == spec.to_binary()
    assert parsed.fingerprint == spec.fingerprint
    assert hash(parsed) == hash(spec)


@ROUND_TRIP
@given(valid_specs())
def test_hparams_round_trip(message: PruningSpec) -> None:
    spec = _normalized(message)
    text = spec.to_hparams()
    note(f"printed: {text!r}")
    parsed = parse_hparams(text)
    _assert_same(parsed, spec)
    assert parsed.to_hparams() == text  # idempotent: canonical printing


@ROUND_TRIP
@given(valid_specs())
def test_hparams_without_defaults_round_trip(message: PruningSpec) -> None:
    spec = _normalized(message)
    text = spec.to_hparams(include_defaults=False)
    note(f"printed: {text!r}")
    parsed = parse_hparams(text)
    _assert_same(parsed, spec)
    assert parsed.to_hparams(include_defaults=False) == text


@ROUND_TRIP
@given(valid_specs())
def test_textproto_round_trip(message: PruningSpec) -> None:
    spec = _normalized(message)
    text = spec.to_textproto()
    note(f"printed: {text!r}")
    parsed = parse_spec_text(text)
    _assert_same(parsed, spec)
    assert parsed.to_textproto() == text


@pytest.fixture(scope="module")
def spec_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("specs")


@ROUND_TRIP
@given(message=valid_specs())
def test_json_round_trip(spec_dir: Path, message: PruningSpec) -> None:
    spec = _normalized(message)
    text = spec.to_json()
    note(f"printed: {text!r}")
    path = spec_dir / "x.json"
    path.write_text(text, encoding="utf-8")
    loaded = load_spec(path)
    _assert_same(loaded, spec)
    assert loaded.to_json() == text
    parsed = _loader.build_spec(_loader.parse_json(text))
    _assert_same(parsed, spec)
    # The indented form is the same document.
    _assert_same(_loader.build_spec(_loader.parse_json(spec.to_json(indent=2))), spec)


@ROUND_TRIP
@given(message=valid_specs())
def test_binary_round_trip(spec_dir: Path, message: PruningSpec) -> None:
    spec = _normalized(message)
    data = spec.to_binary()
    parsed = NormalizedSpec(PruningSpec.FromString(data))
    _assert_same(parsed, spec)
    assert parsed.to_binary() == data
    path = spec_dir / "x.binpb"
    path.write_bytes(data)
    _assert_same(load_spec(path), spec)


@ROUND_TRIP
@given(valid_specs())
def test_equal_specs_share_their_fingerprint(message: PruningSpec) -> None:
    spec = _normalized(message)
    # Setting every field explicitly to its effective value is the same spec.
    filled = NormalizedSpec(spec.proto)
    _assert_same(filled, spec)
    # So is a copy built from the unnormalized message, and the forms agree with each other.
    again = NormalizedSpec(message)
    _assert_same(again, spec)
    assert filled.to_hparams() == spec.to_hparams()
    assert filled.to_textproto() == spec.to_textproto()
    assert filled.to_json() == spec.to_json()
    assert {spec, filled, again} == {spec}


# Totality.


def _check_total(parse: Callable[[str], NormalizedSpec], text: str) -> NormalizedSpec | None:
    """`parse(text)` returns a NormalizedSpec or raises SpecError with an error, quickly."""
    note(f"input: {text!r}")
    start = time.perf_counter()
    try:
        result = parse(text)
    except SpecError as error:
        result = None
        assert error.errors, "a SpecError must carry at least one error"
        assert str(error)
    elapsed = time.perf_counter() - start
    assert elapsed < TIME_LIMIT, f"parsing took {elapsed:.2f} s"
    if result is not None:
        assert isinstance(result, NormalizedSpec)
    return result


FIELD_NAMES = [field.name for field in PruningSpec.DESCRIPTOR.fields]
RULE_FIELD_NAMES = list(
    dict.fromkeys(
        f.name for rule in (WeightSparsityRule, BlockDimsRule) for f in rule.DESCRIPTOR.fields
    )
)

# Any character, lone surrogates included: Python decodes a non-UTF-8 byte of sys.argv
# (where hparam strings come from) as a surrogate ("\udcff" for 0xff), and json.loads
# turns "\ud800" into one.
any_char = st.characters() | st.characters(categories=["Cs"]) | st.sampled_from(_INTERESTING_CHARS)
any_text = st.text() | st.lists(any_char, max_size=12).map("".join)

# Numbers as text, with the boundaries of int32, int64, uint64 and double.
_BOUNDARY_INTS = [
    0,
    1,
    -1,
    2,
    256,
    2**31 - 1,
    2**31,
    2**32,
    INT64_MAX,
    INT64_MAX + 1,
    INT64_MIN,
    INT64_MIN - 1,
    2**64,
    10**30,
]
number_texts = (
    st.integers().map(str)
    | st.sampled_from(_BOUNDARY_INTS).map(str)
    | st.floats().map(repr)
    | st.sampled_from(
        ["0.5", "-0.0", ".5", "1e400", "-1e400", "1e-400", "nan", "inf", "-inf", "1_000", "0x10"]
    )
)

# Pieces of input that matter to the grammars.
_COMMON_FRAGMENTS = [
    *FIELD_NAMES,
    *RULE_FIELD_NAMES,
    "target_sparsty",
    "Name",
    " ",
    "\t",
    "\n",
    ",",
    ":",
    "[",
    "]",
    "x",
    '"',
    "'",
    "\\",
    '\\"',
    "\\'",
    "\\n",
    "0",
    "1",
    "-1",
    "0.5",
    "1e400",
    "nan",
    "inf",
    "9223372036854775808",
    "1" * 40,
    "true",
    "False",
    "AVG",
    "MAX",
    "conv1",
    "conv[0-9]+/kernel",
    "(",
    ")",
    "*",
    "é",
    "\u2028",
    "\x0b",
    "\x00",
    "\udcff",
]


def _soup(fragments: list[str], max_size: int = 30) -> st.SearchStrategy[str]:
    piece = st.sampled_from(fragments) | st.lists(any_char, max_size=3).map("".join)
    return st.lists(piece, max_size=max_size).map("".join)


def _mutated(texts: st.SearchStrategy[str], fragments: list[str]) -> st.SearchStrategy[str]:
    """`texts` with a fragment inserted at, or a slice cut out from, a random position."""

    def mutate(text: str, fragment: str, position: int, cut: int) -> str:
        position %= len(text) + 1
        return text[:position] + fragment + text[position + cut :]

    return st.builds(
        mutate,
        texts,
        st.sampled_from(fragments) | st.just(""),
        st.integers(0, 10**6),
        st.integers(0, 3),
    )


def _quoted(text: str, quote: str) -> str:
    return quote + text.replace("\\", "\\\\").replace(quote, "\\" + quote) + quote


_quotes = st.sampled_from(['"', "'"])
quoted_texts = st.builds(_quoted, any_text, _quotes) | st.builds(
    lambda quote, body: quote + body + quote, _quotes, any_text
)
_name_texts = st.from_regex(NAME_REGEX, fullmatch=True) | any_text
_unit_texts = unit_interval.map(repr) | number_texts
_dim_texts = st.sampled_from(["-1", "1", "2", "4", "16"]) | number_texts


def _field_values(field: Any, *, bools: list[str], enums: list[str]) -> st.SearchStrategy[str]:
    """Text for one scalar field: mostly plausible for its type, sometimes not."""
    kind = _schema.kind_of(field)
    if kind is Kind.INT:
        return st.integers(-2, 300).map(str) | number_texts
    if kind is Kind.FLOAT:
        return _unit_texts | st.floats(0, 10, exclude_min=True).map(repr)
    if kind is Kind.BOOL:
        return st.sampled_from(bools) | number_texts
    if kind is Kind.ENUM:
        return st.sampled_from(enums) | number_texts
    return _name_texts


SCALAR_FIELDS = [f for f in PruningSpec.DESCRIPTOR.fields if not f.is_repeated]

# The hparam language.
_HPARAM_FRAGMENTS = [*_COMMON_FRAGMENTS, "=", ", ", "[0]", "4x4", "-1x2", "x-1", ":0.5", "=["]
_hparam_key = patterns | any_text | quoted_texts | st.builds(_quoted, patterns, _quotes)
_hparam_rule_values = {
    "weight_sparsity_map": _unit_texts,
    "block_dims_map": st.builds(lambda h, w: f"{h}x{w}", _dim_texts, _dim_texts) | _unit_texts,
    "global_group": _name_texts
    | st.builds(lambda name, value: f"{name}@{value}", _group_names, _unit_texts),
    "n_m_map": st.lists(
        st.integers(-2, 70).map(str) | st.sampled_from(["REJECT", "DENSE", "KEEP_N", "dense"]),
        min_size=1,
        max_size=5,
    ).map("/".join),
}
_hparam_clauses = {
    field.name: _field_values(
        field,
        bools=["true", "false", "True", "False", "0", "1", " 1", "yes"],
        enums=["AVG", "MAX", " MAX", "avg", "BLOCK_POOLING_FUNCTION_UNSPECIFIED", "GLOBAL"],
    ).map(lambda value, name=field.name: f"{name}={value}")
    for field in SCALAR_FIELDS
}
for _map_name, _values in _hparam_rule_values.items():
    _hparam_clauses[_map_name] = st.lists(
        st.builds(lambda key, value: f"{key}:{value}", _hparam_key, _values), max_size=4
    ).map(lambda entries, name=_map_name: f"{name}=[{','.join(entries)}]")


def _joined(parts: dict[str, str], separator: str, backwards: bool) -> str:
    values = list(parts.values())
    return separator.join(values[::-1] if backwards else values)


hparam_specs = st.builds(
    _joined,
    st.fixed_dictionaries({}, optional=_hparam_clauses),
    st.sampled_from([",", ", "]),
    st.booleans(),
)
hparam_texts = (
    any_text | _soup(_HPARAM_FRAGMENTS) | hparam_specs | _mutated(hparam_specs, _HPARAM_FRAGMENTS)
)


@_totality(2500)
@given(hparam_texts)
def test_hparam_parser_is_total(text: str) -> None:
    result = _check_total(parse_hparams, text)
    if result is not None:  # whatever parses prints back to itself
        assert parse_hparams(result.to_hparams()) == result


# Text format.
_TEXTPROTO_FRAGMENTS = [
    *_COMMON_FRAGMENTS,
    ": ",
    "{",
    "}",
    "<",
    ">",
    ";",
    "#",
    "-",
    "\\x",
    "\\xff",
    "\\777",
    "\\u",
    "\\ud800",
    "\\U0010ffff",
    "\\U00110000",
    "t",
    "f",
    "BLOCK_POOLING_FUNCTION_UNSPECIFIED",
    "[pruning_spec.v1.x]",
    "0.5f",
    "1e",
    "0x",
    "07",
]
_text_strings = quoted_texts | st.builds(
    lambda quote, body: quote + body + quote, _quotes, _soup(_TEXTPROTO_FRAGMENTS, max_size=4)
)
_text_fields = {
    field.name: _field_values(
        field,
        bools=["true", "false", "True", "t", "f", "0", "1", "yes"],
        enums=["AVG", "MAX", "BLOCK_POOLING_FUNCTION_UNSPECIFIED", "avg", "1", "2", "GLOBAL"],
    )
    .map(lambda value, field=field: quote(value) if field.name == "name" else value)
    .map(lambda value, name=field.name: f"{name}: {value}")
    for field in SCALAR_FIELDS
}
_text_fields["name"] = _text_fields["name"] | _text_strings.map(lambda v: f"name: {v}")
_text_rule_values = {
    "weight_sparsity_map": st.tuples(_unit_texts.map(lambda v: f"sparsity: {v}")),
    "block_dims_map": st.tuples(
        _dim_texts.map(lambda v: f"block_height: {v}"),
        _dim_texts.map(lambda v: f"block_width: {v}"),
    ),
    "global_group": st.tuples(
        _name_texts.map(lambda v: f"name: {quote(v)}"),
        _unit_texts.map(lambda v: f"sparsity: {v}") | st.just(""),
    ),
    "n_m_map": st.tuples(
        st.integers(-1, 65).map(lambda v: f"n: {v}"),
        st.integers(0, 66).map(lambda v: f"m: {v}"),
        st.sampled_from(["", "remainder: DENSE", "remainder: KEEP_N", "remainder: 7"]),
        st.sampled_from(["", "axis: 0", "axis: -2", "axis: 99"]),
    ),
}
for _map_name, _values in _text_rule_values.items():
    _text_fields[_map_name] = st.builds(
        lambda name, pattern, values, style: (
            style[0] + f"{name} {{ pattern: {pattern} {' '.join(values)} }}" + style[1]
        ),
        st.just(_map_name),
        patterns.map(quote) | _text_strings,
        _values,
        st.sampled_from([("", ""), ("", "\n"), ("", ";")]),
    )
for _map_name in _text_rule_values:
    _text_fields[_map_name] = st.lists(_text_fields[_map_name], max_size=3).map("\n".join)
textproto_specs = st.builds(
    _joined,
    st.fixed_dictionaries({}, optional=_text_fields),
    st.sampled_from(["\n", " ", ", ", ";"]),
    st.booleans(),
)
textproto_texts = (
    any_text
    | _soup(_TEXTPROTO_FRAGMENTS)
    | textproto_specs
    | _mutated(textproto_specs, _TEXTPROTO_FRAGMENTS)
)


@_totality(1500)
@given(textproto_texts)
def test_textproto_parser_is_total(text: str) -> None:
    result = _check_total(parse_spec_text, text)
    if result is not None:
        assert parse_spec_text(result.to_textproto()) == result


@settings(max_examples=800, deadline=None)
@given(textproto_texts)
def test_keeping_the_layout_changes_nothing_the_parser_reports(text: str) -> None:
    """fmt's parse (comments kept aside) and the loader's read any text identically."""

    def summary(parsed: ParsedSource) -> tuple[object, ...]:
        return (
            parsed.message.SerializeToString(deterministic=True),
            [(d.code, d.message, d.field_path, d.span) for d in parsed.diagnostics],
            sorted(parsed.positions.items()),
        )

    plain, kept = parse_textproto(text), parse_textproto(text, keep_layout=True)
    assert summary(kept) == summary(plain)
    assert plain.layout is None
    if not kept.diagnostics:
        assert kept.layout is not None
        scalars = [item.name for item in kept.layout.items if item.step is Step.SCALAR]
        scalar_paths = [path for path in plain.positions if not path.endswith("]")]
        assert len(scalars) == len(scalar_paths)
        assert all(comment.text.startswith("#") for comment in kept.layout.comments)


# JSON.


def _parse_json(text: str) -> NormalizedSpec:
    return _loader.build_spec(_loader.parse_json(text))


# JSON numbers are arbitrary precision: include integers far beyond int64 and double.
_json_numbers = (
    st.integers()
    | st.sampled_from(_BOUNDARY_INTS)
    | st.integers(-(10**600), 10**600)
    | st.floats()
    | st.sampled_from([0.5, 1.0, -0.0, 1e300])
)
_json_strings = (
    any_text
    | st.sampled_from(["AVG", "MAX", "conv1:0.8", "a:4x4", "b:-1x-1", ":", "x:", "", "a:0.5:1"])
    | st.builds(lambda key, value: f"{key}:{value}", patterns | any_text, _dim_texts | _unit_texts)
    | st.builds(lambda key, h, w: f"{key}:{h}x{w}", patterns | any_text, _dim_texts, _dim_texts)
)
_json_scalars = st.none() | st.booleans() | _json_numbers | _json_strings
_json_values = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(RULE_FIELD_NAMES) | any_text, inner, max_size=4)
    ),
    max_leaves=10,
)
# Documents shaped like specs: known keys, values of roughly the right type.
_json_fields = {
    field.name: _json_scalars
    | {
        Kind.INT: st.integers(-2, 300) | _json_numbers,
        Kind.FLOAT: unit_interval | _json_numbers,
        Kind.BOOL: st.booleans(),
        Kind.ENUM: st.sampled_from(
            ["AVG", "MAX", "avg", "BLOCK_POOLING_FUNCTION_UNSPECIFIED", "GLOBAL", "PER_WEIGHT"]
        ),
        Kind.STRING: _name_texts,
    }[_schema.kind_of(field)]
    for field in SCALAR_FIELDS
}
_json_rule = st.fixed_dictionaries(
    {},
    optional={
        "pattern": patterns | any_text,
        "sparsity": unit_interval | _json_numbers,
        "block_height": st.integers(-1, 4) | _json_numbers,
        "block_width": st.integers(-1, 4) | _json_numbers,
    },
)
for _map_name in _text_rule_values:
    _json_fields[_map_name] = st.lists(_json_strings | _json_rule | _json_values, max_size=4)
json_documents = st.fixed_dictionaries({}, optional=_json_fields) | st.dictionaries(
    st.sampled_from(FIELD_NAMES) | any_text, _json_values, max_size=6
)
_JSON_FRAGMENTS = [
    *(json.dumps(name) for name in FIELD_NAMES + RULE_FIELD_NAMES),
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    '"',
    "\\",
    "\\u",
    "\\ud800",
    "\\udcff",
    '"\\ud800"',
    "\udcff",
    "null",
    "true",
    "NaN",
    "Infinity",
    "-Infinity",
    "0",
    "-0.0",
    "0.5",
    "1e400",
    '"AVG"',
    '"conv1:0.8"',
    '"a:4x4"',
    '""',
    " ",
    "\n",
]
# Spec-shaped documents whose numbers are written out literally, beyond what json.dumps emits.
_json_number_literals = number_texts | st.sampled_from(
    # no double holds 1...1 (400 digits); int() refuses more than 4300 digits by default
    ["1" * 400, "1" * 4301, "-0", "1E400", "NaN", "-Infinity", "0.5e0"]
)
json_number_documents = st.dictionaries(
    st.sampled_from(FIELD_NAMES), _json_number_literals, min_size=1, max_size=4
).map(lambda document: "{" + ", ".join(f'"{k}": {v}' for k, v in document.items()) + "}")
json_texts = (
    any_text
    | _soup(_JSON_FRAGMENTS, max_size=20)
    | json_number_documents
    | _mutated(json_documents.map(json.dumps), _JSON_FRAGMENTS)
)


@_totality(800)
@given(json_texts)
def test_json_parser_is_total_on_text(text: str) -> None:
    _check_total(_parse_json, text)


@_totality(800)
@given(json_documents | _json_values)
def test_json_parser_is_total_on_json_values(document: object) -> None:
    result = _check_total(_parse_json, json.dumps(document))
    if result is not None:
        assert _parse_json(result.to_json()) == result
