"""`schemas/*.json` are generated from the pydantic models here; at run time they are the contract.

`kmo-worker schemas --write` regenerates the files; a unit test fails when they differ from the
models, so the two can never drift. Validation loads exactly these files (the ones shipped in the
repository, or a folder named by the caller) and compiles one validator per message type.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator, FormatChecker
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import CoreSchema
from rfc3339_validator import validate_rfc3339

from worker.contracts import versions
from worker.contracts.envelope import INBOUND_ENVELOPES, OUTBOUND_ENVELOPES

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _schema_dir() -> Path:
    """The repository's schemas/ in a checkout; its copy inside the package once installed."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "schemas"
    return installed if installed.is_dir() else package.parent / "schemas"


SCHEMA_DIR = _schema_dir()


class _Draft202012(GenerateJsonSchema):
    def generate(self, schema: CoreSchema, mode: JsonSchemaMode = "validation") -> JsonSchemaValue:
        generated = super().generate(schema, mode=mode)
        return {"$schema": DIALECT, **generated}


def generated() -> dict[str, dict[str, Any]]:
    """File name → schema, for every message type of the contract."""
    models: dict[str, tuple[str, type[BaseModel]]] = {
        **{name: ("inbound", model) for name, model in INBOUND_ENVELOPES.items()},
        **{name: ("outbound", model) for name, model in OUTBOUND_ENVELOPES.items()},
    }
    files = {}
    for name, (direction, model) in sorted(models.items()):
        schema = model.model_json_schema(schema_generator=_Draft202012)
        schema["$id"] = versions.uri(name)  # what `dataschema` names
        schema["x-kmo-version"] = versions.CURRENT[name]
        schema["description"] = f"{direction} CloudEvent `{name}` (see contract.md)"
        files[f"{name}.json"] = schema
    return files


def render(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def documents() -> dict[str, dict[str, Any]]:
    """Every generated file of schemas/: the JSON Schemas and the AsyncAPI document."""
    from worker.contracts import asyncapi

    return {**generated(), asyncapi.FILE: asyncapi.document()}


def write(folder: Path = SCHEMA_DIR) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, schema in documents().items():
        path = folder / file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


@dataclass(frozen=True)
class Violation:
    pointer: str
    message: str

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.message}"


class Validators:
    """Two validators per message type, both built from the schema files.

    The authoritative one is jsonschema's draft 2020-12 validator. It is slow (pure Python,
    walking the schema for every document), so jsonschema-rs (compiled, draft 2020-12, formats
    checked) answers first. Only when the fast one says no does the authoritative one decide, and
    explain: a rejection always carries jsonschema's JSON pointer and message. A property test
    proves that the pair accepts exactly what the authoritative validator accepts.
    """

    def __init__(self, folder: Path = SCHEMA_DIR) -> None:
        self._by_type: dict[str, Draft202012Validator] = {}
        self._fast: dict[str, Any] = {}
        self._schemas: dict[str, dict[str, Any]] = {}
        self._closed: dict[str, Any] = {}  # the same schema with no field beyond those it names
        for path in sorted(folder.glob("*.json")):
            schema = json.loads(path.read_text(encoding="utf-8"))
            Draft202012Validator.check_schema(schema)
            name = path.name.removesuffix(".json")
            self._schemas[name] = schema
            self._by_type[name] = Draft202012Validator(schema, format_checker=FormatChecker())
            self._fast[name] = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
            self._closed[name] = jsonschema_rs.Draft202012Validator(_closed(schema))
        if not self._by_type:
            raise FileNotFoundError(f"no JSON Schema files in {folder}")

    def check(self, type_name: str, document: Any, *, own_time: bool = False) -> Violation | None:
        """The verdict of the authoritative validator, usually at the fast validator's cost.
        `own_time`: the envelope's `time` was written by this worker from a datetime, which
        cannot hold the leap second that only the authoritative validator refuses."""
        if not self._fast[type_name].is_valid(document):
            return self.first_violation(type_name, document)
        if own_time:
            return None
        # jsonschema-rs takes a leap second (23:59:60) in a date-time; the authoritative checker
        # does not. The envelope's `time` is checked exactly here; the dates in `data` are parsed
        # strictly by the models, and a document they refuse is explained by the authoritative
        # validator.
        time = document.get("time") if isinstance(document, dict) else None
        if isinstance(time, str) and not validate_rfc3339(time):
            return self.first_violation(type_name, document)
        return None

    def unknown_fields(self, type_name: str, data: Any) -> list[str]:
        """JSON pointers (under /data) of the fields in `data` its schema does not name. A
        compiled check answers first: most messages have none."""
        if self._closed[type_name].is_valid(data):
            return []
        schema = self._schemas[type_name]
        return list(_unknown(data, schema["properties"]["data"], schema["$defs"], "/data"))

    def knows(self, type_name: str) -> bool:
        return type_name in self._by_type

    def violations(self, type_name: str, document: Any) -> Iterator[Violation]:
        errors = sorted(self._by_type[type_name].iter_errors(document), key=lambda e: e.path)
        for error in errors:
            pointer = "/" + "/".join(str(part) for part in error.absolute_path)
            yield Violation(pointer if error.absolute_path else "", error.message)

    def first_violation(self, type_name: str, document: Any) -> Violation | None:
        return next(self.violations(type_name, document), None)


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema of the envelope's `data` with `additionalProperties: false` on each object it
    defines: a document is valid against it only if it holds no field the contract does not
    name."""
    definitions = json.loads(json.dumps(schema["$defs"]))
    for definition in definitions.values():
        if "properties" in definition:
            definition["additionalProperties"] = False
    return {"$defs": definitions, **schema["properties"]["data"]}


def _unknown(value: Any, schema: Any, definitions: dict[str, Any], at: str) -> Iterator[str]:
    """Walk `value` beside its schema; yield where a field is not named (`$ref`, `anyOf`,
    `oneOf`, `allOf` and array `items` followed; a field any alternative names is known)."""
    alternatives = _alternatives(schema, definitions)
    if isinstance(value, dict):
        named: dict[str, Any] = {}
        for alternative in alternatives:
            for name, field in alternative.get("properties", {}).items():
                named.setdefault(name, field)
        if not named:
            return
        for name, field in value.items():
            if name in named:
                yield from _unknown(field, named[name], definitions, f"{at}/{name}")
            else:
                yield f"{at}/{name}"
    elif isinstance(value, list):
        items = next((a["items"] for a in alternatives if "items" in a), None)
        for index, item in enumerate(value if items is not None else []):
            yield from _unknown(item, items, definitions, f"{at}/{index}")


def _alternatives(schema: Any, definitions: dict[str, Any]) -> list[dict[str, Any]]:
    if not isinstance(schema, dict):
        return []
    if "$ref" in schema:
        return _alternatives(definitions[schema["$ref"].rsplit("/", 1)[-1]], definitions)
    found = [schema]
    for key in ("anyOf", "oneOf"):
        for option in schema.get(key, []):
            found += _alternatives(option, definitions)
    return found
