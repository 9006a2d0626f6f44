"""The rule files of one command, parsed and checked once: `RuleSet`.

`load_rules` parses every file of the rules directory, each by its own domain's parser
(tags first: their types are the fields scoring and routing expressions may use; a
name declared but broken is reported once, where it is declared — see rules/located),
collects the problems of all of them and raises ONE RuleError listing every problem
in file order; or returns the RuleSet the command then hands down to its stages.
With a workspace it also checks the tags against the data present (`check_data`).
`leadctl rules check` is `load_rules(...).summary()`.

This sits above the domains (it imports each domain's parser); `rules/` below them
keeps only what they share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from leadctl.campaigns.costs import COSTS_FILE, CostRules, load_cost_rules
from leadctl.campaigns.funnels import FUNNELS_FILE, FunnelRules
from leadctl.campaigns.funnels_parse import load_funnel_rules
from leadctl.errors import Location, RuleError
from leadctl.identity.config import IDENTITY_FILE, IdentityConfig, load_identity_config
from leadctl.identity.overrides_file import OVERRIDES_FILE
from leadctl.ingest.load import stored_zone, zone_problems
from leadctl.ingest.sources import SOURCES_FILE, SourcesConfig, load_sources_config
from leadctl.routing.model import ROUTING_FILE, RoutingRules
from leadctl.routing.parse import load_routing_rules, unknown_grade_warnings
from leadctl.rules.load import rule_path, rules_hash
from leadctl.rules.located import Problems, sorted_problems
from leadctl.scoring.model import SCORING_FILE, ScoringRules
from leadctl.scoring.parse import load_scoring_rules
from leadctl.tagging.check import check_tags_against_data, missing_event_warnings, nightly_cost
from leadctl.tagging.model import TAGS_FILE, TagRules
from leadctl.tagging.parse import load_tag_rules


@dataclass
class RuleSet:
    rules_dir: Path
    tags: TagRules
    scoring: ScoringRules  # `present` is False without scoring.yaml (stage skipped)
    routing: RoutingRules  # likewise without routing.yaml
    identity: IdentityConfig
    sources: SourcesConfig
    hash: str = ""
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    costs: CostRules = field(default_factory=CostRules)  # rules/costs.yaml (optional)
    funnels: FunnelRules | None = None  # campaign funnels (`present` False without the file)

    def fields(self) -> dict[str, str]:
        """person_features fields for expressions: attributes + every tag."""
        return self.tags.fields()

    def require(self, name: str) -> ScoringRules | RoutingRules:
        """Scoring or routing rules for a command that needs them: a missing file is a
        rule error there (the nightly run just skips the stage)."""
        rules = getattr(self, name)
        if not rules.present:
            raise RuleError([(Location(str(rules.path), 1, 1),
                              f"{rules.path.name} not found in {self.rules_dir} (pass --rules)")])
        return rules

    def zone_problems(self, ws) -> list:
        """A sources.yaml zone other than the one the workspace's times were read in."""
        return zone_problems(stored_zone(ws), self.sources.timezone, self.sources.timezone_loc,
                             rule_path(self.rules_dir, SOURCES_FILE))

    def check_zone(self, ws) -> None:
        """RuleError when `zone_problems`: every writer using the rules refuses them, as
        `rules check` does (a stage reading no time would go on with the other zone)."""
        problems = self.zone_problems(ws)
        if problems:
            raise RuleError(sorted_problems(problems))

    def check_data(self, ws) -> None:
        """The tags against the workspace's data (binder errors are rule errors, and so is
        a sources.yaml zone other than the one its times were read in; event types the
        data lacks, of tags, funnel steps and `reactivate_on`, become warnings)."""
        problems, warnings = check_tags_against_data(ws, self.tags)
        problems += self.zone_problems(ws)
        if problems:
            raise RuleError(sorted_problems(problems))
        self.warnings.extend(warnings)
        for used in (self.funnels.events_used() if self.funnels else {},
                     self.routing.lifecycle.reactivate_on_locs):
            self.warnings.extend(missing_event_warnings(ws, used))

    def summary(self) -> dict:
        return {"ok": True, "rules_dir": str(self.rules_dir), "files": self.files,
                "tags": len(self.tags.tags), "warnings": self.warnings,
                "nightly": nightly_cost(self.tags),
                "funnels": len(self.funnels.funnels) if self.funnels else 0}


# Times the rule files are read again when one changed while they were read.
RULES_READS = 5


def load_rules(rules_dir: Path | str | None, ws=None) -> RuleSet:
    """Every rule file parsed and validated; RuleError lists ALL problems of all files.
    The rules hash is that of the files as parsed: when one changed while they were read
    (`identity link` appending an override during a run), they are read again."""
    rules_dir = Path(rules_dir or "rules")
    if not rules_dir.is_dir():
        raise RuleError([(None, f"rules directory {rules_dir} not found (pass --rules)")])
    for _ in range(RULES_READS):
        before = rules_hash(rules_dir)
        ruleset = _read_rules(rules_dir, before)
        if rules_hash(rules_dir) == before:
            if ws is not None:
                ruleset.check_data(ws)
            return ruleset
    raise RuleError([(None, f"the rule files in {rules_dir} kept changing while they were "
                            "read; run again when they are written")])


def _read_rules(rules_dir: Path, file_hash: str) -> RuleSet:
    problems: Problems = []
    files: list[str] = []
    warnings: list[str] = []

    def parsed(path: Path, load, *args):
        if path.exists():
            files.append(str(path))
        try:
            return load(rules_dir, *args)
        except RuleError as exc:
            problems.extend(exc.problems)
            return None

    files.append(str(rule_path(rules_dir, TAGS_FILE)))
    try:  # tags with problems still give their fields, broken names marked (Fields)
        before = len(problems)
        tags = load_tag_rules(rules_dir, problems)
        tags.folder_hash = file_hash
        if len(problems) > before and not tags.tags:
            tags = None  # no tag list read at all (`tag:` for `tags:`): nothing to check against
    except RuleError as exc:
        problems.extend(exc.problems)
        tags = None
    # Without readable tags, scoring and routing expressions are not checked: every
    # tag they name would be a misleading second error.
    fields = tags.fields() if tags is not None else None
    scoring = parsed(rule_path(rules_dir, SCORING_FILE), load_scoring_rules, fields)
    routing = parsed(rule_path(rules_dir, ROUTING_FILE), load_routing_rules, fields)
    identity = parsed(rule_path(rules_dir, IDENTITY_FILE), load_identity_config)
    if rule_path(rules_dir, OVERRIDES_FILE).exists():  # read with identity.yaml
        files.append(str(rule_path(rules_dir, OVERRIDES_FILE)))
    sources = parsed(rule_path(rules_dir, SOURCES_FILE), load_sources_config)
    costs = parsed(rule_path(rules_dir, COSTS_FILE), load_cost_rules)
    funnels = parsed(rule_path(rules_dir, FUNNELS_FILE), load_funnel_rules, tags)
    for rules, stage in ((scoring, "score"), (routing, "route")):
        if rules is not None and not rules.present:
            warnings.append(f"{rules.path}: not found (the {stage} stage is skipped)")
    if routing is not None:
        warnings += routing.warnings
    if sources is not None:
        warnings += sources.warnings
    if scoring is not None and routing is not None and scoring.grades:
        warnings += unknown_grade_warnings(routing, set(scoring.grade_names))
    if problems:
        raise RuleError(sorted_problems(problems))
    return RuleSet(rules_dir, tags, scoring, routing, identity, sources,
                   hash=file_hash, files=files, warnings=warnings, costs=costs,
                   funnels=funnels)
