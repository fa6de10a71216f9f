"""Pure-ASGI guards in front of every route: the body size limit and text checks.

They sit outside FastAPI so that every route, present and future, gets them: a body is
counted as it is read (whatever its framing), and text that PostgreSQL or protobuf
cannot store (NUL, lone surrogates) is refused with 422 naming the field before any
route sees it.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_gateway.problems import Problem, problem_response
from crm_kit.errors import FieldViolation


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuses bodies over the limit with 413, whether or not Content-Length is sent.

    A chunked body is counted as it is read; once it passes the limit, whatever the
    route answers (a parse error, an exception) is replaced by the 413.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, *, larger: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Path prefix -> its own limit (file uploads, which are streamed onwards).
        self.larger = larger or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = next(
            (size for prefix, size in self.larger.items() if scope["path"].startswith(prefix)),
            self.max_bytes,
        )
        too_big = problem_response(
            Problem(413, "Payload too large", f"the body may be at most {max_bytes} bytes"),
            scope["path"],
        )
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            await too_big(scope, receive, send)
            return
        seen = 0
        exceeded = False
        started = False

        async def limited() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > max_bytes:
                exceeded = True
                raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the route's answer to a cut-off body is replaced by the 413
            started = True
            await send(message)

        try:
            await self.app(scope, limited, guarded_send)
        except Exception:
            if not exceeded or started:
                raise
        if exceeded and not started:
            await too_big(scope, receive, send)


_JSON_TYPES = ("application/json",)
_FORM_TYPE = "application/x-www-form-urlencoded"


def text_problem(text: str) -> str | None:
    """Why PostgreSQL or protobuf could not store this text, or None."""
    if "\x00" in text:
        return "must not contain the NUL character (\\u0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (it contains a lone surrogate)"
    return None


def _json_strings(value: Any) -> Iterator[tuple[str, str]]:
    """(field path, text) for every key and string in a parsed JSON document."""
    queue: deque[tuple[str, Any]] = deque([("", value)])
    while queue:
        path, item = queue.popleft()
        if isinstance(item, str):
            yield path or "body", item
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{path}.{key}" if path else str(key)
                yield child_path, key
                queue.append((child_path, child))
        elif isinstance(item, list):
            queue.extend((f"{path}[{i}]", child) for i, child in enumerate(item))


def _invalid(violations: list[FieldViolation]) -> Problem:
    detail = "; ".join(f"{v.field}: {v.description}" for v in violations)
    return Problem(422, "Invalid input", detail, errors=violations)


class TextGuard:
    """422 for NUL or lone surrogates in the path, a query parameter or a JSON/form body.

    JSON and form bodies up to the body limit are read whole here and handed on
    unchanged; other bodies (file uploads, which may be larger) stream through.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        # Larger bodies (only file uploads may be) stream on unchecked, never buffered.
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        violations: list[FieldViolation] = []
        # The server has decoded path and query (undecodable bytes become U+FFFD).
        if (problem := text_problem(scope["path"])) is not None:
            violations.append(FieldViolation("path", problem))
        query = scope.get("query_string", b"").decode("latin-1")
        for name, value in parse_qsl(query, keep_blank_values=True):
            for text in (name, value):
                if (problem := text_problem(text)) is not None:
                    violations.append(FieldViolation(name.replace("\x00", "\\u0000"), problem))
                    break
        if violations:
            await problem_response(_invalid(violations), scope["path"])(scope, receive, send)
            return
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        media_type = content_type.split(";")[0].strip().lower()
        is_json = media_type in _JSON_TYPES or media_type.endswith("+json")
        if not is_json and media_type != _FORM_TYPE:
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        size = 0
        complete = False
        while size <= self.max_bytes:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                complete = True
                break
        if not complete:
            await self.app(scope, self._replay(messages, receive), send)
            return
        body = b"".join(m.get("body", b"") for m in messages)
        if is_json:
            violations = self._json_violations(body)
        else:
            violations = [
                FieldViolation(name.replace("\x00", "\\u0000"), problem)
                for name, value in parse_qsl(body.decode("latin-1"), keep_blank_values=True)
                if (problem := text_problem(name) or text_problem(value)) is not None
            ]
        if violations:
            await problem_response(_invalid(violations), scope["path"])(scope, receive, send)
            return
        await self.app(scope, self._replay(messages, receive), send)

    @staticmethod
    def _replay(messages: list[Message], receive: Receive) -> Receive:
        """The messages already read, then the rest of the stream."""
        pending = list(messages)

        async def replay() -> Message:
            if pending:
                return pending.pop(0)
            return await receive()

        return replay

    @staticmethod
    def _json_violations(body: bytes) -> list[FieldViolation]:
        try:
            document = json.loads(body)
        except RecursionError:
            return [FieldViolation("body", "nested too deeply")]
        except ValueError:
            return []  # malformed JSON: the route answers with its own 422
        return [
            FieldViolation(field, problem)
            for field, text in _json_strings(document)
            if (problem := text_problem(text)) is not None
        ]
