"""`leadctl report ab NAME`: conversion per variant, comparisons to the control, sample
ratio check and a plain verdict.

Two sources of variants: an experiment recorded by `leadctl audience export` (its
membership, start, planned split, control and goal), or — with `variant_from` — an event
or lead attribute such as `utm_content` (see `experiments_sql.attribute_members_sql`;
planned split: `variants` when given, else equal; control: the first of `variants`, else
the first value in sort order). A conversion is a goal event of the person on or after
its start, inside the window and before the as-of day; the goal is `--goal`, else the
experiment's, else `register`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from leadctl.campaigns import stats
from leadctl.campaigns.audiences import HOLDOUT, parse_variants
from leadctl.campaigns.experiments_sql import (
    ab_counts_sql,
    attribute_members_sql,
    audience_members_sql,
    goal_events_sql,
    persons_in_several_variants_sql,
)
from leadctl.errors import NotFound, UsageError
from leadctl.identity.cache import unmapped_events_sql, unmapped_events_warning

DEFAULT_WINDOW_DAYS = 14
DEFAULT_GOAL = "register"  # when neither --goal nor the experiment names one
MAX_WINDOW_DAYS = 3650
_WINDOW = re.compile(r"([0-9]{1,5}) *([dw]?)")  # ASCII: another script's digits are a typo


def parse_window(text: str | None) -> int:
    """`14d`, `14` or `2w` → days (1 to 3650)."""
    if text is None:
        return DEFAULT_WINDOW_DAYS
    match = _WINDOW.fullmatch(text.strip().lower())
    days = int(match[1]) * (7 if match[2] == "w" else 1) if match else 0
    if not 1 <= days <= MAX_WINDOW_DAYS:
        raise UsageError(f"--window must be a number of days like 14d (or weeks like 2w), "
                         f"from 1 to {MAX_WINDOW_DAYS} days, not {text!r}")
    return days


def load_experiment(ws, name: str) -> dict | None:
    rows = ws.rows("SELECT name, kind, created_at, created_by, expression, starts_on, seed, "
                   "variants, control, holdout, goal, persons FROM experiments "
                   "WHERE name = ?", [name])
    if not rows:
        return None
    row = rows[0]
    row["variants"] = json.loads(row["variants"])
    return row


def has_member_anchors(ws) -> bool:
    """Whether experiment_members has the members' anchor leads (a workspace made before
    them and only read since has not been upgraded)."""
    return ws.has_column("experiment_members", "anchor_lead_id")


@dataclass(frozen=True)
class Design:
    """What an evaluation needs: who is in which variant from when (`members`, SQL), the
    planned split (None: equal over the values seen), control, goal, and what to show."""

    members: str
    planned: list[tuple[str, float]] | None
    control: str | None
    goal: str
    shown: dict


def recorded_design(experiment: dict, *, goal: str | None, control: str | None,
                    anchored: bool = True) -> Design:
    """An experiment recorded by `audience export` (`anchored`: has_member_anchors)."""
    planned = [(v["variant"], v["share"]) for v in experiment["variants"]]
    names = [v for v, _ in planned]
    if control is not None and control not in names:
        raise UsageError(f"--control {control!r} is not one of {', '.join(names)}")
    start = experiment["starts_on"]
    return Design(audience_members_sql(experiment["name"], start, anchored=anchored), planned,
                  control or experiment["control"], goal or experiment["goal"] or DEFAULT_GOAL,
                  {"source": "audience", "start": start.isoformat(),
                   "expr": experiment["expression"], "seed": experiment["seed"],
                   "created_by": experiment["created_by"]})


def attribute_design(variant_from: str, *, as_of: dt.date, goal: str | None,
                     control: str | None, entry: str | None, since: dt.date | None,
                     variants: str | None) -> Design:
    """Variants from an event or lead attribute (`--variant-from`)."""
    goal = goal or DEFAULT_GOAL
    members = attribute_members_sql(variant_from, goal=goal, as_of=as_of, entry=entry,
                                    since=since)
    return Design(members, None if variants is None else parse_variants(variants), control,
                  goal, {"source": "attribute", "variant_from": variant_from, "entry": entry,
                         "since": since.isoformat() if since else None})


def evaluate(ws, name: str, *, as_of: dt.date, goal: str | None = None,
             window_days: int = DEFAULT_WINDOW_DAYS, variant_from: str | None = None,
             entry: str | None = None, since: dt.date | None = None,
             variants: str | None = None, control: str | None = None,
             show: Callable[[str], str] = str) -> dict:
    """The report of experiment `name`; the verdict names variants as `show` shows them."""
    experiment = load_experiment(ws, name)
    if variant_from is None:
        if experiment is None:
            raise NotFound(f"no experiment named {name!r}: record one with `leadctl audience "
                           "export`, or evaluate an attribute with --variant-from utm_content")
        if variants is not None or entry is not None or since is not None:
            raise UsageError("--variants, --entry and --since are for --variant-from "
                             "experiments; this one was recorded by audience export")
        design = recorded_design(experiment, goal=goal, control=control,
                                 anchored=has_member_anchors(ws))
    else:
        if experiment is not None:
            raise UsageError(f"experiment {name!r} was recorded by audience export: drop "
                             "--variant-from, or give the attribute experiment another name")
        design = attribute_design(variant_from, as_of=as_of, goal=goal, control=control,
                                  entry=entry, since=since, variants=variants)
    rows = ws.rows(ab_counts_sql(design.members, goal=design.goal, window_days=window_days,
                                 as_of=as_of))
    counts = {str(r["variant"]): r for r in rows}
    warnings = []
    if not ws.scalar(goal_events_sql(design.goal)):
        warnings.append(f"no event of type {design.goal!r} in the workspace")
    unmapped = unmapped_events_warning(ws.scalar(unmapped_events_sql()))
    if unmapped:
        warnings.append(unmapped)
    if entry is not None and variant_from is not None and not ws.scalar(goal_events_sql(entry)):
        warnings.append(f"no event of type {entry!r} in the workspace (--entry)")
    if variant_from is None:
        several = ws.scalar(persons_in_several_variants_sql(design.members))
        if several:
            warnings.append(f"{several} person{'s are' if several > 1 else ' is'} in more "
                            "than one variant: a later merge joined members of different "
                            "arms, and each arm counts them")
    if since is not None and since > as_of:
        warnings.append(f"--since {since.isoformat()} is after the as-of "
                        f"{as_of.isoformat()}: nobody can have entered")
    elif variant_from is not None and not counts:
        warnings.append(f"no person has an entry carrying {variant_from!r} before "
                        f"{as_of.isoformat()}: check the attribute's name (--variant-from)")
    planned = design.planned or [(v, 1.0) for v in sorted(counts)]
    names = [v for v, _ in planned]
    control = design.control
    if control is None:
        real = [v for v in names if v != HOLDOUT]
        control = real[0] if real else None
    elif control not in names:
        raise UsageError(f"--control {control!r} is not one of "
                         f"{', '.join(names) or 'the observed variants (none)'}")
    total_weight = sum(w for _, w in planned) or 1.0
    arms = [_arm(v, w / total_weight, counts.get(v), v == control) for v, w in planned]
    # Comparisons name their arms by position too: variants from an attribute can be
    # phones, and two masked alike would otherwise be one name (`report_ab` masks them).
    position = {a["variant"]: i for i, a in enumerate(arms, start=1)}
    comparisons = [_compare(arm, _find(arms, control), position) for arm in arms
                   if control is not None and arm["variant"] not in (control, HOLDOUT)]
    srm = stats.sample_ratio([a["persons"] for a in arms], [a["planned"] for a in arms])
    return {"experiment": name, **design.shown, "goal": design.goal,
            "window_days": window_days, "as_of": as_of.isoformat(), "control": control,
            "open_windows": sum(int(r["open"]) for v, r in counts.items() if v in names),
            "excluded": sum(int(r["persons"]) for v, r in counts.items() if v not in names),
            "variants": arms, "comparisons": comparisons,
            "srm": srm.to_dict() if srm else None,
            "verdict": verdict(arms, comparisons, srm, control, show),
            "warnings": warnings}


def _find(arms: list[dict], variant: str) -> dict:
    return next(a for a in arms if a["variant"] == variant)


def _arm(variant: str, planned: float, row: dict | None, is_control: bool) -> dict:
    persons = int(row["persons"]) if row else 0
    converted = int(row["converted"]) if row else 0
    ci = stats.wilson(converted, persons)
    return {"variant": variant, "persons": persons, "converted": converted,
            "rate": converted / persons if persons else None,
            "ci": list(ci) if ci else None, "planned": planned, "control": is_control}


def enough_data(arm: dict, control: dict) -> bool:
    return (min(arm["persons"], control["persons"]) >= stats.MIN_PERSONS
            and arm["converted"] + control["converted"] >= stats.MIN_CONVERSIONS)


def _compare(arm: dict, control: dict, position: dict[str, int]) -> dict:
    x1, n1, x2, n2 = arm["converted"], arm["persons"], control["converted"], control["persons"]
    ci = stats.newcombe(x1, n1, x2, n2)
    test = stats.two_proportion_p(x1, n1, x2, n2)
    empty = ci is None
    return {"variant": arm["variant"], "vs": control["variant"],
            "arm": position[arm["variant"]], "vs_arm": position[control["variant"]],
            "diff": None if empty else x1 / n1 - x2 / n2,
            "ci": None if empty else list(ci),
            "p_value": None if empty else test[0], "test": None if empty else test[1],
            "power": None if empty else stats.power(x1 / n1, n1, x2 / n2, n2),
            "enough_data": enough_data(arm, control)}


# -- the verdict --------------------------------------------------------------------------

def p_text(p: float, digits: int = 2) -> str:
    """A p-value in `digits` significant digits, more when rounding would carry one
    below 0.05 up to it (0.04999 is not printed as 0.05; closer still: `< 0.05`)."""
    for more in range(digits, 7):
        text = f"{p:.{more}g}"
        if not p < stats.ALPHA <= float(text):
            return text
    return f"< {stats.ALPHA:g}"


def fmt_p(p: float) -> str:
    if p < 0.001:
        return "p < 0.001"
    text = p_text(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def _pts(value: float) -> str:
    return f"{value * 100:.1f}"


def arm_labels(names: list[str]) -> list[str]:
    """The variants' names as a table and the verdict show them (already masked): a name
    that two variants share (two phones masked alike) gets its arm number, `139****5678 #2`."""
    shared = Counter(names)
    return [f"{name} #{i}" if shared[name] > 1 else name
            for i, name in enumerate(names, start=1)]


def _counts(name: str, arm: dict) -> str:
    return f"{name} {arm['converted']}/{arm['persons']}"


def comparison_verdict(c: dict, arm: dict, control: dict, name: str, control_name: str) -> str:
    """The verdict of one comparison; `name` and `control_name` are the arms as shown."""
    if c["diff"] is None:
        empty = name if arm["persons"] == 0 else control_name
        return f"No verdict for {name} vs {control_name}: {empty} has no persons."
    lo, hi = c["ci"]
    if c["diff"] >= 0:
        better, worse, diff, lo_b, hi_b = name, control_name, c["diff"], lo, hi
    else:
        better, worse, diff, lo_b, hi_b = control_name, name, -c["diff"], -hi, -lo
    gap = (f"{better} converts {_pts(diff)} pts better than {worse}"
           if diff else f"{name} and {control_name} convert the same")
    stated = f"{gap}, 95% CI {_pts(lo_b)}–{_pts(hi_b)}, {fmt_p(c['p_value'])}"
    if not c["enough_data"]:
        return (f"No winner yet, too little data ({_counts(name, arm)}, "
                f"{_counts(control_name, control)}; a verdict needs {stats.MIN_PERSONS} "
                f"persons per variant and {stats.MIN_CONVERSIONS} conversions): {stated}.")
    if c["p_value"] >= stats.ALPHA:
        return f"No significant difference between {name} and {control_name}: {stated}."
    if lo <= 0 <= hi:  # the test and the interval disagree at the edge: no winner
        return (f"No clear winner between {name} and {control_name}: the "
                f"95% CI of the difference includes 0 though {fmt_p(c['p_value'])}: "
                f"{stated}.")
    return stated


def verdict(arms: list[dict], comparisons: list[dict], srm, control: str | None,
            show: Callable[[str], str] = str) -> str:
    """The plain verdict, naming variants as `show` shows them (masked, numbered when
    two look alike)."""
    if not any(a["persons"] for a in arms):
        return "No verdict: nobody is in the experiment."
    if control is None or not comparisons:
        return "No verdict: there is nothing to compare (fewer than two variants)."
    if srm is not None and srm.mismatch:
        return (f"No winner declared: sample ratio mismatch (persons per variant off the "
                f"planned split, {fmt_p(srm.p_value)}); check the assignment first.")
    labels = arm_labels([show(a["variant"]) for a in arms])
    return " ".join(comparison_verdict(c, arms[c["arm"] - 1], arms[c["vs_arm"] - 1],
                                       labels[c["arm"] - 1], labels[c["vs_arm"] - 1])
                    for c in comparisons)
