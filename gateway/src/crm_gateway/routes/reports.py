"""/v1/reports/{name}: reports merged from each region's reporting service.

Every region answers with mergeable aggregates (counts, exact sums already in the
tenant's reporting currency, a cycle-length histogram), never with contact, deal or
company ids or names; the gateway sums the regions' rows and only then derives ratios,
medians and rounded money. Because only such numbers cross, a tenant-wide report asks
every region without a cross-region access grant. Ownership is enforced by each
region's service from the caller's principal: a sales rep's report covers their own
deals, a manager's their team's; the owners a manager names are checked against the
team in the directory here (the reporting service does not hold the directory).
"""

from __future__ import annotations

import asyncio
import csv
import decimal
import io
import math
from collections import defaultdict
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, get_args

from babel.numbers import get_currency_precision
from fastapi import APIRouter, Depends, Query, Response

from crm_api.crm.deals.v1 import deals_pb2
from crm_api.crm.directory.v1 import directory_pb2
from crm_api.crm.reporting.v1 import reporting_pb2 as pb
from crm_gateway import answers
from crm_gateway.access import Caller, caller, require_role
from crm_gateway.problems import Problem, invalid
from crm_kit.reporting_money import round_reporting
from crm_kit.spreadsheet import safe_cell

router = APIRouter()

NAMES = get_args(answers.ReportName)
CHARTS = ("funnel", "revenue")
FORMATS = ("json", "csv", "svg", "png")
RATIO = Decimal("0.0001")
REBUILD_TIMEOUT = 120.0

Key = tuple[str, ...]


def _split(value: str, field: str) -> list[str]:
    values = [part.strip() for part in value.split(",") if part.strip()]
    if len(values) > 100:
        raise invalid(field, "at most 100 values")
    return values


async def _check_team_owners(who: Caller, owners: list[str]) -> None:
    """A manager reports on their own team: every owner named must be in it (the
    tenant's directory, `PUT /v1/users/{id}`). Asking for anyone else's numbers is 403,
    as for a sales rep, never a silently empty report."""
    principal = who.principal
    if not owners or principal.sees_whole_tenant or not principal.has_role("manager"):
        return
    members = {principal.user_id}
    if principal.team:
        reply = await who.stub("tasks", "directory", principal.home_region).ListUsers(
            directory_pb2.ListUsersRequest(team=principal.team),
            metadata=principal.to_metadata(),
            timeout=who.timeout,
        )
        members |= {user.id for user in reply.users}
    outside = sorted(set(owners) - members)
    if outside:
        raise Problem(
            403,
            "Forbidden",
            f"a manager reports on their own team only; not in it: {', '.join(outside)}",
        )


def _regions(who: Caller, value: str) -> list[str]:
    """`region=eu,br`; empty or `all` = every region (the worldwide view)."""
    if not value.strip() or value.strip() == "all":
        return list(who.gateway.regions)
    return who.regions_param(value)


def _money(value: Decimal, currency: str) -> str:
    places = get_currency_precision(currency) if currency else 2
    return str(round_reporting(value, places))


def _ratio(part: Decimal, whole: Decimal) -> str | None:
    if whole == 0:
        return None
    return str((part / whole).quantize(RATIO, rounding=ROUND_HALF_EVEN))


def percentile(histogram: dict[int, Decimal], p: Decimal) -> int | None:
    """Nearest-rank percentile of a histogram (value -> count)."""
    total = sum(histogram.values(), Decimal(0))
    if total == 0:
        return None
    rank = max(1, math.ceil(p * total))
    seen = Decimal(0)
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    return max(histogram)  # pragma: no cover - the loop always reaches rank


def merge(parts: list[pb.ReportPart]) -> dict[Key, dict[str, Decimal]]:
    """Sums the regions' rows key by key, exactly (the parts are exact decimals)."""
    rows: dict[Key, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    with decimal.localcontext(prec=60):
        for part in parts:
            for row in part.rows:
                merged = rows[tuple(row.keys)]
                for name, value in row.sums.items():
                    merged[name] += Decimal(value)
    return rows


async def _pipelines(who: Caller) -> list[deals_pb2.Pipeline]:
    """Stage order and names (tenant configuration, read in the caller's home region)."""
    region = who.principal.home_region
    reply = await who.stub("deals", "deals", region).ListPipelines(
        deals_pb2.ListPipelinesRequest(),
        metadata=who.principal.to_metadata(),
        timeout=who.timeout,
    )
    return list(reply.pipelines)


def _int(value: Decimal) -> int:
    return int(value)


async def _finish(
    who: Caller, name: str, rows: dict[Key, dict[str, Decimal]], currency: str, granularity: str
) -> list[dict[str, Any]]:
    """The report's rows from the merged aggregates."""
    if name == "funnel":
        out: list[dict[str, Any]] = []
        present = {key[1] for key in rows}
        for pipeline in await _pipelines(who):
            if pipeline.id not in present:
                continue
            stages = sorted(pipeline.stages, key=lambda s: s.position)
            chain = [s.id for s in stages if s.kind != "lost"]
            paths = [
                (set(key[2].split(",")), values.get("deals", Decimal(0)))
                for key, values in rows.items()
                if key[0] == "path" and key[1] == pipeline.id
            ]
            for stage in stages:
                values = rows.get(("stage", pipeline.id, stage.id), {})
                entered = values.get("entered", Decimal(0))
                conversion = None
                if stage.id in chain and chain.index(stage.id) + 1 < len(chain):
                    # Converted: entered this stage and reached any later non-lost one,
                    # so a deal that skips a stage still counts once (never above 100 %).
                    later = set(chain[chain.index(stage.id) + 1 :])
                    converted = sum(
                        (deals for path, deals in paths if stage.id in path and path & later),
                        Decimal(0),
                    )
                    conversion = _ratio(converted, entered)
                out.append(
                    {
                        "pipeline_id": pipeline.id,
                        "pipeline": pipeline.name,
                        "stage_id": stage.id,
                        "stage": stage.name,
                        "kind": stage.kind,
                        "deals": _int(values.get("deals", Decimal(0))),
                        "value": _money(values.get("value", Decimal(0)), currency),
                        "entered": _int(entered),
                        "conversion_to_next": conversion,
                    }
                )
        return out
    if name == "win_rate":
        won = rows.get(("outcome", "won"), {})
        lost = rows.get(("outcome", "lost"), {})
        won_deals = won.get("deals", Decimal(0))
        lost_deals = lost.get("deals", Decimal(0))
        won_value = won.get("value", Decimal(0))
        histogram = {
            int(key[1]): values["deals"] for key, values in rows.items() if key[0] == "cycle_days"
        }
        return [
            {
                "deals_won": _int(won_deals),
                "deals_lost": _int(lost_deals),
                "win_rate": _ratio(won_deals, won_deals + lost_deals),
                "value_won": _money(won_value, currency),
                "average_deal_size": (
                    _money(won_value / won_deals, currency) if won_deals else None
                ),
                "cycle_days_median": percentile(histogram, Decimal("0.5")),
                "cycle_days_p90": percentile(histogram, Decimal("0.9")),
            }
        ]
    if name == "revenue":
        return [
            {
                "period": key[1],
                "granularity": granularity,
                "deals": _int(values.get("deals", Decimal(0))),
                "value": _money(values.get("value", Decimal(0)), currency),
            }
            for key, values in sorted(rows.items())
        ]
    if name == "payments":
        return [
            {
                "period": key[1],
                "granularity": granularity,
                "payments": _int(values.get("payments", Decimal(0))),
                "value": _money(values.get("value", Decimal(0)), currency),
            }
            for key, values in sorted(rows.items())
        ]
    if name == "activity":
        measures = (
            "calls",
            "tasks_on_time",
            "tasks_late",
            "overdue_now",
            "deals_won",
            "deals_lost",
        )
        return [
            {"owner_id": key[1], **{m: _int(values.get(m, Decimal(0))) for m in measures}}
            for key, values in sorted(rows.items())
        ]
    if name == "lead_sources":
        return [
            {
                "source": key[1],
                "deals": _int(values.get("deals", Decimal(0))),
                "won": _int(values.get("won", Decimal(0))),
                "lost": _int(values.get("lost", Decimal(0))),
                "conversion_to_won": _ratio(
                    values.get("won", Decimal(0)), values.get("deals", Decimal(0))
                ),
            }
            for key, values in sorted(rows.items())
        ]
    if name == "lost_reasons":
        # Per period, the reasons with most deals first.
        reasons = sorted(
            rows.items(),
            key=lambda item: (item[0][1], -item[1].get("deals", Decimal(0)), item[0][2]),
        )
        return [
            {
                "period": key[1],
                "granularity": granularity,
                "reason": key[2],
                "deals": _int(values.get("deals", Decimal(0))),
                "value": _money(values.get("value", Decimal(0)), currency),
            }
            for key, values in reasons
        ]
    # forecast
    return [
        {
            "month": key[1],
            "deals": _int(values.get("deals", Decimal(0))),
            "value": _money(values.get("value", Decimal(0)), currency),
            "weighted": _money(values.get("weighted", Decimal(0)), currency),
        }
        for key, values in sorted(rows.items())
    ]


def _csv(report: dict[str, Any]) -> str:
    buffer = io.StringIO()
    data: list[dict[str, Any]] = report["data"]
    columns = list(data[0]) if data else ["no_data"]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in data:
        writer.writerow({k: "" if v is None else safe_cell(v) for k, v in row.items()})
    return buffer.getvalue()


def _chart(report: dict[str, Any], image_format: str) -> bytes:
    """A bar chart of the funnel (deals per stage) or of revenue per period."""
    import matplotlib

    matplotlib.use("Agg")
    # Text stays text in SVG (selectable, searchable, smaller than glyph outlines).
    matplotlib.rcParams["svg.fonttype"] = "none"
    from matplotlib.figure import Figure

    data = report["data"]
    currency = report["reporting_currency"]
    figure = Figure(figsize=(8, 4.5), dpi=100)
    axes = figure.subplots()
    if report["report"] == "funnel":
        rows = [r for r in data if r["kind"] != "lost"]
        labels = [r["stage"] for r in rows][::-1]
        counts = [r["deals"] for r in rows][::-1]
        bars = axes.barh(labels, counts, color="#3b6ea5")
        for bar, row in zip(bars, rows[::-1], strict=True):
            axes.annotate(
                f" {row['deals']} · {row['value']} {currency}",
                (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                va="center",
                fontsize=8,
            )
        axes.set_xlabel("deals now in the stage")
        axes.set_title("Funnel")
    else:
        labels = [r["period"] for r in data]
        values = [float(Decimal(r["value"])) for r in data]
        axes.bar(labels, values, color="#2e8b57")
        axes.set_ylabel(f"won revenue ({currency})")
        axes.set_title(f"Revenue by {data[0]['granularity'] if data else 'period'}")
        axes.tick_params(axis="x", labelrotation=45, labelsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format=image_format)
    return buffer.getvalue()


MEDIA = {"svg": "image/svg+xml", "png": "image/png", "csv": "text/csv; charset=utf-8"}


@router.get(
    "/v1/reports/{name}",
    tags=["reports"],
    summary="A report from the read models, merged over regions (JSON, CSV, SVG or PNG)",
    **answers.ok(answers.Report, 200, "text/csv", "image/svg+xml", "image/png"),
)
async def get_report(
    name: str,
    who: Caller = Depends(caller),
    period_from: str = Query("", alias="from", description="YYYY-MM-DD, inclusive"),
    period_to: str = Query("", alias="to", description="YYYY-MM-DD, inclusive"),
    pipeline: str = Query("", description="pipeline ids, comma separated"),
    owner: str = Query("", description="owner user ids, comma separated"),
    team: str = Query("", description="teams, comma separated"),
    region: str = Query("", description="regions, comma separated; empty or 'all' = worldwide"),
    granularity: str = Query(
        "",
        description="revenue, payments and lost_reasons: day, week, month (default) or quarter",
    ),
    format: str = Query("json", description="json, csv, svg or png"),
) -> Any:
    name = name.replace("-", "_")  # /v1/reports/lost-reasons reads as well as lost_reasons
    if name not in NAMES:
        raise Problem(404, "Not found", f"no report {name!r}; reports are {', '.join(NAMES)}")
    if format not in FORMATS:
        raise invalid("format", f"one of {', '.join(FORMATS)}")
    if format in ("svg", "png") and name not in CHARTS:
        raise invalid("format", f"charts exist for {' and '.join(CHARTS)}")
    regions = _regions(who, region)
    request = pb.GetReportRequest(
        name=name,
        filter=pb.ReportFilter(
            period_from=period_from,
            period_to=period_to,
            pipeline_ids=_split(pipeline, "pipeline"),
            owner_ids=_split(owner, "owner"),
            teams=_split(team, "team"),
            granularity=granularity,
        ),
    )
    await _check_team_owners(who, list(request.filter.owner_ids))
    metadata = who.principal.to_metadata()
    parts: list[pb.ReportPart] = list(
        await asyncio.gather(
            *(
                who.stub("reporting", "reporting", r).GetReport(
                    request, metadata=metadata, timeout=who.timeout
                )
                for r in regions
            )
        )
    )
    currency = parts[0].reporting_currency if parts else ""
    missing = sorted({(m.currency, m.on) for part in parts for m in part.missing_rates})
    report: dict[str, Any] = {
        "report": name,
        "regions": regions,
        "reporting_currency": currency,
        "period": {"from": period_from or None, "to": period_to or None},
        "filters": {
            "pipeline": list(request.filter.pipeline_ids),
            "owner": list(request.filter.owner_ids),
            "team": list(request.filter.teams),
        },
        # Amounts in these currencies on these days had no rate into the reporting
        # currency: they are left out of the values (counts include them).
        "missing_rates": [{"currency": c, "on": on} for c, on in missing],
        "data": await _finish(who, name, merge(parts), currency, granularity.strip() or "month"),
    }
    if format == "json":
        return report
    if format == "csv":
        return Response(
            _csv(report),
            media_type=MEDIA["csv"],
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    image = await asyncio.to_thread(_chart, report, format)
    return Response(image, media_type=MEDIA[format])


@router.post(
    "/v1/reports/rebuild",
    tags=["reports"],
    summary="Rebuild the tenant's read models from the regions' event history (admin)",
    **answers.ok(answers.Rebuild),
)
async def rebuild(who: Caller = Depends(caller), region: str = "") -> dict[str, Any]:
    require_role(who, "admin")
    regions = _regions(who, region)
    metadata = who.principal.to_metadata()
    replies = await asyncio.gather(
        *(
            who.stub("reporting", "reporting", r).RebuildReadModel(
                pb.RebuildReadModelRequest(), metadata=metadata, timeout=REBUILD_TIMEOUT
            )
            for r in regions
        )
    )
    return {
        "regions": [
            {
                "region": reply.region,
                "events_replayed": reply.events_replayed,
                "events_applied": reply.events_applied,
            }
            for reply in replies
        ]
    }
