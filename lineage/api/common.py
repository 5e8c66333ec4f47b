"""What every read route shares: errors in Marquez's shape, paging, path values."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import unquote

from fastapi import Request
from fastapi.responses import Response

from lineage.rows import dumps

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000


class ApiError(Exception):
    """A client's mistake or a missing thing: `{"code", "message"}` with that status."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        dumps(body).encode("utf-8"),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def error_response(err: ApiError) -> Response:
    body: dict[str, Any] = {"code": err.status, "message": err.message}
    if err.field is not None:
        body["field"] = err.field
    return json_response(body, err.status)


async def api_error_handler(_request: Request, err: Exception) -> Response:
    assert isinstance(err, ApiError)
    return error_response(err)


def path_value(raw: str) -> str:
    """A path segment as the client meant it (segments arrive still percent-encoded)."""
    return unquote(raw, errors="strict") if "%" in raw else raw


def integer(value: str | None, name: str, default: int, low: int = 0, high: int = MAX_LIMIT) -> int:
    if value is None or value == "":
        return default
    text = value.strip()
    if not text.isascii() or not text.lstrip("-").isdigit() or len(text) > 12:
        raise ApiError(400, f"{name} must be an integer from {low} to {high}", name)
    number = int(text)
    if not low <= number <= high:
        raise ApiError(400, f"{name} must be an integer from {low} to {high}", name)
    return number


def paging(limit: str | None, offset: str | None, default: int = DEFAULT_LIMIT) -> tuple[int, int]:
    return (
        integer(limit, "limit", default),
        integer(offset, "offset", 0, high=2**31 - 1),
    )


def timestamp(value: str | None, name: str) -> datetime | None:
    """An ISO-8601 date or date-time (naive means UTC); 400 if it is neither."""
    if value is None or value == "":
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"{name} must be an ISO-8601 date or date-time", name) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def choice(value: str | None, name: str, allowed: tuple[str, ...]) -> str | None:
    if value is None or value == "":
        return None
    lowered = value.strip().lower()
    if lowered not in allowed:
        raise ApiError(400, f"{name} must be one of {', '.join(allowed)}", name)
    return lowered
