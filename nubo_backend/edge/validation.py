"""Input at the edge: JSON bodies and query strings checked against pydantic models.

Every problem becomes a 422 naming each bad field; a body that is not JSON is a 400.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema
from sanic import Request

from nubo_backend.edge.errors import NuboError, unprocessable

M = TypeVar("M", bound=BaseModel)


class OpenAPI30Schema(GenerateJsonSchema):
    """JSON Schema in the dialect of the OpenAPI 3.0 document the models are published in:
    an optional field is `nullable: true`, not an alternative `{"type": "null"}` (3.1 only)."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        inner = self.generate_inner(schema["schema"])
        if "$ref" in inner:
            return {"allOf": [inner], "nullable": True}
        return {**inner, "nullable": True}


class Body(BaseModel):
    """Base of request bodies: unknown fields are refused, types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)
    # Fields that may hold NUL characters: only secrets that are hashed, never stored as text.
    nul_allowed: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("schema_generator", OpenAPI30Schema)
        schema = super().model_json_schema(*args, **kwargs)
        for name, field in schema.get("properties", {}).items():
            if name in cls.nul_allowed:  # secrets, taken byte for byte
                continue
            _refuse_nul(field)
            if field.get("minLength", 0) >= 1:  # surrounding spaces are stripped before the check
                field.update(with_pattern(field, NONBLANK))
        return schema


def given(field: str, json_type: str) -> dict[str, Any]:
    """JSON Schema of an object in which `field` is present and not null (OpenAPI 3.0: a type
    without `nullable` refuses null), for the rules across fields of a model's schema."""
    return {"required": [field], "properties": {field: {"type": json_type}}}


def not_null(schema: dict[str, Any], *fields: str) -> None:
    """In a model's schema: `fields` may be left out but not sent as null (their validators
    refuse it; the Python type is Optional only so that they can be absent)."""
    for name in fields:
        schema["properties"][name].pop("nullable", None)
        schema["properties"][name].pop("default", None)


def _refuse_nul(schema: dict[str, Any]) -> None:
    """Say in a field's schema that its strings hold no U+0000 (the patterns of OneLine and
    MultiLine already do)."""
    if schema.get("type") == "string" and "\\u0000" not in str(schema):
        schema.update(with_pattern(schema, NO_NUL))
    if isinstance(schema.get("items"), dict):
        _refuse_nul(schema["items"])
    for alternative in schema.get("anyOf", []) + schema.get("allOf", []):
        if isinstance(alternative, dict):
            _refuse_nul(alternative)


class Query(BaseModel):
    """Base of query-string models: values arrive as text, so they are coerced."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


def _whole_number(value: Any) -> Any:
    # Lax int parsing would also take "5.0", "+5", "1_0" or full-width digits from a URL.
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("Must be a whole number")
    return value


# A number given in a query string: ASCII digits only.
QueryInt = Annotated[int, BeforeValidator(_whole_number)]


class _NoControls:
    """Annotation: the text holds no control character (Unicode Cc) other than `allowed`; the
    published schema says so with a pattern (U+0000 included: _nul_details refuses it anywhere)."""

    def __init__(self, allowed: str) -> None:
        self.allowed = allowed
        kept = "".join(sorted(allowed))
        ranges = [(0x00, 0x1F), (0x7F, 0x9F)]
        excluded = "".join(_char_class(lo, hi, kept) for lo, hi in ranges)
        self.pattern = f"^[^{excluded}]*$"
        # The same, with at least one character that stripping leaves (for required text).
        self.nonblank_pattern = f"^[^{excluded}]*[^\\s{excluded}][^{excluded}]*$"

    def check(self, value: str) -> str:
        # NUL has its own check, for every field (_nul_details).
        if any(unicodedata.category(c) == "Cc" and c not in self.allowed and c != "\x00" for c in value):
            raise ValueError("Must not contain control characters")
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: Any) -> JsonSchemaValue:
        return with_pattern(handler(schema), self.pattern)


def _char_class(lo: int, hi: int, kept: str) -> str:
    """`\\uXXXX-\\uYYYY` pieces of a regex class for lo..hi, leaving out the characters in kept."""
    pieces, start = [], None
    for code in range(lo, hi + 2):
        inside = code <= hi and chr(code) not in kept
        if inside and start is None:
            start = code
        elif not inside and start is not None:
            end = code - 1
            pieces.append(f"\\u{start:04x}" + (f"-\\u{end:04x}" if end > start else ""))
            start = None
    return "".join(pieces)


def with_pattern(schema: JsonSchemaValue, pattern: str) -> JsonSchemaValue:
    """schema, also required to match pattern (beside a pattern it may have already)."""
    if "pattern" not in schema:
        return {**schema, "pattern": pattern}
    return {**schema, "allOf": [*schema.get("allOf", []), {"pattern": pattern}]}


class LengthSetting:
    """Annotation: the text's longest length is the setting named (checked by the service, as
    settings are not known when models are built); openapi_errors writes it into the document."""

    KEY = "x-nubo-max-length-setting"

    def __init__(self, setting: str) -> None:
        self.setting = setting

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: Any) -> JsonSchemaValue:
        return {**handler(schema), self.KEY: self.setting}


# Text people read: a name on one line, or prose that may break lines and use tabs.
OneLine = _NoControls("")
MultiLine = _NoControls("\n\r\t")
# Any other text field: _nul_details refuses U+0000 in every field but the nul_allowed ones.
NO_NUL = "^[^\\u0000]*$"
NONBLANK = "\\S"  # somewhere in the text (JSON Schema patterns are not anchored)


def _details(exc: ValidationError) -> list[dict[str, str]]:
    details = []
    for err in exc.errors(include_url=False):
        field = ".".join(str(p) for p in err["loc"]) or "body"
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "Unknown field"
        elif err["type"] == "value_error":  # our validators' own words, without pydantic's prefix
            message = str(err["ctx"]["error"])
        details.append({"field": field, "message": message})
    return details


def _summary(details: list[dict[str, str]]) -> str:
    fields = ", ".join(dict.fromkeys(d["field"] for d in details))
    return f"Invalid input: {fields}"


# Bounds on a JSON document's shape, checked before anything walks it recursively. Our
# deepest body is an object holding a list of scalars (depth 2) and our longest list has
# 100 items; these leave room for that and refuse, for the cost of one flat walk, the deep
# or sprawling documents that would otherwise cost a recursion per level (and end in a
# RecursionError near orjson's own limit of 1024 levels).
MAX_JSON_DEPTH = 8
MAX_JSON_VALUES = 1000


def _too_complex(message: str) -> NuboError:
    return unprocessable([{"field": "body", "message": message}], f"Invalid input: {message.lower()}")


def _nul_fields(data: dict[str, Any], fields: set[str]) -> list[str]:
    """Walk `data` once, iteratively, within MAX_JSON_DEPTH and MAX_JSON_VALUES (else 422),
    and name each string under one of `fields` that holds U+0000."""
    found: list[str] = []
    budget = MAX_JSON_VALUES
    # A stack popped from the end, filled in reverse: fields come out in document order.
    stack: list[tuple[Any, str, int]] = [(v, k, 1) for k, v in reversed(data.items()) if k in fields]
    budget -= len(data)
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                found.append(path)
            continue
        if isinstance(value, dict):
            items: Any = value.items()
        elif isinstance(value, list):
            items = enumerate(value)
        else:
            continue
        if depth >= MAX_JSON_DEPTH:
            raise _too_complex(f"Nested too deeply (at most {MAX_JSON_DEPTH} levels)")
        budget -= len(value)
        if budget < 0:
            raise _too_complex(f"Too many values (at most {MAX_JSON_VALUES})")
        stack.extend(reversed([(item, f"{path}.{key}", depth + 1) for key, item in items]))
    return found


def _shape_and_nul_details(model: type[BaseModel], data: Any) -> list[dict[str, str]]:
    """PostgreSQL text cannot hold U+0000: name each field that does, so that it is refused
    here rather than by the database in the middle of the request. The same walk bounds the
    document's depth and size, before pydantic or anything else recurses into it."""
    if not isinstance(data, dict):
        return []
    allowed = getattr(model, "nul_allowed", frozenset())
    # Every top-level value is walked for the bounds, even fields the model will refuse.
    walked = _nul_fields(data, set(data))
    return [
        {"field": field, "message": "Must not contain NUL characters (U+0000)"}
        for field in walked
        if (name := field.partition(".")[0]) in model.model_fields and name not in allowed
    ]


def validate(model: type[M], data: Any) -> M:
    details = _shape_and_nul_details(model, data)
    try:
        result = model.model_validate(data)
    except ValidationError as exc:
        details += _details(exc)
    if details:
        raise unprocessable(details, _summary(details))
    return result


def _is_json(content_type: str) -> bool:
    # application/json or a +json type, parameters (charset) aside. Refusing the rest keeps a
    # cross-site form post (text/plain, urlencoded) from reaching a handler as JSON.
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def parse_body(request: Request, model: type[M]) -> M:
    if not request.body:
        raise NuboError(422, "validation_error", "Request body is required (JSON object)",
                        details=[{"field": "body", "message": "Field required"}])
    if not _is_json(request.headers.get("content-type", "")):
        raise NuboError(415, "unsupported_media_type", "Request body must be JSON (Content-Type: application/json)")
    data = request.json  # Sanic raises BadRequest on malformed JSON; the handler maps it
    if not isinstance(data, dict):
        raise NuboError(422, "validation_error", "Request body must be a JSON object",
                        details=[{"field": "body", "message": "Expected a JSON object"}])
    return validate(model, data)


def parse_query(request: Request, model: type[M]) -> M:
    # Blank values kept: `?limit=` is an invalid limit (422), not an absent one.
    args = request.get_args(keep_blank_values=True)
    return validate(model, {k: v[0] for k, v in args.items()})
