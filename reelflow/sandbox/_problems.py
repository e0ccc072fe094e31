"""API errors as the real service words them, and request-body parsing."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

# Data URLs of reference images may be up to 20 MiB (`image_url.maxLength` in the spec).
MAX_FIELD_BYTES = 21 * 1024 * 1024


class ApiProblem(Exception):
    """An error answer: status, message and detail (param, code, type), extra headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str = "invalid_request_error",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error = {"message": message, "type": type, "param": param, "code": code}
        self.headers = dict(headers or {})

    @property
    def body(self) -> dict[str, Any]:
        """As OpenAI's API words it (each pose renders its own envelope)."""
        return {"error": self.error}


def quoted_list(values: Iterable[object]) -> str:
    """`'a'`, `'a' and 'b'`, `'a', 'b', and 'c'`: the API's way of listing allowed values."""
    items = [f"'{v}'" for v in values]
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + ", and " + items[-1]


def invalid_value(param: str, value: object, allowed: Iterable[object]) -> ApiProblem:
    return ApiProblem(
        400, f"Invalid value: '{value}'. Supported values are: {quoted_list(allowed)}.",
        param=param, code="invalid_value",
    )


def unknown_parameter(name: str) -> ApiProblem:
    return ApiProblem(400, f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")


def missing_parameter(name: str) -> ApiProblem:
    return ApiProblem(400, f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")


def invalid_type(name: str, expected: str, value: object) -> ApiProblem:
    got = {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "an array",
           dict: "an object", Upload: "a file"}.get(type(value), "null" if value is None else "a value")
    return ApiProblem(
        400, f"Invalid type for '{name}': expected {expected}, but got {got} instead.",
        param=name, code="invalid_type",
    )


def not_found(kind: str, identifier: str, param: str | None = None) -> ApiProblem:
    return ApiProblem(404, f"No {kind} found with id '{identifier}'.", param=param, code="not_found")


_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def nest(items: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Turn bracketed multipart keys (`input_reference[image_url]`, `characters[][id]`) into objects."""
    result: dict[str, Any] = {}
    for key, value in items:
        match = _KEY.match(key)
        if not match:
            raise unknown_parameter(key)
        path = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        _assign(result, path, value)
    return result


def _assign(target: dict[str, Any], path: list[str], value: Any) -> None:
    head, rest = path[0], path[1:]
    if not rest:
        target[head] = value
    elif rest[0] == "":
        items = target.setdefault(head, [])
        if not isinstance(items, list):
            raise invalid_type(head, "an array", items)
        leaf = rest[1:]
        if not leaf:
            items.append(value)
            return
        if not items or not isinstance(items[-1], dict) or leaf[0] in items[-1]:
            items.append({})
        _assign(items[-1], leaf, value)
    else:
        child = target.setdefault(head, {})
        if not isinstance(child, dict):
            raise invalid_type(head, "an object", child)
        _assign(child, rest, value)


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart body, read into memory."""

    filename: str
    data: bytes


async def _loaded(value: UploadFile | str) -> Upload | str:
    if isinstance(value, str):
        return value
    return Upload(value.filename or "upload", await value.read())


async def read_fields(request: Request) -> dict[str, Any]:
    """The request body as one object, whether it came as multipart or JSON."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        async with request.form(max_part_size=MAX_FIELD_BYTES) as form:
            return nest([(key, await _loaded(value)) for key, value in form.multi_items()])
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as e:
        raise ApiProblem(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
            "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid "
            "JSON.)",
        ) from e
    if not isinstance(body, dict):
        raise invalid_type("body", "an object", body)
    return body


def bearer_key(request: Request) -> str | None:
    """The key of an `Authorization: Bearer KEY` header."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    return (key.strip() or None) if scheme.lower() == "bearer" else None


def check_known(fields: Mapping[str, Any], allowed: Iterable[str]) -> None:
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise unknown_parameter(unknown[0])


def required_text(fields: Mapping[str, Any], name: str, max_chars: int) -> str:
    value = fields.get(name)
    if value is None or value == "":
        raise missing_parameter(name)
    if not isinstance(value, str):
        raise invalid_type(name, "a string", value)
    if len(value) > max_chars:
        raise ApiProblem(
            400, f"Invalid '{name}': string too long. Expected a string with maximum length {max_chars}, "
            f"but got a string with length {len(value)} instead.", param=name, code="string_above_max_length",
        )
    return value


def optional_text(fields: Mapping[str, Any], name: str, default: str) -> str:
    value = fields.get(name, default)
    if not isinstance(value, str):
        raise invalid_type(name, "a string", value)
    return value
