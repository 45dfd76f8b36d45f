"""Exports the raw event contract's JSON Schema: ``python -m schemas.jsonschema_export``
rewrites ``schemas/jsonschema/raw-event-v1.schema.json``; a test keeps it current."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.events import RawEventV1

SCHEMA_PATH = Path(__file__).with_name("jsonschema") / "raw-event-v1.schema.json"


def render() -> str:
    schema = RawEventV1.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main() -> None:
    SCHEMA_PATH.parent.mkdir(exist_ok=True)
    SCHEMA_PATH.write_text(render())
    print(SCHEMA_PATH)


if __name__ == "__main__":
    main()
