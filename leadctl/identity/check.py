"""`rules check` checkers for identity.yaml and sources.yaml."""

from __future__ import annotations

from leadctl.errors import RuleError


def check_identity(ctx) -> list:
    from leadctl.identity.config import identity_path, load_identity_config

    path = identity_path(ctx.rules_dir)
    if path.exists():
        ctx.files.append(str(path))
    try:
        ctx.loaded["identity"] = load_identity_config(ctx.rules_dir)
    except RuleError as exc:
        return list(exc.problems)
    return []


def check_sources(ctx) -> list:
    from leadctl.sources import load_sources_config

    path = ctx.rules_dir / "sources.yaml"
    if path.exists():
        ctx.files.append(str(path))
    try:
        ctx.loaded["sources"] = load_sources_config(ctx.rules_dir)
    except RuleError as exc:
        return list(exc.problems)
    return []
