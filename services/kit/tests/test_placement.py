"""Unit tests for crm_kit.placement."""

from __future__ import annotations

import dataclasses

import pytest

from crm_kit.errors import InvalidArgument
from crm_kit.placement import (
    EEA_COUNTRIES,
    ResidencyPolicy,
    law_for_region,
    region_for_country,
)

REGIONS = ("eu", "br", "us")


def test_eea_is_eu27_plus_three() -> None:
    assert len(EEA_COUNTRIES) == 30
    assert {"IS", "LI", "NO", "DE", "FR", "IE", "HR", "CY"} <= EEA_COUNTRIES
    assert not {"CH", "GB", "BR", "US", "TR"} & EEA_COUNTRIES


@pytest.mark.parametrize(
    ("country", "expected"),
    [
        ("DE", "eu"),
        ("de", "eu"),
        ("BR", "br"),
        ("US", "us"),
        ("NO", "eu"),
        ("IS", "eu"),
        ("CH", "us"),  # not EEA: the tenant default
        ("GB", "us"),
        ("IN", "us"),
        (None, "us"),
        ("", "us"),
    ],
)
def test_region_for_country_default_policy(country: str | None, expected: str) -> None:
    assert region_for_country(country, ResidencyPolicy(), REGIONS) == expected


def test_region_for_country_tenant_default() -> None:
    policy = ResidencyPolicy(default_region="eu")
    assert region_for_country("CH", policy, REGIONS) == "eu"
    assert region_for_country("BR", policy, REGIONS) == "br"
    assert region_for_country(None, policy, REGIONS) == "eu"


def test_region_for_country_override_wins() -> None:
    policy = ResidencyPolicy(overrides={"CH": "eu", "de": "us", "IN": "in"})
    regions = (*REGIONS, "in")
    assert region_for_country("CH", policy, regions) == "eu"
    assert region_for_country("DE", policy, regions) == "us"
    assert region_for_country("IN", policy, regions) == "in"
    assert region_for_country("FR", policy, regions) == "eu"


def test_region_not_configured_is_an_error() -> None:
    with pytest.raises(InvalidArgument) as exc:
        region_for_country("BR", ResidencyPolicy(), ("eu", "us"))
    [violation] = exc.value.violations
    assert violation.field == "address.country"
    assert "no region is configured" in violation.description
    assert "BR" in violation.description


def test_region_default_not_configured_is_an_error() -> None:
    with pytest.raises(InvalidArgument) as exc:
        region_for_country(None, ResidencyPolicy(default_region="us"), ("eu",))
    assert exc.value.violations[0].field == "address.country"


def test_policy_is_frozen_and_defaults_are_independent() -> None:
    policy = ResidencyPolicy()
    assert policy.default_region == "us"
    assert dict(policy.overrides) == {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.default_region = "eu"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("region", "law"), [("eu", "GDPR"), ("br", "LGPD"), ("us", "GDPR"), ("in", "GDPR")]
)
def test_law_for_region(region: str, law: str | None) -> None:
    assert law_for_region(region) == law
