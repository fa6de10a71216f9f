"""Bounds on what a request may carry before any route sees it."""

from __future__ import annotations

from fastapi import Request

from crm_gateway.problems import invalid

# Longer than any id list, search or cursor we issue; a longer value only burdens the
# services (and an error quoting it used to exceed gRPC's metadata limit).
MAX_QUERY_CHARS = 2000


async def bounded_query(request: Request) -> None:
    """422 naming the query parameter whose value is too long, for every route."""
    for name, value in request.query_params.multi_items():
        if len(value) > MAX_QUERY_CHARS:
            shown = name if len(name) <= 100 else name[:100] + "\u2026"
            raise invalid(shown, f"at most {MAX_QUERY_CHARS} characters")
