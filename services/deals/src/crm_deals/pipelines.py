"""Pipelines: a tenant's ordered stages, each open, won or lost.

Pipelines are tenant configuration, not personal data. The gateway writes the same
pipeline into every region with the ids it chose (CreatePipeline accepts client ids),
so a deal anywhere refers to one pipeline. The default pipeline has fixed ids
("default", "default-qualification", ...) for the same reason: each region creates it
on first use and all regions agree without talking to each other.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_api.crm.deals.v1 import deals_pb2 as pb
from crm_deals import models
from crm_deals.convert import pipeline_to_pb
from crm_kit import tenant_cache
from crm_kit.clock import now
from crm_kit.context import Principal
from crm_kit.errors import (
    Conflict,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from crm_kit.ids import new_id
from crm_kit.tenant_cache import MISSING, TenantCache

KINDS = ("open", "won", "lost")
# Client-chosen ids of configuration records (generated ids match too).
CONFIG_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TEMPLATE_KEY_RE = re.compile(r"^[a-z0-9_-]{1,64}$")
MAX_NAME = 100
MAX_STAGES = 50
MAX_TIME_LIMIT_HOURS = 24 * 366
MAX_REQUIRED_FIELDS = 20
MAX_FIELD_KEY = 64  # as a deal's custom field name

DEFAULT_PIPELINE_ID = "default"
DEFAULT_PIPELINE_NAME = "Sales"
# (id suffix, name, win probability, kind)
DEFAULT_STAGES = (
    ("qualification", "Qualification", 10, "open"),
    ("needs-analysis", "Needs analysis", 25, "open"),
    ("proposal", "Proposal", 50, "open"),
    ("negotiation", "Negotiation", 75, "open"),
    ("won", "Won", 100, "won"),
    ("lost", "Lost", 0, "lost"),
)


@dataclass(frozen=True)
class PipelineView:
    """A pipeline with its stages in order."""

    pipeline: models.Pipeline
    stages: tuple[models.Stage, ...]

    def stage(self, stage_id: str) -> models.Stage | None:
        return next((s for s in self.stages if s.id == stage_id), None)

    @property
    def first_open(self) -> models.Stage:
        return next(s for s in self.stages if s.kind == "open")

    def to_pb(self) -> pb.Pipeline:
        return pipeline_to_pb(self.pipeline, self.stages)


# Pipelines read by every stage move, kept per process and dropped by the NOTIFY that a
# pipeline change sends (crm_kit.tenant_cache): every change (UpdatePipeline, a new
# default) takes _lock_tenant, which sends it.
PIPELINES = TenantCache()


async def load_cached(session: AsyncSession, tenant_id: str, pipeline_id: str) -> PipelineView:
    """`load` of a named pipeline, from this process's cache when it has it. The view's
    rows are detached: read them, never change or add them to a session."""
    if not pipeline_id:
        return await load(session, tenant_id, pipeline_id)
    key = ("pipeline", pipeline_id)
    found = PIPELINES.get(tenant_id, key)
    if found is not MISSING:
        cached: PipelineView = found
        return cached
    generation = PIPELINES.generation(tenant_id)
    view = await load(session, tenant_id, pipeline_id)
    # Out of this session before it is shared: a rollback (a refused move) expires the
    # objects of its session, which would leave the cache holding unreadable rows.
    for row in (view.pipeline, *view.stages):
        session.expunge(row)
    PIPELINES.put(tenant_id, key, view, generation)
    return view


async def _lock_tenant(session: AsyncSession, tenant_id: str) -> None:
    """Serialises default-pipeline changes of one tenant until the transaction ends (and,
    since the caller is about to change its pipelines, tells every replica at commit)."""
    await session.execute(
        sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
        {"key": f"deals.pipelines:{tenant_id}"},
    )
    await tenant_cache.changed(session, tenant_id)


async def _load(session: AsyncSession, tenant_id: str, pipeline_id: str) -> PipelineView | None:
    pipeline = await session.get(models.Pipeline, (tenant_id, pipeline_id))
    if pipeline is None:
        return None
    stages = (
        await session.scalars(
            sa.select(models.Stage)
            .where(models.Stage.tenant_id == tenant_id, models.Stage.pipeline_id == pipeline_id)
            .order_by(models.Stage.position)
        )
    ).all()
    return PipelineView(pipeline, tuple(stages))


async def load(session: AsyncSession, tenant_id: str, pipeline_id: str) -> PipelineView:
    """The pipeline, or the tenant's default one when `pipeline_id` is empty."""
    if not pipeline_id:
        return await ensure_default(session, tenant_id)
    view = await _load(session, tenant_id, pipeline_id)
    if view is None:
        raise NotFound(f"pipeline {pipeline_id} not found")
    return view


async def ensure_default(session: AsyncSession, tenant_id: str) -> PipelineView:
    """The tenant's default pipeline, created with the standard stages on first use."""
    found = await session.scalar(
        sa.select(models.Pipeline.id).where(
            models.Pipeline.tenant_id == tenant_id, models.Pipeline.is_default
        )
    )
    if found is None:
        await _lock_tenant(session, tenant_id)
        found = await session.scalar(
            sa.select(models.Pipeline.id).where(
                models.Pipeline.tenant_id == tenant_id, models.Pipeline.is_default
            )
        )
    if found is not None:
        view = await _load(session, tenant_id, found)
        assert view is not None
        return view
    # An admin may have created a pipeline called "default" that is not the default.
    existing = await _load(session, tenant_id, DEFAULT_PIPELINE_ID)
    if existing is not None:
        existing.pipeline.is_default = True
        await session.flush()
        return existing
    session.add(
        models.Pipeline(
            tenant_id=tenant_id,
            id=DEFAULT_PIPELINE_ID,
            name=DEFAULT_PIPELINE_NAME,
            is_default=True,
            created_at=now(),
        )
    )
    await session.flush()
    session.add_all(
        models.Stage(
            tenant_id=tenant_id,
            id=f"{DEFAULT_PIPELINE_ID}-{suffix}",
            pipeline_id=DEFAULT_PIPELINE_ID,
            name=name,
            position=position,
            win_probability=probability,
            time_limit_hours=0,
            kind=kind,
            document_template_key="",
        )
        for position, (suffix, name, probability, kind) in enumerate(DEFAULT_STAGES)
    )
    await session.flush()
    view = await _load(session, tenant_id, DEFAULT_PIPELINE_ID)
    assert view is not None
    return view


async def list_pipelines(session: AsyncSession, principal: Principal) -> pb.ListPipelinesResponse:
    await ensure_default(session, principal.tenant_id)
    pipelines = (
        await session.scalars(
            sa.select(models.Pipeline)
            .where(models.Pipeline.tenant_id == principal.tenant_id)
            .order_by(models.Pipeline.is_default.desc(), models.Pipeline.created_at)
        )
    ).all()
    stages = (
        await session.scalars(
            sa.select(models.Stage).where(models.Stage.tenant_id == principal.tenant_id)
        )
    ).all()
    by_pipeline: dict[str, list[models.Stage]] = {}
    for stage in stages:
        by_pipeline.setdefault(stage.pipeline_id, []).append(stage)
    return pb.ListPipelinesResponse(
        pipelines=[pipeline_to_pb(p, by_pipeline.get(p.id, [])) for p in pipelines]
    )


async def get_pipeline(
    session: AsyncSession, principal: Principal, pipeline_id: str
) -> pb.Pipeline:
    return (await load(session, principal.tenant_id, pipeline_id)).to_pb()


def _validate_id(value: str, field: str, violations: list[FieldViolation]) -> None:
    if value and not CONFIG_ID_RE.match(value):
        violations.append(
            FieldViolation(field, "1 to 64 letters, digits, '_' or '-' (or empty to generate)")
        )


def validate_stages(stages: Sequence[pb.Stage], violations: list[FieldViolation]) -> None:
    if len(stages) < 2:
        violations.append(FieldViolation("stages", "a pipeline needs at least two stages"))
    if len(stages) > MAX_STAGES:
        violations.append(FieldViolation("stages", f"at most {MAX_STAGES} stages"))
    names: set[str] = set()
    ids: set[str] = set()
    for i, stage in enumerate(stages):
        field = f"stages[{i}]"
        _validate_id(stage.id, f"{field}.id", violations)
        if stage.id and stage.id in ids:
            violations.append(FieldViolation(f"{field}.id", "used by another stage"))
        ids.add(stage.id)
        name = " ".join(stage.name.split())
        if not name:
            violations.append(FieldViolation(f"{field}.name", "required"))
        elif len(name) > MAX_NAME:
            violations.append(FieldViolation(f"{field}.name", f"at most {MAX_NAME} characters"))
        elif name.casefold() in names:
            violations.append(FieldViolation(f"{field}.name", "another stage has this name"))
        names.add(name.casefold())
        if not 0 <= stage.win_probability <= 100:
            violations.append(FieldViolation(f"{field}.win_probability", "between 0 and 100"))
        if not 0 <= stage.time_limit_hours <= MAX_TIME_LIMIT_HOURS:
            violations.append(
                FieldViolation(
                    f"{field}.time_limit_hours",
                    f"between 0 (no limit) and {MAX_TIME_LIMIT_HOURS}",
                )
            )
        if (stage.kind or "open") not in KINDS:
            violations.append(FieldViolation(f"{field}.kind", f"one of {', '.join(KINDS)}"))
        key = stage.document_template_key
        if key and not TEMPLATE_KEY_RE.match(key):
            violations.append(
                FieldViolation(
                    f"{field}.document_template_key", "lower-case letters, digits, '_' or '-'"
                )
            )
        if len(stage.required_fields) > MAX_REQUIRED_FIELDS:
            violations.append(
                FieldViolation(f"{field}.required_fields", f"at most {MAX_REQUIRED_FIELDS}")
            )
        for j, required in enumerate(stage.required_fields):
            if (
                not required.strip()
                or len(required) > MAX_FIELD_KEY
                or required != required.strip()
            ):
                violations.append(
                    FieldViolation(
                        f"{field}.required_fields[{j}]",
                        f"a custom field name of 1 to {MAX_FIELD_KEY} characters",
                    )
                )
    kinds = [stage.kind or "open" for stage in stages]
    for kind in KINDS:
        if len(stages) >= 2 and kind not in kinds:
            violations.append(FieldViolation("stages", f"needs at least one {kind} stage"))


def _same_definition(view: PipelineView, name: str, msg: pb.Pipeline) -> bool:
    def shape(stage: pb.Stage | models.Stage) -> tuple[object, ...]:
        return (
            stage.id,
            " ".join(stage.name.split()),
            stage.win_probability,
            stage.time_limit_hours,
            stage.kind or "open",
            stage.document_template_key,
            list(stage.required_fields),
        )

    return (
        view.pipeline.name == name
        and view.pipeline.is_default == msg.is_default
        and [shape(s) for s in view.stages] == [shape(s) for s in msg.stages]
    )


async def create_pipeline(
    session: AsyncSession, principal: Principal, region: str, msg: pb.Pipeline
) -> pb.Pipeline:
    if not principal.has_role("admin"):
        raise PermissionDenied("only admins configure pipelines")
    violations: list[FieldViolation] = []
    _validate_id(msg.id, "id", violations)
    name = " ".join(msg.name.split())
    if not name:
        violations.append(FieldViolation("name", "required"))
    elif len(name) > MAX_NAME:
        violations.append(FieldViolation("name", f"at most {MAX_NAME} characters"))
    validate_stages(msg.stages, violations)
    if violations:
        raise InvalidArgument(violations)

    tenant_id = principal.tenant_id
    await _lock_tenant(session, tenant_id)
    pipeline_id = msg.id or new_id(region)
    existing = await _load(session, tenant_id, pipeline_id)
    if existing is not None:
        # The gateway may repeat a region's write after a partial failure: the same
        # definition again is a success, a different one a conflict.
        if _same_definition(existing, name, msg):
            return existing.to_pb()
        raise Conflict(f"pipeline {pipeline_id} already exists with another definition")
    stage_ids = [stage.id or new_id(region) for stage in msg.stages]
    taken = set(
        await session.scalars(
            sa.select(models.Stage.id).where(
                models.Stage.tenant_id == tenant_id, models.Stage.id.in_(stage_ids)
            )
        )
    )
    if taken:
        raise InvalidArgument(
            [
                FieldViolation(f"stages[{i}].id", "already used by another pipeline")
                for i, stage_id in enumerate(stage_ids)
                if stage_id in taken
            ]
        )
    if msg.is_default:
        await session.execute(
            sa.update(models.Pipeline)
            .where(models.Pipeline.tenant_id == tenant_id, models.Pipeline.is_default)
            .values(is_default=False)
        )
    session.add(
        models.Pipeline(
            tenant_id=tenant_id,
            id=pipeline_id,
            name=name,
            is_default=msg.is_default,
            created_at=now(),
        )
    )
    await session.flush()
    # Positions are the order of the list (whatever `position` the client sent).
    session.add_all(
        models.Stage(
            tenant_id=tenant_id,
            id=stage_id,
            pipeline_id=pipeline_id,
            name=" ".join(stage.name.split()),
            position=position,
            win_probability=stage.win_probability,
            time_limit_hours=stage.time_limit_hours,
            kind=stage.kind or "open",
            document_template_key=stage.document_template_key,
            required_fields=_unique(stage.required_fields),
        )
        for position, (stage_id, stage) in enumerate(zip(stage_ids, msg.stages, strict=True))
    )
    await session.flush()
    view = await _load(session, tenant_id, pipeline_id)
    assert view is not None
    return view.to_pb()


def _unique(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _validate_name(raw: str, violations: list[FieldViolation]) -> str:
    name = " ".join(raw.split())
    if not name:
        violations.append(FieldViolation("name", "required"))
    elif len(name) > MAX_NAME:
        violations.append(FieldViolation("name", f"at most {MAX_NAME} characters"))
    return name


async def update_pipeline(
    session: AsyncSession, principal: Principal, msg: pb.Pipeline, validate_only: bool
) -> pb.Pipeline:
    """Renames the pipeline and replaces its stages in the order given. Stage ids stay
    what they are, so deals, their history, automation rules and reports keep pointing
    at the same stage through a rename or a reorder."""
    if not principal.has_role("admin"):
        raise PermissionDenied("only admins configure pipelines")
    tenant_id = principal.tenant_id
    await _lock_tenant(session, tenant_id)
    if not msg.id:
        raise InvalidArgument.single("id", "required")
    view = await load(session, tenant_id, msg.id)
    violations: list[FieldViolation] = []
    name = _validate_name(msg.name, violations)
    validate_stages(msg.stages, violations)
    for i, stage in enumerate(msg.stages):
        if not stage.id:
            violations.append(FieldViolation(f"stages[{i}].id", "required"))
    if violations:
        raise InvalidArgument(violations)

    current = {stage.id: stage for stage in view.stages}
    new_ids = [stage.id for stage in msg.stages if stage.id not in current]
    if new_ids:
        # A stage id is unique in the tenant: a new one may not be another pipeline's.
        taken = set(
            await session.scalars(
                sa.select(models.Stage.id).where(
                    models.Stage.tenant_id == tenant_id, models.Stage.id.in_(new_ids)
                )
            )
        )
        if taken:
            raise InvalidArgument(
                [
                    FieldViolation(f"stages[{i}].id", "a stage of another pipeline")
                    for i, stage in enumerate(msg.stages)
                    if stage.id in taken
                ]
            )
    kept = {stage.id: stage for stage in msg.stages if stage.id in current}
    removed = [stage for stage in view.stages if stage.id not in kept]
    # A deal's status is its stage's kind: changing the kind under deals would leave
    # them saying open while they sit in a won stage, so it waits until they moved.
    rekinded = [
        current[stage_id]
        for stage_id, stage in kept.items()
        if (stage.kind or "open") != current[stage_id].kind
    ]
    held = await _deal_counts(session, tenant_id, [s.id for s in (*removed, *rekinded)])
    refusals = [
        f"stage {s.name!r} ({s.id}) still holds {held[s.id]} deal(s): "
        + ("move them before removing it" if s in removed else "move them before changing its kind")
        for s in (*removed, *rekinded)
        if held.get(s.id)
    ]
    if refusals:
        raise FailedPrecondition("; ".join(refusals))
    if validate_only:
        return view.to_pb()

    view.pipeline.name = name
    for gone in removed:
        await session.delete(gone)
    await session.flush()
    for position, stage in enumerate(msg.stages):
        fields = {
            "name": " ".join(stage.name.split()),
            "position": position,
            "win_probability": stage.win_probability,
            "time_limit_hours": stage.time_limit_hours,
            "kind": stage.kind or "open",
            "document_template_key": stage.document_template_key,
            "required_fields": _unique(stage.required_fields),
        }
        row = current.get(stage.id)
        if row is None:
            session.add(
                models.Stage(tenant_id=tenant_id, id=stage.id, pipeline_id=msg.id, **fields)
            )
        else:
            for key, value in fields.items():
                setattr(row, key, value)
    await session.flush()
    updated = await _load(session, tenant_id, msg.id)
    assert updated is not None
    return updated.to_pb()


async def _deal_counts(
    session: AsyncSession, tenant_id: str, stage_ids: Sequence[str]
) -> dict[str, int]:
    if not stage_ids:
        return {}
    rows = await session.execute(
        sa.select(models.Deal.stage_id, sa.func.count())
        .where(models.Deal.tenant_id == tenant_id, models.Deal.stage_id.in_(stage_ids))
        .group_by(models.Deal.stage_id)
    )
    return {stage_id: count for stage_id, count in rows.tuples()}


async def stage_names(session: AsyncSession, tenant_id: str, stage_ids: set[str]) -> dict[str, str]:
    if not stage_ids:
        return {}
    rows = await session.execute(
        sa.select(models.Stage.id, models.Stage.name).where(
            models.Stage.tenant_id == tenant_id, models.Stage.id.in_(stage_ids)
        )
    )
    return {stage_id: name for stage_id, name in rows.tuples()}
