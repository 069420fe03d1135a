"""YAML loading that refuses alias bombs and recursive aliases.

PyYAML builds each anchored node once and shares it between its aliases, so loading a "billion
laughs" is quick; the cost comes later, when the model validates, dumps or copies the document and
walks every shared branch once per path to it. Documents with aliases are therefore composed
first, and the number of nodes the aliases add when expanded is counted on the node graph (each
node visited once); over ``ALIAS_EXPANSION_BUDGET`` the document is refused before anything is
built. Text without both an anchor (``&``) and an alias (``*``) marker cannot hold an alias and
is loaded directly. Both paths use libyaml's C loader when it is installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["ALIAS_EXPANSION_BUDGET", "YAML_LOADER", "AliasExpansionError", "load_yaml"]

YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

ALIAS_EXPANSION_BUDGET = 100_000
"""The most nodes that expanding aliases may add to a document (its own nodes are not counted)."""


class AliasExpansionError(yaml.MarkedYAMLError):  # type: ignore[misc]  # untyped in the stubs
    """A document whose aliases expand too far, or refer to a node that contains them."""


def load_yaml(text: str, *, budget: int = ALIAS_EXPANSION_BUDGET) -> Any:
    """``yaml.safe_load(text)``, refusing documents whose aliases expand past ``budget`` nodes."""
    if "&" not in text or "*" not in text:
        return yaml.load(text, Loader=YAML_LOADER)
    loader = YAML_LOADER(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _check_aliases(root, budget)
        return loader.construct_document(root)
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> Iterator[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        yield from node.value
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key
            yield value


def _check_aliases(root: yaml.Node, budget: int) -> None:
    counts = _NodeCounts.of(root)
    added = counts.sizes[id(root)] - len(counts.sizes)
    if added <= budget:
        return
    # The shared (aliased) node that expands the most is the one to show.
    worst = max(
        (key for key, used in counts.uses.items() if used > 1), key=counts.sizes.__getitem__
    )
    node = counts.nodes[worst]
    raise AliasExpansionError(
        None,
        None,
        f"aliases expand this document by {added:,} nodes, over the limit of {budget:,} "
        f"(the document itself has {len(counts.sizes):,}); the node anchored here is used "
        f"{counts.uses[worst]:,} times and is {counts.sizes[worst]:,} nodes each time. "
        "Aliases that nest like this (a 'billion laughs') are refused",
        node.start_mark,
    )


@dataclass(frozen=True)
class _NodeCounts:
    """Per node id: the node, its size with every alias expanded, and how many parents use it."""

    nodes: dict[int, yaml.Node]
    sizes: dict[int, int]
    uses: dict[int, int]

    @classmethod
    def of(cls, root: yaml.Node) -> _NodeCounts:
        """Counted without recursion, so a deep document cannot exhaust the stack."""
        counts = cls({}, {}, {id(root): 1})
        stack: list[tuple[yaml.Node, bool]] = [(root, False)]
        while stack:
            node, children_counted = stack.pop()
            if children_counted:
                counts.sizes[id(node)] = 1 + sum(counts.sizes[id(c)] for c in _children(node))
            elif id(node) not in counts.nodes:
                counts.nodes[id(node)] = node
                stack.append((node, True))
                for child in _children(node):
                    counts.uses[id(child)] = counts.uses.get(id(child), 0) + 1
                    stack.append((child, False))
            elif id(node) not in counts.sizes:
                # Met again while its own children are still being counted: the alias sits
                # inside its anchor.
                raise AliasExpansionError(
                    None,
                    None,
                    "an alias refers to a node that contains it (a recursive document), which "
                    "cannot be expanded; the anchor is here",
                    node.start_mark,
                )
        return counts
