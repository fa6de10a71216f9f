"""Pipelines: the default one on first use, and validation of a tenant's own."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from crm_api.crm.deals.v1 import deals_pb2 as pb

pytestmark = pytest.mark.asyncio(loop_scope="session")
INVALID = grpc.StatusCode.INVALID_ARGUMENT


async def test_a_new_tenant_gets_the_default_pipeline_once(client: Any) -> None:
    replies = await asyncio.gather(
        *(
            client.deals.ListPipelines(pb.ListPipelinesRequest(), metadata=client.admin, timeout=10)
            for _ in range(3)
        )
    )
    (pipeline,) = replies[0].pipelines
    assert all(list(r.pipelines) == [pipeline] for r in replies)
    assert pipeline.is_default and pipeline.id == "default"
    assert [(s.name, s.win_probability, s.kind) for s in pipeline.stages] == [
        ("Qualification", 10, "open"),
        ("Needs analysis", 25, "open"),
        ("Proposal", 50, "open"),
        ("Negotiation", 75, "open"),
        ("Won", 100, "won"),
        ("Lost", 0, "lost"),
    ]
    assert [s.position for s in pipeline.stages] == list(range(6))
    # The same ids in every region, without the regions talking to each other.
    assert pipeline.stages[0].id == "default-qualification"


async def test_invalid_pipelines_are_refused_field_by_field(client: Any, refused: Any) -> None:
    fields = await refused(
        client.pipeline(
            pb.Stage(name="First call", win_probability=10),
            pb.Stage(name="first call", win_probability=20),
            pb.Stage(name="Measurement", win_probability=150),
            pb.Stage(name="", kind="maybe"),
            pb.Stage(name="Lost", kind="lost", time_limit_hours=-1),
            name="",
        ),
        INVALID,
    )
    assert fields == {
        "name",
        "stages[1].name",
        "stages[2].win_probability",
        "stages[3].name",
        "stages[3].kind",
        "stages[4].time_limit_hours",
        "stages",  # no won stage
    }
    assert await refused(client.pipeline(pb.Stage(name="Only", kind="won")), INVALID) >= {"stages"}
    bad_key = pb.Stage(name="Payment", document_template_key="Invoice!")
    fields = await refused(
        client.pipeline(bad_key, pb.Stage(name="Won", kind="won"), pb.Stage(name="L", kind="lost")),
        INVALID,
    )
    assert fields == {"stages[0].document_template_key"}


async def test_pipelines_are_configured_by_admins_with_their_own_ids(
    client: Any, refused: Any
) -> None:
    stages = [
        pb.Stage(id="st-first-call", name="First call", win_probability=10),
        pb.Stage(name="Payment", win_probability=90, document_template_key="invoice"),
        pb.Stage(name="Done", kind="won", win_probability=100),
        pb.Stage(name="Lost", kind="lost"),
    ]
    request = pb.CreatePipelineRequest(
        pipeline=pb.Pipeline(id="pl-windows", name="Windows", stages=stages)
    )
    await refused(
        client.deals.CreatePipeline(request, metadata=client.as_("manager", team="t"), timeout=10),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    created = await client.deals.CreatePipeline(request, metadata=client.admin, timeout=10)
    assert created.id == "pl-windows" and not created.is_default
    assert created.stages[0].id == "st-first-call"
    assert all(s.id for s in created.stages)
    assert [s.position for s in created.stages] == [0, 1, 2, 3]
    assert created.stages[1].document_template_key == "invoice"
    fetched = await client.deals.GetPipeline(
        pb.GetPipelineRequest(id="pl-windows"),
        metadata=client.as_("sales_rep", "u-rep"),
        timeout=10,
    )
    assert fetched == created
    # The same definition again (a repeated write to this region) is a success...
    repeat = pb.CreatePipelineRequest(
        pipeline=pb.Pipeline(id="pl-windows", name="Windows", stages=list(created.stages))
    )
    assert await client.deals.CreatePipeline(repeat, metadata=client.admin) == created
    # ...another one under the same id is a conflict.
    renamed = pb.CreatePipelineRequest()
    renamed.CopyFrom(repeat)
    renamed.pipeline.name = "Doors"
    for changed in (request, renamed):
        await refused(
            client.deals.CreatePipeline(changed, metadata=client.admin, timeout=10),
            grpc.StatusCode.ABORTED,
        )
    listed = await client.deals.ListPipelines(
        pb.ListPipelinesRequest(), metadata=client.admin, timeout=10
    )
    assert [p.id for p in listed.pipelines] == ["default", "pl-windows"]
    await refused(
        client.deals.GetPipeline(
            pb.GetPipelineRequest(id="nope"), metadata=client.admin, timeout=10
        ),
        grpc.StatusCode.NOT_FOUND,
    )
