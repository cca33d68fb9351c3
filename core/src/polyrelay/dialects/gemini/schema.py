"""JSON Schema → the OpenAPI subset Gemini's ``functionDeclarations`` accept."""

from __future__ import annotations

from typing import Any

from polyrelay.dialects.gemini.protojson import json_text

# Constraints Gemini rejects but the model should still hear about: moved into description.
_SCHEMA_HINTS = (
    "minLength", "maxLength", "pattern", "minItems", "maxItems", "uniqueItems", "format", "default",
    "exclusiveMinimum", "exclusiveMaximum",
)


# Besides type/properties/items/required/enum, the only keywords kept (Gemini answers
# "Unknown name" for anything else, so an allow-list beats a deny-list).
_SCHEMA_SCALARS: dict[str, type | tuple[type, ...]] = {
    "description": str, "minimum": (int, float), "maximum": (int, float), "multipleOf": (int, float)}


# Keywords that mark a dict as a schema rather than a bare property map.
_SCHEMA_WORDS = frozenset({
    *_SCHEMA_HINTS, *_SCHEMA_SCALARS, "type", "properties", "items", "required", "enum", "const", "anyOf", "oneOf",
    "allOf", "$ref", "$schema", "$id", "$defs", "definitions", "additionalProperties", "patternProperties",
    "propertyNames", "title", "nullable", "examples", "if", "then", "else", "not",
})


_MAX_REF_DEPTH = 8  # a self-referencing definition must not expand forever


_BRANCH_RANK = {"object": 5, "array": 4, "string": 3, "number": 2, "integer": 2, "boolean": 1}


_PLACEHOLDER_REASON = "Brief explanation of why you are calling this tool"


def clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a JSON schema into the subset Gemini's ``parameters`` accepts.

    Drops unsupported keywords (keeping constraints as description hints),
    inlines local ``$ref``s, merges ``allOf``, picks the strongest
    ``anyOf``/``oneOf`` branch, collapses type arrays, stringifies enums,
    promotes ``required: true``, prunes ``required`` and removes placeholder
    properties.  Property *names* are never mistaken for keywords.  The input
    is not modified.
    """
    if not isinstance(schema, dict):
        return {"type": "object", "properties": {}}
    defs: dict[str, Any] = {}
    for key in ("definitions", "$defs"):
        if isinstance(schema.get(key), dict):
            defs.update(schema[key])
    if schema and "type" not in schema and all(
        isinstance(v, dict) and k not in _SCHEMA_WORDS for k, v in schema.items()
    ):
        schema = {"type": "object", "properties": schema}  # a bare property map (seen from MCP tools)
    cleaned = _clean_node(schema, defs, 0)
    if "type" not in cleaned:
        cleaned["type"] = "object"
    if str(cleaned["type"]).lower() == "object":
        cleaned.setdefault("properties", {})
    return cleaned


def _resolve(node: Any, defs: dict[str, Any], depth: int) -> tuple[dict[str, Any], int]:
    """Inline a local ``$ref`` (siblings win), or leave a description hint."""
    if not isinstance(node, dict):
        return {}, depth  # boolean schemas: "anything", which Gemini expresses as no constraint
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return node, depth
    rest = {k: v for k, v in node.items() if k != "$ref"}
    name = ref.rsplit("/", 1)[-1]
    target = defs.get(name) if ref.startswith("#/") else None
    if isinstance(target, dict) and depth < _MAX_REF_DEPTH:
        return _resolve({**target, **rest}, defs, depth + 1)
    rest["description"] = _hinted(rest.get("description"), [f"See: {name}"])
    rest.setdefault("type", "object")
    return rest, depth


def _hinted(description: Any, hints: list[str]) -> str:
    text = description if isinstance(description, str) else ""
    if not hints:
        return text
    return f"{text} ({', '.join(hints)})" if text else ", ".join(hints)


def _type_name(node: dict[str, Any]) -> str:
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if isinstance(k, str) and k.lower() != "null"), "null")
    return kind.lower() if isinstance(kind, str) else ""


def _merge_branch(node: dict[str, Any], branch: dict[str, Any]) -> None:
    for key, value in branch.items():
        if key == "properties" and isinstance(value, dict):
            node.setdefault("properties", {})
            if isinstance(node["properties"], dict):
                node["properties"] = {**value, **node["properties"]}
        elif key == "required" and isinstance(value, list):
            have = node.get("required")
            have = have if isinstance(have, list) else []
            node["required"] = have + [r for r in value if r not in have]
        else:
            node.setdefault(key, value)


def _branches(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _clean_node(raw: Any, defs: dict[str, Any], depth: int) -> dict[str, Any]:
    node, depth = _resolve(raw, defs, depth)
    node = dict(node)
    if "const" in node:
        node.setdefault("enum", [node["const"]])
    for branch in _branches(node.pop("allOf", None)):
        _merge_branch(node, _resolve(branch, defs, depth)[0])
    for key in ("then", "else"):  # conditional branches: keep their properties, lose the condition
        branch = node.get(key)
        if isinstance(branch, dict) and isinstance(branch.get("properties"), dict):
            node["properties"] = {**branch["properties"], **(node.get("properties") or {})}
    for key in ("anyOf", "oneOf"):
        branches = [_resolve(b, defs, depth)[0] for b in _branches(node.pop(key, None))]
        branches = [b for b in branches if _type_name(b) != "null" or "properties" in b]
        if branches:
            best = max(branches, key=lambda b: _BRANCH_RANK.get(_type_name(b), 0))
            _merge_branch(node, best)

    out: dict[str, Any] = {}
    hints: list[str] = []
    promoted: list[str] = []
    for key, value in node.items():
        if key == "properties" and isinstance(value, dict):
            props = {}
            for name, prop in value.items():
                if isinstance(prop, dict) and prop.get("required") is True:
                    promoted.append(name)
                props[name] = _clean_node(prop, defs, depth)
            out["properties"] = props
        elif key == "items" and isinstance(value, (dict, list)) and value:
            # A tuple form ([schema, ...]) has no Gemini twin: its first member stands for all.
            items = _clean_node(value[0] if isinstance(value, list) else value, defs, depth)
            if items:
                out["items"] = items
        elif key == "type":
            out["type"] = value if isinstance(value, str) else (_type_name(node) or "string")
        elif key == "enum" and isinstance(value, list):
            values = [v for v in value if v is not None]
            if values and not all(isinstance(v, bool) for v in values):
                out["enum"] = [v if isinstance(v, str) else json_text(v) for v in values]
        elif key in _SCHEMA_HINTS:
            hints.append(f"{key}: {json_text(value)}")
        elif key == "additionalProperties" and value is False:
            hints.append("no additional properties")
        elif key == "required" and isinstance(value, list):
            out["required"] = [r for r in value if isinstance(r, str)]
        elif key in _SCHEMA_SCALARS and isinstance(value, _SCHEMA_SCALARS[key]) and not isinstance(value, bool):
            out[key] = value
        # Everything else ($schema, title, nullable, x-*, const/anyOf/$ref once applied...) is dropped.
    if "enum" in out:
        out["type"] = "string"  # Gemini enums are strings only
    if hints:
        out["description"] = _hinted(out.get("description"), hints)
    if _type_name(out) == "array" and "items" not in out:
        out["items"] = {"type": "string"}  # Gemini rejects arrays without items
    kept = out.get("properties")
    if isinstance(kept, dict):
        kept.pop("_", None)
        reason = kept.get("reason")
        if len(kept) == 1 and isinstance(reason, dict) and reason.get("description") == _PLACEHOLDER_REASON:
            kept.clear()
    required = list(dict.fromkeys([*(out.get("required") or []), *promoted]))
    required = [r for r in required if isinstance(kept, dict) and r in kept]
    if required:
        out["required"] = required
    else:
        out.pop("required", None)
    return out
