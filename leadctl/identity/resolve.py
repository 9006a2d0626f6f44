"""`leadctl resolve`: normalise identifiers, link records, assign stable person ids,
build golden records and map event subjects — all set-based SQL on the workspace.

    summary = resolve_identities(ws, load_identity_config(rules_dir), run_id)

The first resolve (and one after any change of the identity rules, with overrides, or
`full`) builds everything from `leads` + `events` + identity.yaml; the previous run's
person ids are read first so that persons keep their ids, and merges/splits are
appended to `identity_history`. After that a resolve relinks only the region the news
touches (identity/region.py): new or changed leads, the persons holding their values, and
all those persons' leads; rows outside it are kept. Normalising is incremental too: new
or changed leads and new event subjects are normalised, the rest comes from the
normalisation cache (identity/cache.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from leadctl.errors import LeadctlError, RuleError
from leadctl.identity import cache, history, link, normalize, persons, places, region, subjects
from leadctl.identity import overrides_sql as osql
from leadctl.identity.config import ID_TYPES, IdentityConfig
from leadctl.identity.tables import ID_MOVES, IDENTITY_STATE_KEY
from leadctl.pii import mask, mask_text
from leadctl.sqltext import meta_value_sql, set_meta_sql
from leadctl.workspace import Workspace

MAX_ROUNDS = 200  # large-star/small-star needs O(log² n) rounds; a handful in practice
TOP_BLOCKED = 10

# Working tables (TEMP: never published, gone with the connection).
T = {name: f"_oneid_{name}" for name in (
    "prev", "prev_persons", "prev_aliases", "added_subjects", "new_subjects", "subject_phones",
    "extra_keys", "changed_leads", "ids", "preferred", "touched_values", "changed_keys",
    "redone_leads", "region_persons", "region_leads", "changed_subjects", "some_subjects",
    "some_subject_keys", "subjects_before", "subjects_after",
    "shared", "edges", "stars", "done", "comps", "members", "anchors",
    "overlap", "winners", "person_ids", "proposed", "reasons", "id_rows",
    "golden", "places", "given_places", "phone_places",
    # identity overrides (overrides_sql.py)
    "ov_entries", "ov_refs", "ov_members", "ov_pairs", "cuts", "violated", "graph",
    "must_groups", "ends", "seen_leads", "seen_nodes", "back_leads", "back_nodes",
    "layer_edges", "chosen", "row_cuts")}
T["moves"] = ID_MOVES  # public: a `preferred` query reads it


@dataclass
class ResolveSummary:
    leads: int = 0
    persons: int = 0
    multi_lead_persons: int = 0
    largest_person: int = 0
    # per identifier type: rows, ok, invalid, blocked, capped, linking (ok and shared)
    identifiers: dict[str, dict[str, int]] = field(default_factory=dict)
    blocked_values: int = 0
    capped_values: int = 0
    top_blocked: list[dict] = field(default_factory=list)  # values masked
    phone_leftovers: int = 0  # distinct phones parsed by phonenumbers (new ones only)
    normalised_leads: int = 0  # leads normalised by this run (new or changed)
    normalised_subjects: int = 0  # phone subjects normalised by this run (new)
    rounds: int = 0  # large-star/small-star rounds
    ids: dict[str, int] = field(default_factory=dict)  # kept, new, retired
    merges: int = 0  # 'merge' rows appended to identity_history by this run
    splits: int = 0  # 'split' rows appended by this run
    subjects: dict[str, int] = field(default_factory=dict)  # matched, unmatched, ambiguous
    subjects_rebuilt: bool = False  # event subjects read from all events (else: new files)
    relinked_leads: int = 0  # leads linked again: all, or the region the news touched
    # must_link / cannot_link entries: entries, must_link and cannot_link applied,
    # cut_values, warnings (what could not be applied; values masked)
    overrides: dict = field(default_factory=dict)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


# The steps of _resolve, in order: each one's time is kept, and reported as progress.
STEPS = ("normalise", "status", "components", "person_ids", "persons", "subjects")


class _Clock:
    def __init__(self, timings: dict[str, float], progress=None):
        self.timings = timings
        self.progress = progress
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self.last, 3)
        self.last = now
        if self.progress is not None:
            done = STEPS.index(name) + 1
            self.progress(done, len(STEPS), STEPS[done] if done < len(STEPS) else "")


def resolve_identities(ws: Workspace, config: IdentityConfig | None = None,
                       run_id: int | None = None, progress=None,
                       preferred: str | None = None, full: bool = False) -> ResolveSummary:
    """Rebuilds lead_identifiers, blocked_identifiers, person_leads, persons,
    person_aliases and subject_persons; appends merges/splits to identity_history.
    `progress(done, total, next step)` is called after each step when given.
    `preferred`: a query of `(person_id, priority)` — on a merge, the id with the lowest
    priority survives (before the oldest); the caller decides which ids matter (routing:
    the persons a rep holds), identity knows nothing of them; it may read ID_MOVES
    (`old_id, comp`: the component each id of the previous run goes to this run,
    history.moves_sql), so that it can rank a person by what goes with it. `full`:
    golden records and event subjects of everyone, not only what changed since the last
    resolve."""
    config = config or IdentityConfig()
    summary = ResolveSummary()
    started = time.perf_counter()
    clock = _Clock(summary.timings, progress)
    if progress is not None:
        progress(0, len(STEPS), STEPS[0])
    # Nothing here depends on row order.
    with ws.unordered():
        _resolve(ws, config, summary, clock, run_id, preferred, full)
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary


def _resolve(ws: Workspace, config: IdentityConfig, summary: ResolveSummary, clock: _Clock,
             run_id: int | None, preferred: str | None = None, full: bool = False) -> None:
    try:
        _keep_previous(ws)
        summary.phone_leftovers, blocked_keys = _normalise(ws, config, summary, full)
        clock.lap("normalise")
        # Identity rules and normalising as a hash: a region needs the last resolve's.
        key = "" if config.overrides else _state_key(ws, config, blocked_keys)
        region = _region(ws, config, key, full)
        summary.relinked_leads = ws.scalar(
            f"SELECT count(*) FROM {T['region_leads'] if region else 'leads'}")
        _link_values(ws, config, blocked_keys, region)
        _prepare_overrides(ws, config, summary)
        clock.lap("status")
        summary.rounds = _components(ws, config, blocked_keys)
        _mark_cuts(ws, config, summary)
        clock.lap("components")
        _assign_ids(ws, run_id, preferred, region)
        clock.lap("person_ids")
        _golden_records(ws, config, region)
        clock.lap("persons")
        _subject_persons(ws, region and not summary.subjects_rebuilt, run_id)
        _store_state(ws, key, config.default_region)
        clock.lap("subjects")
        _summarise(ws, summary)
    finally:
        _drop_working_tables(ws)


def _keep_previous(ws: Workspace) -> None:
    ws.execute(f"CREATE OR REPLACE TEMP TABLE {T['prev']} AS "
               "SELECT lead_key, person_id FROM person_leads")
    ws.execute(f"CREATE OR REPLACE TEMP TABLE {T['prev_persons']} AS "
               "SELECT person_id, first_seen FROM persons")
    ws.execute(f"CREATE OR REPLACE TEMP TABLE {T['prev_aliases']} AS "
               "SELECT old_person_id, person_id FROM person_aliases")


def _normalise(ws: Workspace, config: IdentityConfig, summary: ResolveSummary,
               full: bool = False) -> tuple[int, dict[str, list[str]]]:
    """Brings the normalisation cache up to date (identifier rows of new or changed
    leads, keys of new phone subjects) and normalises the blocklist values the same
    way; returns (distinct phones parsed by phonenumbers, blocklist keys per type)."""
    pattern = normalize.cn_mobile_pattern()
    cn_default = config.default_region == "CN"
    key = cache.normalisation_key(config.default_region, pattern, normalize.identifiers_sql(
        "t", "leads", ID_TYPES, pattern, cn_default) + subjects.subject_phones_sql(
        "t", "s", pattern, cn_default))
    cleared = ws.scalar(cache.stored_key_sql()) != key
    if cleared:
        ws.script(cache.clear_sql())
    summary.subjects_rebuilt = _update_event_subjects(ws, full)
    # Phone subjects to normalise: the new ones (all of them after a rebuild or clear).
    ws.execute(cache.new_subjects_sql(T["new_subjects"], cache.EVENT_SUBJECTS
                                      if cleared or summary.subjects_rebuilt
                                      else T["added_subjects"]))
    ws.execute(subjects.subject_phones_sql(T["subject_phones"], T["new_subjects"], pattern,
                                           cn_default))
    extra = [("block", t, v) for t in ID_TYPES for v in config.blocked_values.get(t, ())]
    extra += osql.value_refs(list(config.overrides))  # ref 'ov:<entry>'
    ws.execute(normalize.keyed_values_sql(T["extra_keys"], normalize.values_table_sql(extra),
                                          pattern, cn_default))
    ws.execute(cache.changed_leads_sql(T["changed_leads"]))
    ws.execute(cache.touched_values_sql(T["touched_values"], T["changed_leads"]))
    ws.script(cache.forget_leads_sql(T["changed_leads"]))
    ws.execute(normalize.identifiers_sql(T["ids"], T["changed_leads"], ID_TYPES, pattern,
                                         cn_default))
    parsed = normalize.normalize_phone_leftovers(
        ws, [T["ids"], T["extra_keys"], T["subject_phones"]], config.default_region)
    if ws.scalar(f"SELECT count(*) FROM {T['ids']} WHERE split"):
        ws.execute(normalize.dedupe_split_sql(T["ids"]))
    ws.script(cache.add_leads_sql(T["changed_leads"], T["ids"]))
    ws.execute(f"INSERT INTO {T['touched_values']} SELECT DISTINCT id_type, key_value "
               f"FROM {T['ids']}")
    ws.execute(cache.add_subjects_sql(T["subject_phones"]))
    if summary.subjects_rebuilt and ws.scalar(cache.cached_subjects_sql()) != ws.scalar(
            cache.phone_subjects_sql(cache.EVENT_SUBJECTS)):
        ws.execute(cache.prune_subjects_sql(cache.EVENT_SUBJECTS))
    ws.script(cache.store_key_sql(key))
    ws.execute(f"CREATE OR REPLACE TEMP TABLE {T['changed_keys']} AS "
               f"SELECT lead_key FROM {T['changed_leads']}")
    summary.normalised_leads = ws.scalar(f"SELECT count(*) FROM {T['changed_leads']}")
    summary.normalised_subjects = ws.scalar(f"SELECT count(*) FROM {T['new_subjects']}")
    for name in ("ids", "changed_leads", "new_subjects", "subject_phones"):
        ws.execute(f"DROP TABLE {T[name]}")
    blocked_keys: dict[str, list[str]] = {}
    for row in ws.rows(f"SELECT id_type, key_value FROM {T['extra_keys']} "
                       "WHERE ref = 'block' ORDER BY id_type, key_value"):
        blocked_keys.setdefault(row["id_type"], []).append(row["key_value"])
    return parsed, blocked_keys


def _update_event_subjects(ws: Workspace, full: bool) -> bool:
    """Brings event_subjects up to date; True when they were rebuilt (some may be gone)."""
    now = ws.rows(cache.events_seen_sql())[0]
    try:
        seen = None if full else json.loads(ws.scalar(cache.events_seen_state_sql()) or "")
        # Events rows are only ever added: any other count means some went missing.
        if seen["events"] + ws.scalar(cache.new_events_rows_sql(seen)) != now["events"]:
            seen = None
    except (ValueError, KeyError, TypeError):
        seen = None
    ws.script(cache.event_subjects_sql(T["added_subjects"], seen,
                                       {k: int(v) for k, v in now.items()}))
    return seen is None


def _region(ws: Workspace, config: IdentityConfig, key: str, full: bool) -> bool:
    """Whether only the region the news touches is relinked (identity/region.py): when
    the last resolve had the same state `key` (linking statuses and golden records) and
    no overrides apply. Then T['region_persons'] and T['region_leads'] hold it."""
    state = _state(ws)
    if (full or config.overrides or state is None or state.get("key") != key
            or not ws.scalar(f"SELECT count(*) FROM {T['prev']}")):
        return False
    ws.script(region.region_sql(T["region_persons"], T["region_leads"], T["prev"],
                                T["changed_keys"], T["touched_values"], cache.LEAD_VALUES,
                                state["leads_file_id"]))
    return True


def _state_key(ws: Workspace, config: IdentityConfig, blocked: dict[str, list[str]]) -> str:
    """What the published identity depends on besides the leads: normalising, value
    statuses, survivorship and place rules (their SQL) and the place tables."""
    # the preparing statements too: most survivorship picks (arg_max, source ranks) are there
    prepare, query = persons.persons_sql("leads", "c", "m", "i", "p", config, [])
    data = sorted((p.name, p.read_bytes()) for p in places.DATA.iterdir())
    text = json.dumps([ws.scalar(cache.stored_key_sql()),
                       link.lead_identifiers_sql("i", "s", config, blocked), prepare, query,
                       persons.placed_sql("g", "p", "ph"), repr(data)])
    return hashlib.sha256(text.encode()).hexdigest()


def _state(ws: Workspace) -> dict | None:
    text = ws.scalar(meta_value_sql(IDENTITY_STATE_KEY))
    try:
        state = json.loads(text or "")
        return state if isinstance(state, dict) and "leads_file_id" in state else None
    except ValueError:
        return None


def _store_state(ws: Workspace, key: str, region: str) -> None:
    """After a resolve: its key (none with overrides: their cuts change statuses after
    linking), the last leads file it saw, and the default phone region (lookups read it,
    without loading identity.yaml)."""
    state = {"key": key, "leads_file_id": ws.scalar("SELECT coalesce(max(file_id), 0) FROM leads"),
             "region": region}
    ws.script(set_meta_sql(IDENTITY_STATE_KEY, json.dumps(state)))


def _link_values(ws: Workspace, config: IdentityConfig, blocked: dict[str, list[str]],
                 in_region: bool) -> None:
    """Shared values, then `lead_identifiers` with their status: in a region, only the
    rows the news can have changed (link.update_lead_identifiers_sql)."""
    if in_region:
        ws.execute(region.shared_values_sql(T["shared"], cache.LEAD_VALUES,
                                            T["region_leads"]))
        ws.script(link.update_lead_identifiers_sql(
            cache.LEAD_VALUES, T["shared"], config, blocked, T["touched_values"],
            T["changed_keys"], T["redone_leads"]))
    else:
        ws.execute(link.shared_values_sql(T["shared"], cache.LEAD_VALUES))
        ws.execute(link.lead_identifiers_sql(cache.LEAD_VALUES, T["shared"], config, blocked))
    ws.execute(link.publish_blocked_sql())


def _components(ws: Workspace, config: IdentityConfig, blocked: dict[str, list[str]]) -> int:
    """Connected components of the linking graph into T['done'] (lead → smallest lead
    key of its component, for leads in components of two or more); returns the rounds.
    With cannot_link pairs in one component: their cut values, then linking again."""
    rounds = _link_pass(ws, config, blocked)
    if not config.overrides:
        return rounds
    for _ in range(3):  # one cut round separates every pair: the next pass finds none
        ws.execute(osql.violated_sql(T["violated"], T["ov_pairs"], T["done"]))
        if not ws.scalar(f"SELECT count(*) FROM {T['violated']}"):
            return rounds
        _cut_pairs(ws, config)
        rounds += _link_pass(ws, config, blocked)
    raise LeadctlError("cannot_link overrides: pairs still joined after cutting")


def _link_pass(ws: Workspace, config: IdentityConfig, blocked: dict[str, list[str]]) -> int:
    edges, stars, done = T["edges"], T["stars"], T["done"]
    shared = f"({osql.uncut_sql(T['shared'], T['cuts'], 'lead_identifiers')})" \
        if config.overrides else T["shared"]
    ws.execute(link.edges_sql(edges, shared, config, blocked))
    if config.overrides:
        ws.execute(osql.must_link_edges_sql(edges, T["ov_members"]))
    ws.execute(f"CREATE OR REPLACE TEMP TABLE {done} (node BIGINT, label BIGINT)")
    rounds = 0
    while True:
        ws.execute(link.complete_stars_sql(stars, edges))
        ws.script(link.set_aside_sql(done, edges, stars))
        if not ws.scalar(f"SELECT count(*) FROM {edges}"):
            return rounds
        rounds += 1
        if rounds > MAX_ROUNDS:
            raise LeadctlError(f"identity linking did not converge in {MAX_ROUNDS} rounds")
        ws.execute(link.large_star_sql(edges))
        ws.execute(link.small_star_sql(edges))


# -- overrides (identity/overrides_sql.py) ---------------------------------------------------

def _prepare_overrides(ws: Workspace, config: IdentityConfig, summary: ResolveSummary) -> None:
    """The overrides' leads and values found in the data; the values cut up front."""
    overrides = list(config.overrides)
    if not overrides:
        if ws.scalar(f"SELECT count(*) FROM {osql.PUBLISHED}"):
            ws.execute(osql.publish_sql(None))
        return
    ws.execute(osql.entries_sql(T["ov_entries"], overrides))
    ws.execute(osql.lead_refs_sql(T["ov_refs"], overrides, "leads"))
    ws.execute(osql.members_sql(T["ov_members"], T["ov_entries"], T["ov_refs"],
                                T["extra_keys"], "lead_identifiers"))
    ws.execute(osql.pairs_sql(T["ov_pairs"], T["ov_entries"], T["ov_refs"], "leads"))
    ws.execute(osql.value_cuts_sql(T["cuts"], T["ov_entries"], T["extra_keys"]))
    ws.execute(osql.publish_sql(T["ov_entries"], T["ov_members"], T["ov_refs"]))
    warnings = []
    for row in ws.rows(osql.problems_sql(T["ov_entries"], T["ov_refs"], T["extra_keys"],
                                         "lead_identifiers")):
        entry = overrides[row["entry"]]
        item = row["item"] if row["what"] == "lead" else \
            f"{row['what']} {mask(row['what'], row['item'])}"
        warnings.append(f"{entry.kind} at {entry.loc}: {item} {row['problem']} "
                        "(not applied)")
    summary.overrides = {
        "entries": len(overrides),
        "must_link": ws.scalar(f"SELECT count(*) FROM (SELECT entry FROM {T['ov_members']} "
                               "GROUP BY entry HAVING count(*) > 1)"),
        "cannot_link": ws.scalar(f"SELECT count(*) FROM {T['ov_pairs']}") + ws.scalar(
            f"SELECT count(*) FROM {T['ov_entries']} e WHERE e.kind = 'cannot_link' AND "
            f"'ov:' || CAST(e.entry AS VARCHAR) IN (SELECT ref FROM {T['extra_keys']} "
            "WHERE valid)"),
        "cut_values": 0, "warnings": warnings}


def _cut_pairs(ws: Workspace, config: IdentityConfig) -> None:
    """Cuts a layer of values between the two leads of each violated cannot_link pair."""
    seen_leads, seen_nodes, groups, ends = (T["seen_leads"], T["seen_nodes"],
                                            T["must_groups"], T["ends"])
    # leads must_link entries join are one node of the search: only values can be cut
    ws.execute(osql.must_groups_start_sql(groups, T["violated"], T["done"], T["ov_members"]))
    total, rounds = None, 0
    while (now := ws.scalar(osql.must_groups_total_sql(groups))) != total:
        total, rounds = now, rounds + 1
        if rounds > MAX_ROUNDS:
            raise LeadctlError("cannot_link overrides: the must_link groups did not settle")
        ws.execute(osql.must_groups_step_sql(groups))
    ws.execute(osql.graph_sql(T["graph"], T["violated"], T["done"], "lead_identifiers",
                              T["cuts"], groups))
    ws.execute(osql.ends_sql(ends, T["violated"], groups))
    ws.script(osql.search_start_sql(seen_leads, seen_nodes, ends))
    dist, limit = 0, 2 * ws.scalar(f"SELECT count(DISTINCT lead_key) FROM {T['graph']}") + 2
    seen = ws.scalar(osql.seen_count_sql(seen_leads, seen_nodes))
    while True:  # the whole component: a path back to the second lead may pass beyond it
        dist += 1
        if dist > limit:
            raise LeadctlError("cannot_link overrides: the search did not reach both leads")
        ws.execute(osql.search_step_sql(seen_leads, seen_nodes, T["graph"], dist))
        seen, before = ws.scalar(osql.seen_count_sql(seen_leads, seen_nodes)), seen
        if seen == before and dist % 2 == 0:  # a lead step and a value step added nothing
            if ws.scalar(osql.unreached_sql(ends, seen_leads)):
                raise LeadctlError("cannot_link overrides: the search did not reach both leads")
            break
    back_leads, back_nodes = T["back_leads"], T["back_nodes"]
    ws.script(osql.back_start_sql(back_leads, back_nodes, ends, seen_leads))
    total, rounds = None, 0
    while (now := ws.scalar(osql.back_total_sql(back_leads, back_nodes))) != total:
        total, rounds = now, rounds + 1
        if rounds > limit:
            raise LeadctlError("cannot_link overrides: the search back did not settle")
        ws.script(osql.back_step_sql(back_leads, back_nodes, seen_leads, seen_nodes, T["graph"]))
    ws.execute(osql.layer_edges_sql(T["layer_edges"], ends, seen_leads, seen_nodes,
                                    T["graph"], back_leads, back_nodes))
    ws.execute(osql.chosen_layers_sql(T["chosen"], T["layer_edges"], ends, seen_leads))
    stuck = [r["pair"] for r in ws.rows(osql.uncuttable_sql(ends, T["chosen"]))]
    if stuck:
        overrides = list(config.overrides)
        raise RuleError([(overrides[p].loc, f"conflicting overrides: {overrides[p].describe()} "
                          "but must_link entries join the two leads in the data")
                         for p in stuck])
    ws.execute(osql.add_cuts_sql(T["cuts"], T["chosen"], T["layer_edges"], T["violated"]))


def _mark_cuts(ws: Workspace, config: IdentityConfig, summary: ResolveSummary) -> None:
    if not config.overrides or not ws.scalar(f"SELECT count(*) FROM {T['cuts']}"):
        return
    ws.script(osql.mark_cuts_sql(T["row_cuts"], T["cuts"]))
    ws.execute(link.publish_blocked_sql())
    summary.overrides["cut_values"] = ws.scalar(
        f"SELECT count(*) FROM blocked_identifiers WHERE status = '{osql.CUT}'")


def _assign_ids(ws: Workspace, run_id: int | None, preferred: str | None = None,
                in_region: bool = False) -> None:
    comps, ids, members = T["comps"], T["person_ids"], T["members"]
    leads = region.region_leads_sql(T["region_leads"]) if in_region else "leads"
    ws.execute(persons.comps_sql(comps, leads, T["done"]))
    ws.execute(persons.members_sql(members, leads, T["done"]))
    if ws.scalar(f"SELECT count(*) FROM {T['prev']}"):
        ws.execute(history.overlap_sql(T["overlap"], comps, T["prev"]))
        # where each previous id goes: the aliases' map, and what `preferred` may read
        ws.execute(history.moves_sql(T["moves"], T["overlap"], comps, T["prev"],
                                     T["prev_aliases"]))
        if preferred:
            ws.execute(f"CREATE OR REPLACE TEMP TABLE {T['preferred']} AS {preferred}")
        ws.execute(history.winners_sql(T["winners"], T["overlap"], T["prev_persons"],
                                       T["preferred"] if preferred else None))
    else:
        ws.script(history.empty_history_tables_sql(T["overlap"], T["winners"], T["moves"]))
    ws.execute(history.kept_ids_sql(ids, T["winners"]))
    ws.execute(history.anchors_sql(T["anchors"], comps, members, "leads", ids))
    taken = region.taken_ids_sql(T["region_persons"]) if in_region else None
    salt = 0
    while ws.scalar(history.unassigned_sql(T["anchors"], ids)):
        ws.execute(history.propose_new_ids_sql(T["proposed"], T["anchors"], ids, salt, taken))
        ws.execute(history.accept_new_ids_sql(ids, T["proposed"]))
        salt += 1
        if salt > 100:  # 48-bit ids: even one salt round is rare
            raise LeadctlError("could not derive unique person ids")
    if in_region:
        ws.script(region.person_leads_sql(comps, ids, T["region_persons"]))
    else:
        ws.execute(history.person_leads_sql(comps, ids))
    stamp = ws.now()  # identity history's: the workspace zone's clock, as ingest's
    if ws.scalar(f"SELECT count(*) FROM {T['winners']} WHERE NOT survives"):
        ws.execute(history.merge_reasons_sql(T["reasons"], "lead_identifiers", comps,
                                             T["prev"], T["winners"]))
        ws.execute(history.merge_rows_sql(T["winners"], ids, comps, T["reasons"], run_id,
                                          at=stamp))
    ws.execute(history.split_rows_sql(T["overlap"], T["winners"], ids, run_id, at=stamp))
    ws.execute(history.aliases_sql(T["winners"], ids, T["prev_aliases"], T["moves"]))


@contextlib.contextmanager
def places_registered(ws: Workspace, name: str) -> Iterator[None]:
    """The place table (identity/places.py) registered as `name` while the block runs."""
    ws.register(name, places.places_table())
    try:
        yield
    finally:
        ws.unregister(name)


@contextlib.contextmanager
def placed_persons(ws: Workspace, golden: str, given: str, places_table: str,
                   phone_places: str) -> Iterator[str]:
    """The query of `golden`'s persons (every persons column) with city and province
    placed (identity/places.py): what their given values, ID cards and mobile prefixes
    say is stored in `given`. The place table is read as `places_table` (registered by
    `places_registered`); `phone_places` is registered while the block runs."""
    ws.register(phone_places, places.geocode_prefixes([]))
    try:
        ws.execute(places.given_places_sql(given, golden, places_table))
        prefixes = ws.arrow(places.phone_prefixes_sql(given)).column(0).to_pylist()
        if prefixes:
            ws.unregister(phone_places)
            ws.register(phone_places, places.geocode_prefixes(prefixes))
        yield persons.placed_sql(golden, given, phone_places)
    finally:
        ws.unregister(phone_places)


def _golden_records(ws: Workspace, config: IdentityConfig, in_region: bool = False) -> None:
    """Golden records of every person, or in a region of its persons only (the other
    rows stay)."""
    ws.execute(persons.id_rows_sql(T["id_rows"], T["members"],
                                   T["region_leads"] if in_region else None))
    sources = [r["source"] for r in ws.rows(
        f"SELECT DISTINCT source FROM {T['members']} ORDER BY source")]
    prepare, query = persons.persons_sql("leads", T["comps"], T["members"], T["id_rows"],
                                         T["person_ids"], config, sources, T["places"])
    with places_registered(ws, T["places"]):
        ws.script(prepare)
        ws.execute(f"CREATE OR REPLACE TEMP TABLE {T['golden']} AS {query}")
        with placed_persons(ws, T["golden"], T["given_places"], T["places"],
                            T["phone_places"]) as placed:
            if in_region:
                ws.script(persons.update_persons_sql(placed, T["region_persons"],
                                                     T["person_ids"]))
            else:
                ws.execute(persons.publish_persons_sql(placed))
    if ws.scalar("SELECT count(*) FROM persons WHERE phones IS NULL OR emails IS NULL"):
        ws.script(persons.fill_lists_sql())


def _subject_persons(ws: Workspace, in_region: bool, run_id: int | None) -> None:
    """Maps event subjects to persons: in a region, only the new subjects and those the
    region's persons can have re-mapped; else all. Either way the subjects that moved are
    logged in subject_moves (what tagging recomputes: no copy of this table to diff)."""
    if not in_region:
        # Renamed, not copied: the mapping until now, to log what moved (none at first).
        before = T["subjects_before"] if ws.scalar(
            "SELECT count(*) FROM subject_persons") else None
        if before:
            ws.execute(f"ALTER TABLE subject_persons RENAME TO {before}")
        ws.execute(subjects.subject_persons_sql(cache.EVENT_SUBJECTS, cache.SUBJECT_KEYS))
        _derived_subjects(ws, "subject_persons")
        if before:
            ws.execute(subjects.log_moves_sql(run_id, before, "subject_persons"))
        return
    retired = (f"SELECT person_id FROM {T['region_persons']} WHERE person_id NOT IN "
               f"(SELECT person_id FROM {T['person_ids']})")
    ws.execute(subjects.changed_subjects_sql(T["changed_subjects"], cache.EVENT_SUBJECTS,
                                             T["added_subjects"], cache.SUBJECT_KEYS,
                                             T["person_ids"], retired))
    ws.execute(subjects.some_subjects_sql(T["some_subjects"], cache.EVENT_SUBJECTS,
                                          T["changed_subjects"]))
    ws.execute(subjects.some_subjects_sql(T["some_subject_keys"], cache.SUBJECT_KEYS,
                                          T["changed_subjects"]))
    ws.script(subjects.remap_subjects_sql(T["some_subjects"], T["some_subject_keys"],
                                          T["changed_subjects"], T["subjects_before"],
                                          T["subjects_after"]))
    _derived_subjects(ws, T["subjects_after"])
    ws.script(subjects.store_subjects_sql(T["subjects_before"], T["subjects_after"], run_id))


def _derived_subjects(ws: Workspace, table: str) -> None:
    """Person subjects naming no current or merged person: through the lead their id was
    derived from. Only when there are some (it derives the id of every lead)."""
    if ws.scalar(subjects.unmatched_person_subjects_sql(table)):
        ws.execute(subjects.derived_subjects_sql(table))


def _summarise(ws: Workspace, summary: ResolveSummary) -> None:
    row = ws.rows("SELECT count(*) AS persons, count(*) FILTER (WHERE lead_count > 1) AS multi, "
                  "coalesce(max(lead_count), 0) AS largest, coalesce(sum(lead_count), 0) AS leads "
                  "FROM persons")[0]
    summary.persons, summary.multi_lead_persons = row["persons"], row["multi"]
    summary.largest_person, summary.leads = row["largest"], int(row["leads"])
    for r in ws.rows("""
            SELECT id_type, count(*) AS rows,
                count(*) FILTER (WHERE status = 'ok') AS ok,
                count(*) FILTER (WHERE status = 'invalid') AS invalid,
                count(*) FILTER (WHERE status = 'blocked') AS blocked,
                count(*) FILTER (WHERE status = 'capped') AS capped,
                count(*) FILTER (WHERE status = 'ok' AND records > 1) AS linking
            FROM lead_identifiers GROUP BY id_type ORDER BY id_type"""):
        id_type = r.pop("id_type")
        summary.identifiers[id_type] = {k: int(v) for k, v in r.items()}
    counts = ws.rows("SELECT count(*) FILTER (WHERE status = 'blocked') AS blocked, "
                     "count(*) FILTER (WHERE status = 'capped') AS capped "
                     "FROM blocked_identifiers")[0]
    summary.blocked_values, summary.capped_values = counts["blocked"], counts["capped"]
    summary.top_blocked = [
        # a cut value's reason quotes its override's, free text that may name a phone
        {**r, "value": mask(r["id_type"], r["value"]), "reason": mask_text(r["reason"])}
        for r in ws.rows("SELECT id_type, value, status, reason, records FROM "
                         f"blocked_identifiers ORDER BY records DESC, id_type, value "
                         f"LIMIT {TOP_BLOCKED}")]
    ids = ws.rows(f"SELECT count(*) FILTER (WHERE how = 'kept') AS kept, "
                  f"count(*) FILTER (WHERE how = 'new') AS new FROM {T['person_ids']}")[0]
    retired = ws.scalar(f"SELECT count(*) FROM {T['winners']} WHERE NOT survives")
    # Persons outside a relinked region kept their ids too.
    summary.ids = {"kept": summary.persons - ids["new"], "new": ids["new"], "retired": retired}
    summary.merges = ws.scalar(
        f"SELECT count(DISTINCT comp) FROM {T['winners']} WHERE NOT survives")
    summary.splits = ws.scalar(f"SELECT count(*) FROM {T['overlap']} o JOIN {T['winners']} w "
                               "ON w.old_id = o.old_id WHERE o.comp <> w.comp")
    summary.subjects = {r["status"]: r["n"] for r in ws.rows(
        "SELECT status, count(*) AS n FROM subject_persons GROUP BY status ORDER BY status")}


def _drop_working_tables(ws: Workspace) -> None:
    """Every `_oneid_*` table (those of T and the per-field ones of persons.py)."""
    for name in ws.tables_like("_oneid_"):
        ws.execute(f"DROP TABLE IF EXISTS {name}")
