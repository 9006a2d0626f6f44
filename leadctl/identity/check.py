"""`rules check` checkers for identity.yaml and sources.yaml."""

from __future__ import annotations

from pathlib import Path

from leadctl.errors import RuleError
from leadctl.identity.config import identity_path, load_identity_config
from leadctl.ingest.sources import load_sources_config


def _check_file(ctx, name: str, path: Path, load) -> list:
    """Load one optional rule file into ctx.loaded[name]; its problems, located."""
    if path.exists():
        ctx.files.append(str(path))
    try:
        ctx.loaded[name] = load(ctx.rules_dir)
    except RuleError as exc:
        return list(exc.problems)
    return []


def check_identity(ctx) -> list:
    return _check_file(ctx, "identity", identity_path(ctx.rules_dir), load_identity_config)


def check_sources(ctx) -> list:
    return _check_file(ctx, "sources", ctx.rules_dir / "sources.yaml", load_sources_config)
