"""The committed crm_api stubs are exactly what `make proto` generates from protos/."""

from __future__ import annotations

from pathlib import Path

from crm_kit.protogen import generate

COMMITTED = Path(__file__).resolve().parents[1] / "services" / "api" / "src"


def test_generated_stubs_are_up_to_date(tmp_path: Path) -> None:
    fresh = {p.relative_to(tmp_path): p.read_bytes() for p in generate(tmp_path)}
    committed = {
        p.relative_to(COMMITTED): p.read_bytes()
        for p in (COMMITTED / "crm_api").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    stale = sorted(
        str(path)
        for path in fresh.keys() | committed.keys()
        if fresh.get(path) != committed.get(path)
    )
    assert not stale, f"crm_api is stale; run `make proto`. Differing files: {stale}"
