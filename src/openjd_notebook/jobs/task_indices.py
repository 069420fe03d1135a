"""Which indices of a step's parameter space hold the tasks a selection wants, without listing
the space.

A space of 100,000,000 tasks must answer ``tasks="Frame=1"`` at once. openjd-model orders a
space by its combination expression: a product (``A * B``) is row-major with the right-most
child moving fastest, and an association (``(A, B)``) pairs its children index by index (see
``StepParameterSpaceIterator``). So the indices that match a filter follow from each task
parameter's own matching indices: a parameter written as a range expression (``1-100000000``)
is a few arithmetic progressions, intersected with the filter's progressions by arithmetic; a
parameter written as a list is held by the model anyway and is scanned. Products and
associations combine those lazily. Counting never iterates; listing yields one index at a time.

Index sets are sequences of Python ``range`` objects ("runs"), ascending, whose spans do not
overlap, so they can be merged and intersected in one pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from openjd.model import (
    IntRangeExpr,
    ParameterValue,
    ParameterValueType,
    StepParameterSpace,
    StepParameterSpaceIterator,
)
from openjd.model._internal import (  # the parser StepParameterSpaceIterator itself uses
    CombinationExpressionAssociationNode,
    CombinationExpressionIdentifierNode,
    CombinationExpressionNode,
    CombinationExpressionParser,
)

__all__ = ["IndexSet", "Wanted", "canonical", "matching_indices", "space_size"]


def canonical(value: ParameterValue) -> str:
    """A value's text, with FLOATs compared as numbers ("3" and "3.0" are the same task)."""
    if value.type == ParameterValueType.FLOAT:
        return repr(float(value.value))
    return str(value.value)


@dataclass(frozen=True)
class Wanted:
    """The values of one task parameter that a selection accepts.

    ``numbers`` (INT and CHUNK[INT] filters such as ``Frame=1-5``) accepts an INT in the
    range and a chunk whose frames all are; ``texts`` accepts values whose canonical text is
    listed, exactly (FLOAT, STRING and PATH filters, and explicit tasks).
    """

    numbers: IntRangeExpr | None = None
    texts: frozenset[str] | None = None

    def accepts(self, value: ParameterValue) -> bool:
        if self.texts is not None:
            return canonical(value) in self.texts
        if self.numbers is None:
            return True
        if value.type == ParameterValueType.CHUNK_INT:
            return _is_subset(IntRangeExpr.from_str(value.value), self.numbers)
        try:
            return int(value.value) in self.numbers
        except ValueError:
            return False

    def as_numbers(self) -> IntRangeExpr | None:
        """The accepted INT values as a range expression, None when there is none."""
        if self.numbers is not None:
            return self.numbers
        numbers = [int(text) for text in self.texts or () if _is_int(text)]
        return IntRangeExpr.from_list(numbers) if numbers else None


# ---- index sets ---------------------------------------------------------------------------


class IndexSet:
    """Ascending indices of one node of the space, as runs; ``len`` never iterates."""

    size: int
    """How many indices the node has in all, matching or not."""

    def __len__(self) -> int:
        raise NotImplementedError

    def runs(self) -> Iterator[range]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[int]:
        for run in self.runs():
            yield from run

    @property
    def full(self) -> bool:
        return len(self) == self.size


class _Runs(IndexSet):
    def __init__(self, runs: Sequence[range], size: int) -> None:
        self._runs = tuple(run for run in runs if len(run))
        self.size = size

    @cached_property
    def _count(self) -> int:
        return sum(len(run) for run in self._runs)

    def __len__(self) -> int:
        return self._count

    def runs(self) -> Iterator[range]:
        return iter(self._runs)


class _Product(IndexSet):
    """Row-major: the index of (i1, ..., ik) is ((i1 * n2 + i2) * n3 + ...) + ik."""

    def __init__(self, children: Sequence[IndexSet]) -> None:
        self._children = tuple(children)
        self.size = math.prod(child.size for child in children)

    @cached_property
    def _count(self) -> int:
        return math.prod(len(child) for child in self._children)

    def __len__(self) -> int:
        return self._count

    def runs(self) -> Iterator[range]:
        if self.full:
            yield range(self.size)
        elif len(self):
            yield from _product_runs(self._children)


def _product_runs(children: Sequence[IndexSet]) -> Iterator[range]:
    first, rest = children[0], children[1:]
    if not rest:
        yield from first.runs()
        return
    stride = math.prod(child.size for child in rest)
    if all(child.full for child in rest):  # each outer index selects a whole block
        for run in first.runs():
            if run.step == 1:
                yield range(run.start * stride, run.stop * stride)
            else:
                yield from (range(outer * stride, (outer + 1) * stride) for outer in run)
        return
    for outer in first:
        base = outer * stride
        for run in _product_runs(rest):
            yield range(base + run.start, base + run.stop, run.step)


class _Association(IndexSet):
    """Index i of an association is index i of every child: the intersection."""

    def __init__(self, children: Sequence[IndexSet]) -> None:
        self._children = tuple(child for child in children if not child.full) or (children[0],)
        self.size = children[0].size

    @cached_property
    def _count(self) -> int:
        return sum(len(run) for run in self.runs())

    def __len__(self) -> int:
        return self._count

    def runs(self) -> Iterator[range]:
        runs = self._children[0].runs()
        for child in self._children[1:]:
            runs = _intersect_runs(runs, child.runs())
        return runs


def _intersect_runs(left: Iterator[range], right: Iterator[range]) -> Iterator[range]:
    """Two ascending run sequences with disjoint spans: their common indices, as runs."""
    a, b = next(left, None), next(right, None)
    while a is not None and b is not None:
        common = intersect_progressions(a, b)
        if len(common):
            yield common
        if a[-1] < b[-1]:
            a = next(left, None)
        else:
            b = next(right, None)


def intersect_progressions(a: range, b: range) -> range:
    """The values two ascending, non-empty ranges share: again an arithmetic progression."""
    low, high = max(a.start, b.start), min(a[-1], b[-1])
    if low > high:
        return range(0)
    gcd = math.gcd(a.step, b.step)
    if (b.start - a.start) % gcd:
        return range(0)
    lcm = a.step // gcd * b.step
    # Chinese remainder: x = a.start + a.step * k, with x = b.start modulo b.step.
    modulus = b.step // gcd
    k = (b.start - a.start) // gcd * pow(a.step // gcd, -1, modulus) % modulus if modulus > 1 else 0
    solution = a.start + a.step * k
    first = low + (solution - low) % lcm
    return range(first, high + 1, lcm)


# ---- one task parameter -------------------------------------------------------------------


def _ascending(values: range) -> range:
    return values if values.step > 0 else values[::-1]


def _segments(expr: IntRangeExpr) -> list[range]:
    """The range expression's parts in iteration order, each as a Python range (which may
    descend: ``10-1:-1`` counts down)."""
    segments = []
    for part in expr.ranges:
        descending = len(part) > 1 and part[0] != part.start
        if descending:
            segments.append(range(part.end, part.start - 1, -part.step))
        else:
            segments.append(range(part.start, part.end + 1, part.step))
    return segments


def _is_subset(values: IntRangeExpr, allowed: IntRangeExpr) -> bool:
    wanted = [_ascending(segment) for segment in _segments(allowed)]
    for segment in _segments(values):
        ascending = _ascending(segment)
        shared = sum(len(intersect_progressions(ascending, other)) for other in wanted)
        if shared != len(segment):
            return False
    return True


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _expression_indices(expr: IntRangeExpr, allowed: IntRangeExpr | None) -> IndexSet:
    """Indices of an INT range expression whose values are in ``allowed``, by arithmetic."""
    if allowed is None:
        return _Runs([], len(expr))
    wanted = [_ascending(segment) for segment in _segments(allowed)]
    runs: list[range] = []
    offset = 0
    for segment in _segments(expr):
        found = []
        for other in wanted:
            shared = intersect_progressions(_ascending(segment), other)
            if len(shared):
                first = (shared[0] - segment.start) // segment.step
                last = (shared[-1] - segment.start) // segment.step
                low, high = min(first, last), max(first, last)
                found.append(
                    range(offset + low, offset + high + 1, shared.step // abs(segment.step))
                )
        runs.extend(sorted(found, key=lambda run: run.start))
        offset += len(segment)
    return _Runs(runs, len(expr))


def _scanned_indices(values: Sequence[ParameterValue], wanted: Wanted) -> IndexSet:
    """Indices of listed values that ``wanted`` accepts (the model holds the list anyway)."""
    runs: list[range] = []
    start: int | None = None
    for index, value in enumerate(values):
        if wanted.accepts(value):
            start = index if start is None else start
        elif start is not None:
            runs.append(range(start, index))
            start = None
    if start is not None:
        runs.append(range(start, len(values)))
    return _Runs(runs, len(values))


class _Parameters:
    """Each task parameter's values, as the model renders them, built only when asked."""

    def __init__(self, space: StepParameterSpace) -> None:
        self._space = space

    def indices(self, name: str, wanted: Wanted | None) -> IndexSet:
        definition = self._space.taskParameterDefinitions[name]
        kind = ParameterValueType(definition.type.value)
        if kind == ParameterValueType.INT and isinstance(definition.range, IntRangeExpr):
            if wanted is None:
                return _Runs([range(len(definition.range))], len(definition.range))
            return _expression_indices(definition.range, wanted.as_numbers())
        values = self._values(name, definition)
        if wanted is None:
            return _Runs([range(len(values))], len(values))
        return _scanned_indices(values, wanted)

    def _values(self, name: str, definition: Any) -> list[ParameterValue]:
        # A one-parameter space of the same definition: the model renders (and chunks) it.
        alone = type(self._space)(taskParameterDefinitions={name: definition})
        return [values[name] for values in StepParameterSpaceIterator(space=alone)]


def matching_indices(space: StepParameterSpace, filters: Mapping[str, Wanted]) -> IndexSet:
    """The indices of ``space`` (not adaptively chunked) whose values every filter accepts.

    Indices are those of ``StepParameterSpaceIterator(space=space)``, in ascending order.
    """
    combination = space.combination or " * ".join(space.taskParameterDefinitions)
    tree = CombinationExpressionParser().parse(combination)
    parameters = _Parameters(space)
    return _node_indices(tree, lambda name: parameters.indices(name, filters.get(name)))


def _node_indices(node: CombinationExpressionNode, leaf: Callable[[str], IndexSet]) -> IndexSet:
    if isinstance(node, CombinationExpressionIdentifierNode):
        return leaf(node.parameter)
    children = [_node_indices(child, leaf) for child in getattr(node, "children", ())]
    if isinstance(node, CombinationExpressionAssociationNode):
        return _Association(children)
    return _Product(children)


def space_size(space: StepParameterSpace, size_of: Callable[[str], int]) -> int:
    """How many tasks ``space`` has when task parameter ``name`` has ``size_of(name)`` values.

    Counts without the model building any value (a chunked parameter's chunk list included).
    """
    combination = space.combination or " * ".join(space.taskParameterDefinitions)
    tree = CombinationExpressionParser().parse(combination)
    return len(_node_indices(tree, lambda name: _Runs([range(size_of(name))], size_of(name))))
