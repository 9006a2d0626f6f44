"""One typo, one error: `leadctl rules check` on the shipped rules with a single typo
prints exactly one error line, naming the near miss, and exits 2. What only follows
from the typo (tags, scores and routes naming a broken tag, routes naming a broken pool,
`decay: true` under a broken decay, ...) says nothing more."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import RULES, Cli

KINDS = "(known: tiers, metric, first, last, top, active_days, streak, rfm, expr)"
FIELDS = ("acquisition_channel, active_days_30d, activity_level, avg_order_amount_180d, "
          "categories_bought_180d, channel, city, days_since_first_payment, "
          "days_since_last_activity, days_since_last_login, days_since_last_payment, "
          "favourite_category_90d, first_order_category, first_seen, form_submits_30d, "
          "last_seen, lead_count, lifecycle_stage, login_days_30d, login_streak_30d, ...")

TYPOS = [  # file, text, the typo, the one error ("line:col: message")
    ("tags.yaml", "\ntags:\n", "\ntag:\n",  # every tag: scoring, routing, funnels name them
     "33:1: unknown key 'tag' (did you mean 'tags'?) (known: categories, event_attributes, "
     "tags)"),
    ("tags.yaml", "kind: metric", "kind: metrc",  # value_tier names it
     f"36:11: tag 'paid_orders_7d': unknown kind 'metrc' (did you mean 'metric'?) {KINDS}"),
    ("tags.yaml", "kind: tiers", "kind: tires",  # scoring.yaml and routing.yaml name it
     f"70:11: tag 'value_tier': unknown kind 'tires' (did you mean 'tiers'?) {KINDS}"),
    ("tags.yaml", "kind: rfm\n", "kind: rfn\n",
     f"121:11: tag 'rfm_segment': unknown kind 'rfn' (did you mean 'rfm'?) {KINDS}"),
    ("tags.yaml", "name: paid_orders_7d", "name: Paid_orders_7d",
     "35:11: tag name 'Paid_orders_7d' must be lower_snake_case (letters, digits, _) and "
     "not a reserved word"),
    ("tags.yaml", "window: 7d", "window: 7x",
     "41:13: tag 'paid_orders_7d': window must be a number of days like 30d (or `all`), "
     "not '7x'"),
    ("tags.yaml", "page: string", "page: strng",
     "31:9: unknown type 'strng' for event attribute 'page' (did you mean 'string'?) "
     "(known: number, string, boolean, date, timestamp)"),
    ("tags.yaml", "expr: lead_count >= 2", "expr: lead_cont >= 2",  # scoring names it
     f"268:11: tag 'repeat_lead': unknown field 'lead_cont' (did you mean 'lead_count'?) "
     f"(known: {FIELDS})"),
    ("tags.yaml", "expr: lead_count >= 2", "expr: lead_count >= 2 and repeat_lead",
     "264:5: dependency cycle: repeat_lead -> repeat_lead"),
    ("tags.yaml", "category: profile\n", "category: profil\n",
     "260:15: tag 'acquisition_channel': unknown category 'profil' (did you mean 'profile'?) "
     "(known: value, behaviour, preference, lifecycle, profile)"),
    ("scoring.yaml", "when: value_tier = 'high'", "when: value_teir = 'high'",
     f"34:11: score rule 'high_value' when: unknown field 'value_teir' (did you mean "
     f"'value_tier'?) (known: {FIELDS})"),
    ("scoring.yaml", "half_life_days: 30", "half_life_days: 0",  # `decay: true` uses it
     "24:19: scoring.yaml: decay needs `half_life_days:`, a number of days from 1 to 36500"),
    ("scoring.yaml", "  B: 45", "  B: 45O",
     "15:6: grade 'B': minimum score must be a number, not '45O'"),
    ("routing.yaml", "allocation: claim ", "allocation: clam ",
     "59:17: pool 'public_sea': allocation must be one of round_robin, weighted, "
     "least_loaded, claim, not 'clam' (did you mean 'claim'?)"),
    ("routing.yaml", "allocation: weighted", "allocation: weigted",  # its reps have weights
     "45:17: pool 'sales_south': allocation must be one of round_robin, weighted, "
     "least_loaded, claim, not 'weigted' (did you mean 'weighted'?)"),
    ("routing.yaml", "name: public_sea", "name: public-sea",  # a route and the lifecycle
     "57:11: pool name 'public-sea' must be lower_snake_case (letters, digits, _)"),
    ("routing.yaml", "name: nurture", "name: Nurture",  # from: lists and default_pool
     "62:11: pool name 'Nurture' must be lower_snake_case (letters, digits, _)"),
    ("routing.yaml", "pool: sales_east", "pool: sales_eats",
     "92:11: route 'hot_east': unknown pool 'sales_eats' (did you mean 'sales_east'?) "
     "(known: dormant, key_accounts, nurture, public_sea, sales_east, sales_other, "
     "sales_south)"),
    ("routing.yaml", "when: grade = 'C'", "when: grade = 'C' and pool = 'nurtre'",
     "114:34: route 'warm' when: unknown pool 'nurtre' (did you mean 'nurture'?) (known: "
     "dormant, key_accounts, nurture, public_sea, sales_east, sales_other, sales_south)"),
    ("routing.yaml", "when: grade = 'C'", "when: grade = 'C' and status not in ('pendng')",
     "114:42: route 'warm' when: unknown status 'pendng' (did you mean 'pending'?) (known: "
     "pending, contacting, unclear_intent, clear_intent, appointment, closed)"),
    ("routing.yaml", "contacting: 14", "contactng: 14",
     "137:5: lifecycle: status_sla_days: unknown status 'contactng' (did you mean "
     "'contacting'?) (known: pending, contacting, unclear_intent, clear_intent, appointment)"),
    ("routing.yaml", "capacity_period: week", "capacity_period: weak",
     "15:18: capacity_period must be one of day, week, month, not 'weak' (did you mean "
     "'week'?)"),
    ("funnels.yaml", "  batch: string", "  batch: strng",  # two funnels' `by:` name it
     "38:10: event attribute 'batch': type must be one of number, string, boolean, date, "
     "timestamp (did you mean 'string'?)"),
    # a mistyped key the rule needs: the unknown key alone, not also "needs `field:`"
    ("tags.yaml", "    field: amount", "    feild: amount",
     "49:5: tag 'paid_amount_7d': unknown field 'feild' (did you mean 'field'?) for kind "
     "metric (allowed: name, kind, category, description, highlight, event, agg, field, "
     "window, where)"),
    ("tags.yaml", "    levels:", "    levls:",
     "74:5: tag 'value_tier': unknown field 'levls' (did you mean 'levels'?) for kind tiers "
     "(allowed: name, kind, category, description, highlight, levels, default)"),
    ("tags.yaml", "      - name: high", "      - nam: high",
     "75:9: tag 'value_tier': unknown field 'nam' in a level (did you mean 'name'?) "
     "(allowed: name, when)"),
    ("tags.yaml", "    recency: days", "    recncy: days",
     "125:5: tag 'rfm_segment': unknown field 'recncy' (did you mean 'recency'?) for kind "
     "rfm (allowed: name, kind, category, description, highlight, recency, frequency, "
     "monetary, labels)"),
    ("tags.yaml", "expr: lead_count >= 2", "exp: lead_count >= 2",
     "268:5: tag 'repeat_lead': unknown field 'exp' (did you mean 'expr'?) for kind expr "
     "(allowed: name, kind, category, description, highlight, expr, type)"),
    ("scoring.yaml", "    points: 40", "    pionts: 40",
     "35:5: score rule 'high_value': unknown key 'pionts' (did you mean 'points'?) "
     "(allowed: name, description, when, points, decay)"),
    ("routing.yaml", "{name: rep_wang, capacity: 40}", "{nam: rep_wang, capacity: 40}",
     "39:10: pool 'sales_east' rep: unknown key 'nam' (did you mean 'name'?) (allowed: name, "
     "weight, capacity)"),
    ("routing.yaml", "    reassign: true ", "    reasign: true ",  # and its `from:`
     "93:5: route 'hot_east': unknown key 'reasign' (did you mean 'reassign'?) (allowed: "
     "name, description, when, pool, reassign, from)"),
    ("funnels.yaml", "{name: pushed, event: push}", "{name: pushed, evnt: push}",
     "48:24: funnel 'app_install' step 'pushed': unknown key 'evnt' (did you mean 'event'?) "
     "(allowed: name, event, where, description)"),
    ("identity.yaml", "blocklist:\n", "blocklst:\n",
     "29:1: unknown key 'blocklst' (did you mean 'blocklist'?) (known: default_region, cap, "
     "blocklist, survivorship, overrides)"),
    ("sources.yaml", "aliases:\n  phone", "alias:\n  phone",
     "11:1: unknown key 'alias' (did you mean 'aliases'?) (known: aliases, timezone)"),
]


def with_typo(tmp_path, name: str, text: str, typo: str):
    """The shipped rules (without fixtures) with the first `text` of `name` mistyped."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules, ignore=shutil.ignore_patterns("tests"))
    path = rules / name
    original = path.read_text()
    assert text in original
    path.write_text(original.replace(text, typo, 1))
    return Cli(tmp_path / "ws.duckdb", rules), path


@pytest.mark.parametrize(("name", "text", "typo", "error"), TYPOS,
                         ids=[typo.split("\n")[0].strip() for _, _, typo, _ in TYPOS])
def test_one_typo_is_one_error(tmp_path, name, text, typo, error):
    cli, path = with_typo(tmp_path, name, text, typo)
    result = cli("rules", "check")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [f"error: {path}:{error}"]


def test_one_typo_is_one_problem_in_json(tmp_path):
    cli, path = with_typo(tmp_path, "tags.yaml", "kind: tiers", "kind: tires")
    result = cli("rules", "check", "--json")
    assert result.exit_code == 2
    problems = [{"file": str(path), "line": 70, "col": 11, "message": "tag 'value_tier': "
                 f"unknown kind 'tires' (did you mean 'tiers'?) {KINDS}"}]
    document = result.json()
    assert (document["ok"], document["problems"], document["exit_code"]) == (False, problems, 2)
    assert (document["error"]["type"], document["error"]["location"],
            document["error"]["problems"]) == ("RuleError", f"{path}:70:11", problems)


def test_a_real_second_typo_is_still_reported(tmp_path):
    """Only references to the broken name are quiet: another unknown name is an error."""
    cli, path = with_typo(tmp_path, "tags.yaml", "kind: tiers", "kind: tires")
    scoring = path.parent / "scoring.yaml"
    scoring.write_text(scoring.read_text().replace("when: login_days_30d >= 5",
                                                   "when: login_dayz_30d >= 5"))
    result = cli("rules", "check")
    assert result.exit_code == 2
    assert [line.split(": ", 2)[2] for line in result.stderr.splitlines()] == [
        f"score rule 'frequent_logins' when: unknown field 'login_dayz_30d' (did you mean "
        f"'login_days_30d'?) (known: {FIELDS})",
        f"tag 'value_tier': unknown kind 'tires' (did you mean 'tiers'?) {KINDS}"]


NAMED_BY_A_TAG = [  # the typo (in repeat_lead, the last tag), its one error
    ("expr: lead_count >= 2", "expr: lead_cont >= 2",
     f"268:11: tag 'repeat_lead': unknown field 'lead_cont' (did you mean 'lead_count'?) "
     f"(known: {FIELDS})"),
    ("expr: lead_count >= 2", "expr: lead_count >= 2 and repeat_lead",
     "264:5: dependency cycle: repeat_lead -> repeat_lead"),
    ("expr: lead_count >= 2", "expr: 'null'",
     "268:11: tag 'repeat_lead': the expression is always null; give it a value"),
]


@pytest.mark.parametrize(("text", "typo", "error"), NAMED_BY_A_TAG,
                         ids=["typo", "cycle", "null"])
def test_a_tag_naming_a_broken_expr_tag_says_nothing(tmp_path, text, typo, error):
    """A tag naming a broken expr tag (a typo, a cycle, a type that stays unknown) adds
    no `unknown field 'repeat_lead'` of its own: the expr tags are checked with the set
    of broken names that grows as they are checked."""
    cli, path = with_typo(tmp_path, "tags.yaml", text, typo)
    path.write_text(path.read_text() + "\n  - {name: many_leads, kind: expr, category: "
                    "profile, description: x, expr: \"repeat_lead and lead_count > 3\"}\n")
    result = cli("rules", "check")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [f"error: {path}:{error}"]


def test_a_funnel_step_naming_a_broken_event_attribute_says_nothing(tmp_path):
    cli, path = with_typo(tmp_path, "funnels.yaml", "  batch: string", "  batch: strng")
    path.write_text(path.read_text().replace("where: \"status = 'delivered'\"",
                                             "where: \"batch = 'b1'\"", 1))
    result = cli("rules", "check")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"error: {path}:38:10: event attribute 'batch': type must be one of number, string, "
        "boolean, date, timestamp (did you mean 'string'?)"]


@pytest.mark.parametrize("when", [
    "when: grade = 'C' and channel != 'status = ''new'''",
    "when: grade = 'C' and channel in ('a', 'pool in (''x'')')",
    "when: grade = 'C' and channel = 'grade = ''Z'''",
])
def test_a_comparison_written_inside_a_text_value_is_no_comparison(tmp_path, when):
    # a literal's content was read as `status = ''` / `pool in ('x')`: unknown status ''
    cli, _ = with_typo(tmp_path, "routing.yaml", "when: grade = 'C'", when)
    result = cli("rules", "check")
    assert (result.exit_code, result.stderr) == (0, "")
