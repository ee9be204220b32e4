"""Global groups: weights ranked together with one threshold, and each member's floor.

A group (the weights pruning_scope GLOBAL leaves unclaimed, named `global`, or those
of a `global_group` rule) keeps `K = round_half_even(N * (1 - s))` of its N values at
an update, s the group's scheduled sparsity. With `min_weight_density = d`, member i
(of n_i values) keeps at least `f_i = ceil(n_i * d)`:

1. each member's floor threshold t_i is its own f_i-th largest magnitude (none: f_i = 0);
2. the group threshold T is the (K - sum f_i)-th largest magnitude among the values
   below their member's t_i, the values no floor keeps (above every value when
   K <= sum f_i: only floors keep);
3. member i keeps `|w| >= T or |w| >= t_i`.

Without ties that is exactly max(K, sum f_i) values, and every member keeps at least
f_i; ties at a threshold keep more, as `|w| >= T` does for a single weight. NaN ranks
below every number, as in single-weight selection (`backends/tensorflow/_kernels.py`).

K is computed in float64, unlike a single weight's float32 count (r1.15's): a group
easily holds more than 2^24 values, past which float32 does not count exactly. The
backends compute the same IEEE operations, so they agree with this module exactly.
The selection here uses numpy, for tools reading checkpoints; the backends' kernels
select without concatenating their members.
"""

from __future__ import annotations

import dataclasses
import fractions
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from pruning_spec._schedule import float32
from pruning_spec._spec import NormalizedSpec

if TYPE_CHECKING:
    import numpy.typing as npt


@dataclasses.dataclass(frozen=True)
class GroupMember:
    name: str
    size: int
    floor: int  # the values it keeps at least (min_weight_density)


@dataclasses.dataclass(frozen=True)
class Group:
    """A group's members, in the order the weights were given."""

    name: str
    members: tuple[GroupMember, ...]

    @property
    def size(self) -> int:
        return sum(m.size for m in self.members)

    @property
    def floors(self) -> int:
        return sum(m.floor for m in self.members)

    def keep_count(self, sparsity: float) -> int:
        """K at the group's scheduled sparsity (floors not included)."""
        return keep_count(self.size, sparsity)

    def kept_at_least(self, sparsity: float) -> int:
        """What the group keeps, floors included, if no values tie."""
        return max(self.keep_count(sparsity), self.floors)


def keep_count(units: int, sparsity: float) -> int:
    """K = round_half_even(N * (1 - s)) in float64, s rounded to float32 first (the schedule's)."""
    kept = round(units * (1.0 - float32(sparsity)))
    return max(0, min(units, kept))


def floor_count(size: int, density: float) -> int:
    """ceil(n * d), exactly, d read as the shortest decimal that is its value.

    So 100 * 0.1 is 10, as written: the binary value of 0.1 is a little above 1/10,
    and would make it 11; as it was written, no float rounding can either.
    """
    return min(size, math.ceil(size * fractions.Fraction(repr(float(density)))))


def groups_of(spec: NormalizedSpec, weights: Iterable[tuple[str, int]]) -> dict[str, Group]:
    """The groups the weights (name, size) form under `spec`, by name, in first-seen order.

    Raises `SpecError` as `NormalizedSpec.group_for` does.
    """
    members: dict[str, list[GroupMember]] = {}
    for name, size in weights:
        group = spec.group_for(name)
        if group is not None:
            floor = floor_count(size, spec.min_weight_density)
            members.setdefault(group, []).append(GroupMember(name, size, floor))
    return {name: Group(name, tuple(found)) for name, found in members.items()}


def partition(
    spec: NormalizedSpec, weights: Iterable[tuple[str, int]]
) -> tuple[list[str], dict[str, Group]]:
    """The weights (name, size) ranked alone, in order, and the groups the others form.

    Weights the spec keeps dense are in neither: their masks stay all ones.
    """
    weights = list(weights)
    groups = groups_of(spec, weights)
    grouped = {member.name for group in groups.values() for member in group.members}
    alone = [name for name, _ in weights if name not in grouped and not spec.keeps_dense(name)]
    return alone, groups


@dataclasses.dataclass(frozen=True)
class Selection:
    """What a group keeps of given values: each member's kept count, and the thresholds."""

    threshold: float  # T; inf when only floors keep
    floor_thresholds: tuple[float, ...]  # t_i; inf for no floor
    kept: tuple[int, ...]


def select(values: Sequence[npt.ArrayLike], keep: int, floors: Sequence[int]) -> Selection:
    """The module docstring's selection over the members' values (numpy, for tools)."""
    import numpy as np  # noqa: PLC0415 - an optional extra, needed only with values

    magnitudes = [_magnitudes(np, v) for v in values]
    floor_thresholds = tuple(
        _kth_largest(np, m, f) if f > 0 else math.inf
        for m, f in zip(magnitudes, floors, strict=True)
    )
    rest = keep - sum(floors)
    below = [m[m < t] for m, t in zip(magnitudes, floor_thresholds, strict=True)]
    pooled = np.concatenate(below) if below else np.zeros(0)
    threshold = _kth_largest(np, pooled, rest) if rest > 0 else math.inf
    kept = tuple(
        int(np.count_nonzero((m >= threshold) | (m >= t)))
        for m, t in zip(magnitudes, floor_thresholds, strict=True)
    )
    return Selection(threshold, floor_thresholds, kept)


def _magnitudes(np: Any, values: npt.ArrayLike) -> Any:
    """|w| in float64 (exact for every float dtype up to it); NaN as -1, below every number."""
    magnitudes = np.abs(np.asarray(values, dtype=np.float64)).ravel()
    return np.where(np.isnan(magnitudes), -1.0, magnitudes)


def _kth_largest(np: Any, magnitudes: Any, k: int) -> float:
    """The k-th largest (k >= 1); 0 past the numbers, as single-weight selection does."""
    if k > magnitudes.size:
        return 0.0
    value = float(np.partition(magnitudes, magnitudes.size - k)[magnitudes.size - k])
    return max(value, 0.0)
