"""YAML (and JSON) as reelflow reads plans and profiles: safe, and strict about duplicate keys, which plain
YAML loaders resolve silently by keeping the last value (`seconds: 4` then `seconds: 40` would be 40)."""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode

_MERGE = "tag:yaml.org,2002:merge"


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]  # LibYAML's parser
    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:
                continue  # `<<: *defaults` may be overridden by the mapping's own keys: that is its purpose
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # an unhashable key: the base loader reports it
            if duplicate:
                raise ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def load_yaml(text: str) -> Any:
    """The document in `text`; raises `yaml.YAMLError` (with the line) for malformed text or a repeated key."""
    return yaml.load(text, Loader=_StrictLoader)  # a safe loader's subclass: safe
