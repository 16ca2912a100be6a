"""YAML anchors and aliases within bounds. An alias is a reference, so a few hundred bytes of
nested aliases (a "billion laughs") stand for billions of nodes, and every walk over the config
(expanding ${ENV}, validating) would visit each: `validate` ran past a minute and 1.85 GB on 608
bytes. A config with more aliases, or that stands for more nodes, than any real one is refused
with one line."""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError

MAX_ALIASES = 1000
MAX_NODES = 200_000  # nodes once every alias is expanded; a large real config has a few thousand


class AliasesRefused(ComposerError):
    def __str__(self) -> str:  # one line: the loader says where
        return str(self.problem)


class BoundedAliases:
    """Mixed into a yaml Loader (before it): counts aliases while composing and measures the
    expanded document before anything is constructed from it."""

    _aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):  # type: ignore[attr-defined]
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark  # type: ignore[attr-defined]
                raise AliasesRefused(None, None, f"more than {MAX_ALIASES} aliases (*name); refused", mark)
        return super().compose_node(parent, index)  # type: ignore[misc]

    def get_single_node(self) -> Any:
        node = super().get_single_node()  # type: ignore[misc]
        if node is not None and self._aliases and expanded_size(node, {}) > MAX_NODES:
            problem = f"its aliases expand to more than {MAX_NODES} values (an alias bomb?); refused"
            raise AliasesRefused(None, None, problem, node.start_mark)
        return node


def expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Nodes in the document with every alias expanded, each shared node measured once; a node
    that contains itself counts as too many."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    sizes[key] = MAX_NODES + 1  # while being measured: reaching it again is a cycle
    total = 1
    if isinstance(node, yaml.SequenceNode):
        children: list[yaml.Node] = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    else:
        children = []
    for child in children:
        total += expanded_size(child, sizes)
        if total > MAX_NODES:
            break
    sizes[key] = total
    return total
