"""Is `schemas/` compatible with the last released contract? (`kmo-worker schemas
--check-compatible BASE`, run in CI against the snapshot in `schemas/released/`.)

Inbound, the worker must still accept every message the released version accepted: no field
newly required, no type, format or pattern changed, no enum value or range narrowed, no object
closed. Outbound, a consumer must still find every field it may read, as it was: none removed,
retyped or made optional, no enum value added (a reader with a closed list would break). A
change that does any of that is allowed only with a new major version of the type
(`versions.py`), and, inbound, an upcaster from the old major (`upcasters.py`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from worker.contracts import upcasters

Schema = dict[str, Any]
IGNORED = frozenset({"title", "description", "$comment", "examples", "default"})
LOWER = ("minLength", "minimum", "minItems", "exclusiveMinimum")  # may only go down, inbound
UPPER = ("maxLength", "maximum", "maxItems", "exclusiveMaximum")  # may only go up, inbound


def load(folder: Path) -> dict[str, Schema]:
    """The message schemas of a folder, by type (`schemas/` or a snapshot of it)."""
    return {
        path.name.removesuffix(".json"): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(folder.glob("*.json"))
    }


def problems(base: Mapping[str, Schema], head: Mapping[str, Schema]) -> list[str]:
    found = []
    for name, old in base.items():
        new = head.get(name)
        if new is None:
            found.append(f"{name}: the type is gone")
            continue
        old_major, new_major = _major(old), _major(new)
        inbound = str(old.get("description", "")).startswith("inbound")
        if new_major > old_major:
            if inbound and (name, old_major) not in upcasters.UPCASTERS:
                found.append(f"{name}: major {new_major} needs an upcaster from {old_major}")
            continue
        if new_major < old_major:
            found.append(f"{name}: the major version went down ({old_major} → {new_major})")
            continue
        walk = _narrowed if inbound else _lost
        found += [f"{name}: {problem}" for problem in walk(_data(old), _data(new), old, new)]
    return found


def _major(schema: Schema) -> int:
    return int(str(schema.get("x-kmo-version", "1.0")).split(".")[0])


def _data(schema: Schema) -> Schema:
    return dict(schema["properties"]["data"])


def _resolve(schema: Any, root: Schema) -> Schema:
    while isinstance(schema, dict) and "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema if isinstance(schema, dict) else {}


def _narrowed(
    old: Any, new: Any, old_root: Schema, new_root: Schema, at: str = "/data"
) -> Iterator[str]:
    """Inbound: where `new` refuses what `old` accepted."""
    old, new = _resolve(old, old_root), _resolve(new, new_root)
    added = set(new.get("required", [])) - set(old.get("required", []))
    for field in sorted(added):
        yield f"{at}/{field} is now required"
    if new.get("additionalProperties") is False and old.get("additionalProperties") is not False:
        yield f"{at} no longer takes fields it does not name"
    for key in ("type", "format", "pattern", "const"):
        if key in new and new.get(key) != old.get(key):
            yield f"{at}: {key} changed from {old.get(key)!r} to {new[key]!r}"
    if "enum" in new and not set(old.get("enum", new["enum"])) <= set(new["enum"]):
        gone = sorted(set(old["enum"]) - set(new["enum"]))
        yield f"{at}: no longer accepts {gone}"
    for key in LOWER:
        if key in new and new[key] > old.get(key, float("-inf")):
            yield f"{at}: {key} raised to {new[key]}"
    for key in UPPER:
        if key in new and new[key] < old.get(key, float("inf")):
            yield f"{at}: {key} lowered to {new[key]}"
    yield from _each_field(_narrowed, old, new, old_root, new_root, at)


def _lost(
    old: Any, new: Any, old_root: Schema, new_root: Schema, at: str = "/data"
) -> Iterator[str]:
    """Outbound: where a consumer of `old` would not find what it read, as it was."""
    old, new = _resolve(old, old_root), _resolve(new, new_root)
    for field in sorted(set(old.get("properties", {})) - set(new.get("properties", {}))):
        yield f"{at}/{field} is gone"
    for field in sorted(set(old.get("required", [])) - set(new.get("required", []))):
        if field in new.get("properties", {}):
            yield f"{at}/{field} is no longer always there"
    for key in ("type", "format", "pattern", "const"):
        if old.get(key) != new.get(key) and key in old:
            yield f"{at}: {key} changed from {old[key]!r} to {new.get(key)!r}"
    if "enum" in old and not set(new.get("enum", [])) <= set(old["enum"]):
        yield f"{at}: new values {sorted(set(new.get('enum', [])) - set(old['enum']))}"
    yield from _each_field(_lost, old, new, old_root, new_root, at)


def _each_field(
    walk: Any, old: Schema, new: Schema, old_root: Schema, new_root: Schema, at: str
) -> Iterator[str]:
    old_fields, new_fields = old.get("properties", {}), new.get("properties", {})
    for field in sorted(set(old_fields) & set(new_fields)):
        yield from walk(old_fields[field], new_fields[field], old_root, new_root, f"{at}/{field}")
    for key in ("anyOf", "oneOf"):
        for index, (a, b) in enumerate(zip(old.get(key, []), new.get(key, []), strict=False)):
            yield from walk(a, b, old_root, new_root, f"{at}[{key} {index}]")
    if "items" in old and "items" in new:
        yield from walk(old["items"], new["items"], old_root, new_root, f"{at}/items")
