"""One opaque cursor over several regions' keyset-paginated lists.

Each region returns hits ordered by (score desc, id desc) with a per-hit cursor. The
gateway merges them under the same order and remembers, per region, the cursor of
the last hit it handed out ("" = from the start, absent = exhausted).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from crm_gateway.problems import invalid


@dataclass
class Hit:
    region: str
    sort_score: float
    record_id: str
    cursor: str
    item: Any


def encode(positions: dict[str, str]) -> str:
    return (
        base64.urlsafe_b64encode(json.dumps(positions, sort_keys=True).encode())
        .decode()
        .rstrip("=")
    )


def decode(cursor: str | None, regions: Sequence[str]) -> dict[str, str]:
    if not cursor:
        return {region: "" for region in regions}
    try:
        positions = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(positions, dict) or not all(
            isinstance(v, str) for v in positions.values()
        ):
            raise ValueError
    except ValueError as exc:
        raise invalid("cursor", "malformed cursor; pass back next_cursor unchanged") from exc
    if set(positions) - set(regions):
        raise invalid("cursor", "the cursor belongs to a list over other regions")
    return {r: positions[r] for r in regions if r in positions}


async def merged_page(
    regions: Sequence[str],
    cursor: str | None,
    limit: int,
    fetch: Callable[[str, str], Awaitable[tuple[list[Hit], bool]]],
    *,
    sort_key: Callable[[Hit], str] | None = None,
    descending: bool = True,
) -> tuple[list[Any], str | None]:
    """`fetch(region, token)` returns a page of hits and whether more follow.

    Hits are merged by (score, id) descending, or, given `sort_key`, by (that key, id)
    in the asked direction: each region must order its hits the same way.
    """
    import asyncio

    positions = decode(cursor, regions)
    active = list(positions)
    pages = await asyncio.gather(*(fetch(region, positions[region]) for region in active))
    candidates: list[Hit] = []
    more: dict[str, bool] = {}
    for region, (hits, has_more) in zip(active, pages, strict=True):
        candidates.extend(hits)
        more[region] = has_more
    # ULIDs sort by time; the part after the region prefix is comparable across regions.
    if sort_key is None:
        candidates.sort(key=lambda h: (h.sort_score, h.record_id.split("_", 1)[1]), reverse=True)
    else:
        # A region's own ties go by its full id, which orders as the ULID part does.
        key = sort_key
        candidates.sort(
            key=lambda h: (key(h).encode(), h.record_id.split("_", 1)[1]), reverse=descending
        )
    taken = candidates[:limit]
    left_over = {h.region for h in candidates[limit:]}
    next_positions: dict[str, str] = {}
    for region in active:
        mine = [h for h in taken if h.region == region]
        if region in left_over or more[region]:
            next_positions[region] = mine[-1].cursor if mine else positions[region]
    next_cursor = encode(next_positions) if next_positions else None
    return [h.item for h in taken], next_cursor
