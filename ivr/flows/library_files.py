"""Files and names of the flow library (:mod:`ivr.flows.library`): the organisation's prefix
of uploaded prompt names, the name of each upload, the preview's record of what it
rendered, and small JSON helpers."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from ivr.config import Settings


def prompt_prefix(org_id: str) -> str:
    """How the names of an organisation's uploaded prompts begin: ``o<its id>-``."""
    return "o" + re.sub(r"[^a-z0-9]", "", org_id.lower())[:32] + "-"


def part(path: str) -> tuple[str, str, int | None]:
    parts = path.split(".")
    if parts[0] == "nodes" and len(parts) >= 3:
        if parts[2] == "steps" and len(parts) >= 4 and parts[3].isdigit():
            return parts[1], "question", int(parts[3])
        return parts[1], parts[2], None
    if parts[0] == "defaults":
        return "", parts[-1], None
    return "", "opt_out", None


def upload_name(org_id: str, flow_id: str, path: str, language: str, digest: str) -> str:
    """The organisation's prefix, then something a person can place, then a hash of what
    the recording is and where: each upload a name of its own (a running campaign's frozen
    flow keeps the recording it started with)."""
    step = path.split(".")[1] if path.startswith("nodes.") else path.split(".")[-1]
    slug = re.sub(r"[^a-z0-9]+", "-", step.lower()).strip("-")[:12].strip("-") or "prompt"
    unique = hashlib.sha256(f"{flow_id}\0{path}\0{language}\0{digest}".encode()).hexdigest()
    return f"{prompt_prefix(org_id)}{slug}-{language}-{unique[:10]}"


def safe_file_name(name: str, fallback_suffix: str) -> str:
    base = Path(name.replace("\\", "/")).name
    clean = re.sub(r"[^\w.()-]+", "_", base).strip("._")[:100]
    if not clean:
        clean = f"recording{fallback_suffix}"
    return clean


def sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_path(settings: Settings, flow_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9-]", "", flow_id)[:64] or "flow"
    return settings.data_dir / "prompts" / "previews" / f"{safe}.json"


def figures(file: Path) -> dict[str, Any] | None:
    data = read_json(file)
    return data if isinstance(data, dict) else None


def read_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_json(target: Path, data: Any) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(data, out, ensure_ascii=False)
    os.replace(name, target)
