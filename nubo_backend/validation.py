"""Input at the edge: JSON bodies and query strings checked against pydantic models.

Every problem becomes a 422 naming each bad field; a body that is not JSON is a 400.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema
from sanic import Request

from nubo_backend.errors import NuboError, unprocessable

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
        return super().model_json_schema(*args, **kwargs)


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


def _no_controls(allowed: str) -> Any:
    def check(value: str) -> str:
        # NUL has its own check, for every field (_nul_details).
        if any(unicodedata.category(c) == "Cc" and c not in allowed and c != "\x00" for c in value):
            raise ValueError("Must not contain control characters")
        return value

    return AfterValidator(check)


# Text people read: a name on one line, or prose that may break lines and use tabs.
OneLine = _no_controls("")
MultiLine = _no_controls("\n\r\t")


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


def _nul_fields(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, str):
        if "\x00" in value:
            yield path
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _nul_fields(item, f"{path}.{i}")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _nul_fields(item, f"{path}.{key}")


def _nul_details(model: type[BaseModel], data: Any) -> list[dict[str, str]]:
    """PostgreSQL text cannot hold U+0000: name each field that does, so that it is refused
    here rather than by the database in the middle of the request."""
    if not isinstance(data, dict):
        return []
    allowed = getattr(model, "nul_allowed", frozenset())
    return [
        {"field": field, "message": "Must not contain NUL characters (U+0000)"}
        for name, value in data.items()
        if name in model.model_fields and name not in allowed
        for field in _nul_fields(value, name)
    ]


def validate(model: type[M], data: Any) -> M:
    details = _nul_details(model, data)
    try:
        result = model.model_validate(data)
    except ValidationError as exc:
        details += _details(exc)
    if details:
        raise unprocessable(details, _summary(details))
    return result


def parse_body(request: Request, model: type[M]) -> M:
    if not request.body:
        raise NuboError(422, "validation_error", "Request body is required (JSON object)",
                        details=[{"field": "body", "message": "Field required"}])
    data = request.json  # Sanic raises BadRequest on malformed JSON; the handler maps it
    if not isinstance(data, dict):
        raise NuboError(422, "validation_error", "Request body must be a JSON object",
                        details=[{"field": "body", "message": "Expected a JSON object"}])
    return validate(model, data)


def parse_query(request: Request, model: type[M]) -> M:
    return validate(model, {k: v[0] for k, v in request.args.items()})
