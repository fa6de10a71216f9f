"""Generates the `crm_api` package from protos/ (run by `make proto`).

protoc writes absolute imports of the proto packages (`from crm.contacts.v1 import ...`);
they are rewritten to live under `crm_api.crm`, so the stubs are an ordinary package.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

from grpc_tools import protoc

REPO_ROOT = Path(__file__).resolve().parents[4]
PROTOS = REPO_ROOT / "protos"
_IMPORT_RE = re.compile(r"^(from|import) crm\.", re.MULTILINE)


def generate(out_dir: Path) -> list[Path]:
    """Writes the stubs for every .proto under protos/ into out_dir/crm_api; returns the files."""
    package = out_dir / "crm_api"
    generated = package / "crm"
    if generated.exists():
        shutil.rmtree(generated)
    package.mkdir(parents=True, exist_ok=True)
    protos = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    well_known = Path(protoc.__file__).parent / "_proto"
    bin_dir = Path(sys.executable).parent
    args = [
        "protoc",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"--python_out={package}",
        f"--grpc_python_out={package}",
        f"--mypy_out={package}",
        f"--mypy_grpc_out={package}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    files = sorted(p for p in generated.rglob("*") if p.is_file())
    for path in files:
        text = _IMPORT_RE.sub(lambda m: f"{m.group(1)} crm_api.crm.", path.read_text())
        path.write_text(text)
    for folder in [generated, *(p for p in generated.rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    (package / "__init__.py").write_text(
        '"""Generated from protos/ by `make proto`; do not edit."""\n'
    )
    (package / "py.typed").touch()
    return sorted(p for p in package.rglob("*") if p.is_file())


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO_ROOT / "services" / "api" / "src"
    for written in generate(target):
        print(written.relative_to(target))
