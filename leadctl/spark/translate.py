"""DuckDB statements → Spark actions. Pure: parses with sqlglot, needs no Spark.

Stages speak one SQL (DuckDB's); this module maps each statement onto what
Spark can run. Queries are transpiled by sqlglot. Table writes, which Spark's
plain temp views cannot do in place, become whole-table rewrites that the
executor materialises (checkpointed), so every "table" is an immutable
DataFrame and each write bounds the lineage:

    CREATE TABLE t AS q         → materialise q as t
    CREATE TABLE t (cols)       → materialise an empty, typed t
    INSERT INTO t [(cols)] q    → materialise q aligned to t's columns as a new part of t
    DELETE FROM t WHERE c       → rewrite the parts of t where c matches a row:
                                  SELECT * FROM part WHERE NOT coalesce(c, false)
    UPDATE t SET … [FROM s] …   → rewrite the parts of t with a row to update: a
                                  projection of the part (LEFT JOIN s)
    DROP / ALTER … RENAME       → catalog operations
    BEGIN / COMMIT / SET / …    → nothing (a Spark run is all-or-nothing by its output)

A `WITH x AS MATERIALIZED (…)` (a builder's mark for a CTE read more than once) becomes a
checkpointed temp view made before the statement and dropped after it: Spark inlines a
CTE at every reference, so it would compute x once per reference.
"""

from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import dataclass, field, replace

import sqlglot
from sqlglot import exp
from sqlglot.dialects import DuckDB
from sqlglot.errors import ErrorLevel
from sqlglot.tokens import TokenType

from leadctl.errors import LeadctlError
from leadctl.sqlfn import OVERFLOW_CHECKED

DIALECT_IN = "duckdb"
DIALECT_OUT = "spark"


class UnsupportedStatement(LeadctlError):
    exit_code = 3


@dataclass(frozen=True)
class Action:
    """One thing for the executor to do. `sql` is Spark SQL."""

    kind: str  # noop|query|materialize|empty|append|delete|view|drop|rename|update
    name: str | None = None
    sql: str | None = None
    if_not_exists: bool = False
    columns: tuple[str, ...] = ()  # append: target columns named by the INSERT
    types: tuple[tuple[str, str], ...] = ()  # empty: (column, Spark type)
    assignments: tuple[tuple[str, str], ...] = ()  # update: (column, Spark expression)
    source: str | None = None  # update: Spark SQL of the FROM relation
    new_name: str | None = None  # rename
    if_exists: bool = False  # drop
    extra: dict = field(default_factory=dict)
    # (temp view, Spark SQL): the statement's MATERIALIZED CTEs, made first, in order
    ctes: tuple[tuple[str, str], ...] = ()


def to_spark_sql(sql_or_tree) -> str:
    """One DuckDB query (text or sqlglot tree) as Spark SQL."""
    tree = sqlglot.parse_one(sql_or_tree, read=DIALECT_IN) if isinstance(sql_or_tree, str) \
        else sql_or_tree
    return _portable(tree.copy()).sql(dialect=DIALECT_OUT, unsupported_level=ErrorLevel.RAISE)


def _portable(tree):
    """Applies the rewrites below bottom-up (children first, so rewrites nest)."""
    for node in reversed(list(tree.walk(bfs=False))):
        if isinstance(node, exp.Anonymous):
            rewrite = _FUNCTIONS.get(node.name.lower())
        else:
            rewrite = _NODES.get(type(node))
        new = rewrite(node) if rewrite else node
        if new is not node:
            if node.comments and not new.comments:  # a mark stays for the parent's rewrite
                new.add_comments(node.comments)
            if node is tree:
                tree = new
            else:
                node.replace(new)
    return tree


# -- rewrites: DuckDB forms whose Spark meaning sqlglot does not give us -----------------------


def _renamed(name: str):
    return lambda node: exp.func(name, *node.expressions)


def _json_type(node):
    if node.this == exp.DataType.Type.JSON:
        return exp.DataType.build("STRING")  # JSON values travel as their text
    return node


def _full_match(node):
    """Java's RLIKE finds anywhere, and `$` also matches before a final newline."""
    pattern = node.expression
    if isinstance(pattern, exp.Literal):
        pattern = exp.Literal.string(f"^(?:{pattern.this})\\z")
    else:
        pattern = exp.func("concat", exp.Literal.string("^(?:"), pattern,
                           exp.Literal.string(")\\z"))
    return exp.RegexpLike(this=node.this, expression=pattern)


def _timezone(node):
    """DuckDB: an instant (TIMESTAMPTZ) → the wall-clock time (TIMESTAMP) in a zone."""
    if len(node.expressions) != 2:
        return node
    zone, instant = node.expressions
    local = exp.Anonymous(this="from_utc_timestamp", expressions=[instant, zone])
    return exp.cast(local, exp.DataType.build("TIMESTAMP", dialect=DIALECT_IN))


# A time of 24:00 (ISO 8601's end of a day): DuckDB's cast reads it as the next day's 00:00,
# Spark's as no time at all.
_HOUR_24 = "(?<=\\d[T ])24:00(:00(\\.0+)?)?"


def _try_cast(node):
    """try_cast(text AS TIMESTAMP[TZ]) also reads 24:00 as DuckDB does: the next day."""
    if not node.to.is_type(exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPNTZ,
                           exp.DataType.Type.TIMESTAMPTZ):
        return node
    midnight = node.copy()
    midnight.set("this", exp.Anonymous(this="regexp_replace", expressions=[
        node.this.copy(), exp.Literal.string(_HOUR_24), exp.Literal.string("00:00:00")]))
    next_day = exp.Add(this=midnight, expression=exp.Interval(
        this=exp.Literal.string("1"), unit=exp.Var(this="DAY")))
    return exp.func("coalesce", node.copy(), next_day)


# DuckDB's trim() takes Unicode spaces off (NBSP, the ideographic space U+3000 of Chinese
# input), Spark's only ' ': a name typed as '王五\u3000' must be one value on both.
_SPACES = "\\p{Zs}+"


def _trim(node):
    if node.args.get("expression") is not None:  # trim(x, characters): the same on both
        return node
    side = str(node.args.get("position") or "BOTH").upper()
    pattern = {"LEADING": f"^{_SPACES}", "TRAILING": f"{_SPACES}\\z"}.get(
        side, f"^{_SPACES}|{_SPACES}\\z")
    return exp.Anonymous(this="regexp_replace", expressions=[
        node.this, exp.Literal.string(pattern), exp.Literal.string("")])


# DuckDB's text of bytes: printable ASCII as it is, but for `"`, `'` and `\`; any other
# byte as \xHH. Spark's cast of bytes to text decodes them as UTF-8 instead.
_BLOB_TEXT = sqlglot.parse_one(
    "array_join(transform(regexp_extract_all(__text, '(?s).', 0), c -> "
    "CASE WHEN ascii(c) BETWEEN 32 AND 126 AND ascii(c) NOT IN (34, 39, 92) THEN c "
    "ELSE regexp_replace(hex(encode(c, 'UTF-8')), '(..)', '__byte') END), '')",
    read=DIALECT_OUT)
next(n for n in _BLOB_TEXT.find_all(exp.Literal) if n.this == "__byte").replace(
    exp.Literal.string("\\\\x$1"))  # Java's replacement text for a backslash, x, the hex


def _blob_text(node):
    """CAST(encode(text) AS VARCHAR): the text of a text's UTF-8 bytes, as DuckDB writes
    bytes (a generated lead id hashes a Parquet column of bytes as this text)."""
    if not (isinstance(node.this, exp.Encode) and node.to.is_type(*exp.DataType.TEXT_TYPES)):
        return node
    tree = _BLOB_TEXT.copy()
    tree.find(exp.Column, bfs=False).replace(node.this.this.copy())
    return tree


def _epoch_seconds(node):
    """DuckDB's to_timestamp(seconds) keeps fractions; Spark's from_unixtime would not."""
    if node.args.get("scale"):
        return node
    return exp.Anonymous(this="timestamp_seconds", expressions=[node.this])


def _utc_now(node):
    """DuckDB's now() is read in its session time zone, UTC (workspace._connect), as
    Spark's session zone is."""
    return exp.Anonymous(this="current_timestamp", expressions=[])


def _list_slice(node):
    """DuckDB's end is inclusive; Spark's slice takes a length."""
    items, begin, end = node.expressions
    length = exp.Paren(this=exp.Add(this=exp.Sub(this=exp.Paren(this=end.copy()),
                                                 expression=exp.Paren(this=begin.copy())),
                                    expression=exp.Literal.number(1)))
    return exp.func("slice", items, begin, length)


def _arg_min_max(node):
    if node.args.get("count") is None:
        # DuckDB skips rows whose value is NULL; Spark's min_by/max_by would return it.
        node.set("expression", _unless_null(node.this, node.expression))
        return node
    # The n form: with a FILTER, the Filter node above rewrites both together.
    return node if isinstance(node.parent, exp.Filter) else _top_n(node)


def _filter(node):
    inner = node.this
    if isinstance(inner, (exp.ArgMin, exp.ArgMax)) and inner.args.get("count") is not None:
        return _top_n(inner, node.expression)
    return node


def _ordered_list(node):
    if isinstance(node.this, exp.Order) or node.args.get("order") is not None:
        # collect_list has no order: Spark would silently drop it. Builders sort the
        # list instead (list_sort(list(x))).
        raise UnsupportedStatement("an ordered list()/string_agg() has no Spark form; "
                                   "use list_sort(list(x))")
    return node


def _row_value(node):
    """A row value (ordering key) is a struct in Spark; fields compare left to right."""
    if isinstance(node.parent, (exp.In, exp.Values)):
        return node
    return exp.Struct(expressions=node.expressions)


_STRFTIME = {"Y": "yyyy", "m": "M", "d": "d", "H": "H", "M": "m", "S": "s"}


def java_datetime_pattern(strftime: str) -> str:
    """A DuckDB strptime format as a Spark (java.time) pattern. Like DuckDB, one-digit
    months, days and times parse unless the field touches another field directly
    ('%Y%m%d' needs fixed widths); other text is quoted literally."""
    out, i = [], 0
    while i < len(strftime):
        ch = strftime[i]
        if ch == "%" and i + 1 < len(strftime) and strftime[i + 1] in _STRFTIME:
            code = strftime[i + 1]
            adjacent = strftime[i + 2:i + 3] == "%" or (i > 0 and strftime[i - 2:i - 1] == "%"
                                                          and strftime[i - 1] in _STRFTIME)
            letter = _STRFTIME[code]
            out.append(letter * 2 if adjacent and len(letter) == 1 else letter)
            i += 2
            continue
        if ch == "%":
            raise UnsupportedStatement(f"strptime format {strftime!r} has no Spark form")
        out.append(ch if not ch.isascii() or not ch.isalpha() else f"'{ch}'")
        i += 1
    return "".join(out)


def _try_strptime(text, formats):
    """try_strptime(x, [f1, f2, …]) → the first format that parses, as a wall-clock time."""
    items = formats.expressions if isinstance(formats, exp.Array) else [formats]
    tries = [exp.Anonymous(this="try_to_timestamp", expressions=[
        text.copy(), exp.Literal.string(java_datetime_pattern(f.this))]) for f in items]
    return exp.cast(exp.func("coalesce", *tries) if len(tries) > 1 else tries[0],
                    exp.DataType.build("TIMESTAMP", dialect=DIALECT_IN))


def _unless_null(value, expression):
    return exp.If(this=exp.Is(this=value.copy(), expression=exp.Null()), true=exp.Null(),
                  false=expression)


# DuckDB's JSON text of a double (yyjson's): the shortest digits, in positional notation
# for a leading digit's exponent from -6 to 20 (`0.0000025`, `12345678.5`,
# `15000000000000000.0`), else `1.5e-7`, `1e21`. Spark's is Java's Double.toString, which
# switches to `1.23456785E7` from 1e7 and to `1.0E-4` below 1e-3: those are rewritten
# from their digits and exponent (the same digits; Java before 19 gives more for a few
# extreme values, such as 1e23).
_DOUBLE_JSON = sqlglot.parse_one(
    "CASE WHEN __text NOT LIKE '%E%' THEN __text ELSE "
    "CASE WHEN __text LIKE '-%' THEN '-' ELSE '' END || "
    "CASE WHEN __exp BETWEEN 0 AND 20 THEN CASE WHEN length(__digits) <= __exp + 1 "
    "     THEN rpad(__digits, __exp + 1, '0') || '.0' "
    "     ELSE substr(__digits, 1, __exp + 1) || '.' || substr(__digits, __exp + 2) END "
    "WHEN __exp BETWEEN -6 AND -1 THEN '0.' || repeat('0', -__exp - 1) || __digits "
    "ELSE substr(__digits, 1, 1) || CASE WHEN length(__digits) > 1 "
    "     THEN '.' || substr(__digits, 2) ELSE '' END || 'e' || CAST(__exp AS STRING) END END",
    read=DIALECT_OUT)


def _double_json(value):
    """to_json(CAST(x AS DOUBLE)) on Spark: DuckDB's text (`_DOUBLE_JSON`)."""
    text = exp.cast(value.copy(), "STRING")
    java = "^-?([0-9])[.]([0-9]*?)0*E(-?[0-9]+)$"  # d.dddE-n, trailing zeros cut off
    digits = exp.DPipe(this=_extract(text, java, 1), expression=_extract(text, java, 2))
    power = exp.cast(_extract(text, java, 3), "INT")
    return _unless_null(value, _filled(_DOUBLE_JSON, {
        "__text": text, "__digits": digits, "__exp": power}))


def _filled(template, parts: dict):
    """A copy of template with each placeholder column `__x` replaced by parts["__x"]."""
    return template.copy().transform(
        lambda n: parts[n.name].copy() if isinstance(n, exp.Column) and n.name in parts else n)


def _computed_once(value, name, tree):
    """tree with the lambda variable `name` bound to value, which Spark then computes
    once however often tree uses it: transform(array(value), name -> tree)[0]."""
    mapped = exp.Anonymous(this="transform", expressions=[
        exp.Array(expressions=[value]), exp.Lambda(this=tree, expressions=[name])])
    return exp.Bracket(this=mapped, expressions=[exp.Literal.number(0)], offset=0)


def _extract(text, pattern: str, group: int):
    return exp.Anonymous(this="regexp_extract", expressions=[
        text.copy(), exp.Literal.string(pattern), exp.Literal.number(group)])


def _to_json(value):
    """DuckDB's to_json takes any value; Spark's only structs, arrays and maps: wrap the
    value in an array and strip the brackets. Null struct fields and the timestamp
    text are kept as DuckDB writes them. A value cast to an integer type (the tag values'
    whole numbers) is its decimal text: over 15M values on local[2], 0.6 s against 2.3 s
    through to_json. The brackets go by position (the text always starts with `[` and
    ends with `]`; Spark computes the repeated to_json once): 1.7 s against 2.3–5.2 s
    with regexp_extract."""
    if isinstance(value, exp.Cast) and value.to.this in _INTEGER_TYPES:
        return exp.Cast(this=value.copy(), to=exp.DataType.build("STRING"))
    if isinstance(value, exp.Cast) and value.to.this == exp.DataType.Type.DOUBLE:
        return _double_json(value)
    options = exp.Anonymous(this="map", expressions=[exp.Literal.string(v) for v in (
        "timestampFormat", "yyyy-MM-dd HH:mm:ss", "timestampNTZFormat", "yyyy-MM-dd HH:mm:ss",
        "ignoreNullFields", "false")])
    text = exp.Anonymous(this="to_json", expressions=[exp.Array(expressions=[value.copy()]),
                                                      options])
    inner = exp.Substring(this=text, start=exp.Literal.number(2), length=exp.Sub(
        this=exp.Length(this=text.copy()), expression=exp.Literal.number(2)))
    return _unless_null(value, inner)


# floor()/ceil() of a DOUBLE: DuckDB's is a DOUBLE, Spark's a BIGINT (2^63 - 1 for 1e20,
# `2000000000000000` for 2e15, DuckDB's `2000000000000000.0`). From 2^52 on a DOUBLE is
# whole already (NaN and the infinities stay as they are, as on DuckDB).
_WHOLE_DOUBLE = sqlglot.parse_one(
    "CASE WHEN abs(__v) < 4503599627370496 THEN CAST(__round(__v) AS DOUBLE) ELSE __v END",
    read=DIALECT_OUT)


def _double_floor(node):
    """floor(CAST(x AS DOUBLE)) (the rule compiler's form of floor/ceil of a DOUBLE) → a
    DOUBLE on Spark too; x computed once where it is not a name or a number."""
    value = node.this
    if not (isinstance(value, exp.Cast) and value.to.this == exp.DataType.Type.DOUBLE):
        return node
    plain = isinstance(value.this, (exp.Column, exp.Literal))
    name = exp.to_identifier("whole__")
    bound = value.copy() if plain else exp.Column(this=name.copy())
    tree = _filled(_WHOLE_DOUBLE, {"__v": bound})
    tree.find(exp.Anonymous).replace(type(node)(this=bound.copy()))
    return tree if plain else _computed_once(value.copy(), name, tree)


# A whole-number `+ - *` the rule compiler marked (sqlfn.OVERFLOW_CHECKED): Spark (ANSI
# off) wraps it around past its type, DuckDB stops with this error. try_add & co. are NULL
# past the type; the message is DuckDB's (its type named as DuckDB names it).
_OVERFLOW = {exp.Add: ("try_add", "addition", "+"), exp.Sub: ("try_subtract", "subtraction", "-"),
             exp.Mul: ("try_multiply", "multiplication", "*")}
_CHECKED = ("coalesce({f}(__l, __r), CASE WHEN __l IS NULL OR __r IS NULL THEN NULL ELSE "
            "raise_error(concat('Overflow in {what} of ', CASE typeof({f}(__l, __r)) "
            "WHEN 'tinyint' THEN 'INT8' WHEN 'smallint' THEN 'INT16' WHEN 'int' THEN 'INT32' "
            "ELSE 'INT64' END, ' (', __l, ' {op} ', __r, ')!')) END)")
_CHECKED_TREES = {cls: sqlglot.parse_one(_CHECKED.format(f=f, what=what, op=op), read=DIALECT_OUT)
                  for cls, (f, what, op) in _OVERFLOW.items()}


def _marked(node) -> bool:
    return any(c.strip() == OVERFLOW_CHECKED for c in node.comments or ())


def _overflow_checked(node):
    """A marked whole-number `a + b`, `a - b`, `a * b` → an error past the type, as on
    DuckDB; a and b computed once where they are not names or numbers."""
    if not _marked(node):
        return node
    operands = [node.this, node.expression]
    while any(isinstance(o, exp.Paren) for o in operands):
        operands = [o.this if isinstance(o, exp.Paren) else o for o in operands]
    plain = all(isinstance(o, (exp.Column, exp.Literal)) for o in operands)
    pair = exp.to_identifier("pair__")
    bound = dict(zip(("__l", "__r"), operands if plain else (
        exp.Dot(this=exp.column(pair.copy()), expression=exp.to_identifier(k))
        for k in ("l", "r")), strict=True))
    tree = _filled(_CHECKED_TREES[type(node)], bound)
    if plain:
        return exp.Paren(this=tree)
    struct = exp.Struct(expressions=[exp.alias_(o.copy(), k) for o, k in zip(
        operands, ("l", "r"), strict=True)])
    return _computed_once(struct, pair, tree)


# abs() and `-` of a marked whole number: the one value past the type is its least
# (-2^63 for a BIGINT), which Spark (ANSI off) gives back as it is. DuckDB's messages.
_SIGN_CHECKED = {cls: sqlglot.parse_one(
    "CASE WHEN __v IS NOT NULL AND try_multiply(__v, -1) IS NULL THEN raise_error("
    f"{message}) ELSE {value} END", read=DIALECT_OUT) for cls, message, value in (
        (exp.Abs, "concat('Overflow on abs(', __v, ')!')", "abs(__v)"),
        (exp.Neg, "'Overflow in negation of numeric value!'", "-__v"))}


def _sign_checked(node):
    """abs(x) and -x whose x the rule compiler marked (where the parser puts a comment
    written after -x) → DuckDB's error past the type; x computed once where it is not a
    name or a number."""
    if not _marked(node.this):
        return node
    value = node.this
    while isinstance(value, exp.Paren):
        value = value.this
    plain = isinstance(value, (exp.Column, exp.Literal))
    name = exp.to_identifier("signed__")
    tree = _filled(_SIGN_CHECKED[type(node)],
                   {"__v": value.copy() if plain else exp.Column(this=name.copy())})
    return exp.Paren(this=tree) if plain else _computed_once(value.copy(), name, tree)


_INTEGER_TYPES = {exp.DataType.Type.TINYINT, exp.DataType.Type.SMALLINT,
                  exp.DataType.Type.INT, exp.DataType.Type.BIGINT}


def _top_n(node, where=None):
    """arg_min(v, k, n) → the v of the n smallest k, in order (Spark has no n form)."""
    pair = exp.Struct(expressions=[exp.alias_(node.expression, "k"),
                                   exp.alias_(node.this, "v")])
    pairs = exp.func("collect_list", _unless_null(node.this, _unless_null(node.expression, pair)))
    if where is not None:
        pairs = exp.Filter(this=pairs, expression=where)
    ordered = exp.func("array_sort", pairs)
    if isinstance(node, exp.ArgMax):
        ordered = exp.func("reverse", ordered)
    values = exp.func("transform", ordered, exp.Lambda(
        this=exp.column("v", table="x"), expressions=[exp.to_identifier("x")]))
    top = exp.func("slice", values, exp.Literal.number(1), node.args["count"])
    # Like DuckDB: no rows, no list (NULL rather than []).
    empty = exp.EQ(this=exp.func("size", pairs.copy()), expression=exp.Literal.number(0))
    return exp.If(this=empty, true=exp.Null(), false=top)


def literal_node(value):
    """A Python parameter value as a sqlglot literal (bound before transpiling)."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float, decimal.Decimal)):
        return exp.Literal.number(value)
    if isinstance(value, dt.datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), "TIMESTAMP")
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    if isinstance(value, (list, tuple)):
        return exp.Array(expressions=[literal_node(v) for v in value])
    return exp.Literal.string(str(value))


def bind(sql: str, params):
    """The statement with its `?` placeholders replaced by literals, in text order
    (named `$name` parameters: from a dict)."""
    if params is None:
        return sqlglot.parse_one(sql, read=DIALECT_IN)
    if isinstance(params, dict):
        return sqlglot.parse_one(sql, read=DIALECT_IN).transform(
            lambda n: literal_node(params[n.name])
            if isinstance(n, exp.Placeholder) and n.name in params else n)
    spots = [t for t in DuckDB().tokenize(sql) if t.token_type == TokenType.PLACEHOLDER]
    if len(spots) != len(params):
        raise UnsupportedStatement(f"{len(params)} parameter(s) for {len(spots)} placeholder(s)"
                                   f" in: {' '.join(sql.split())[:120]}")
    for token, value in reversed(list(zip(spots, params, strict=True))):
        text = literal_node(value).sql(dialect=DIALECT_IN)
        sql = sql[:token.start] + text + sql[token.end + 1:]
    return sqlglot.parse_one(sql, read=DIALECT_IN)


def translate(sql: str, params: list | dict | None = None) -> Action:
    """The Spark action for one DuckDB statement."""
    try:
        tree = bind(sql, params)
    except sqlglot.errors.ParseError as exc:
        raise UnsupportedStatement(f"cannot parse statement for Spark: {exc}") from exc
    if isinstance(tree, (exp.Transaction, exp.Commit, exp.Rollback, exp.Set)) or (
            isinstance(tree, (exp.Column, exp.Command)) and tree.sql().upper() == "CHECKPOINT"):
        return Action("noop")
    view = isinstance(tree, exp.Create) and (tree.args.get("kind") or "").upper() == "VIEW"
    ctes = _stored_ctes(tree, keep_inline=view)
    action = _action(tree, sql)
    return replace(action, ctes=ctes) if ctes else action


def _stored_ctes(tree, keep_inline: bool = False) -> tuple[tuple[str, str], ...]:
    """Takes the MATERIALIZED CTEs out of `tree` (in place): each becomes a temp view,
    its references renamed to it. With `keep_inline` (a view, read after the statement)
    they stay inline."""
    stored = []
    for cte in list(tree.find_all(exp.CTE)):
        if not cte.args.get("materialized"):
            continue
        cte.set("materialized", None)
        if keep_inline:
            continue
        name, view = cte.alias, f"__cte_{cte.alias}"
        with_ = cte.parent
        before = [c.copy() for c in with_.expressions[:with_.expressions.index(cte)]]
        query = cte.this.copy()
        if before:
            query.set("with_", exp.With(expressions=before))
        stored.append((view, to_spark_sql(query)))
        cte.pop()
        if not with_.expressions:
            with_.pop()
        for table in tree.find_all(exp.Table):
            if table.name == name and not table.db:
                if not table.alias:  # columns qualified by the CTE's name still resolve
                    table.set("alias", exp.TableAlias(this=exp.to_identifier(name)))
                table.set("this", exp.to_identifier(view))
    return tuple(stored)


def _action(tree, sql: str) -> Action:
    if isinstance(tree, exp.Create):
        return _create(tree)
    if isinstance(tree, exp.Insert):
        return _insert(tree)
    if isinstance(tree, exp.Delete):
        return _delete(tree)
    if isinstance(tree, exp.Update):
        return _update(tree)
    if isinstance(tree, exp.Drop):
        return Action("drop", name=_name(tree.this or tree.args["tables"][0]),
                      if_exists=bool(tree.args.get("exists")))
    if isinstance(tree, exp.Alter):
        actions = tree.args.get("actions") or []
        if len(actions) == 1 and isinstance(actions[0], exp.AlterRename):
            return Action("rename", name=_name(tree.this), new_name=_name(actions[0].this))
    if isinstance(tree, exp.Query):
        return Action("query", sql=to_spark_sql(tree))
    raise UnsupportedStatement(f"no Spark form for statement: {' '.join(sql.split())[:120]}")


def _name(table) -> str:
    if isinstance(table, exp.Schema):
        table = table.this
    return table.name


def _create(tree) -> Action:
    kind = (tree.args.get("kind") or "").upper()
    name = _name(tree.this)
    if_not_exists = bool(tree.args.get("exists"))
    query = tree.expression
    if kind == "VIEW":
        return Action("view", name=name, sql=to_spark_sql(query),
                      if_not_exists=if_not_exists)
    if kind != "TABLE":
        raise UnsupportedStatement(f"no Spark form for CREATE {kind}")
    if isinstance(query, exp.Query):
        return Action("materialize", name=name, sql=to_spark_sql(query),
                      if_not_exists=if_not_exists)
    schema = tree.this
    types = tuple((col.name, to_spark_sql(col.args["kind"]))
                  for col in schema.expressions if isinstance(col, exp.ColumnDef))
    return Action("empty", name=name, types=types, if_not_exists=if_not_exists)


def _insert(tree) -> Action:
    if tree.args.get("alternative") or tree.args.get("conflict"):
        raise UnsupportedStatement("INSERT OR REPLACE / ON CONFLICT has no Spark form")
    target = tree.this
    columns = tuple(c.name for c in target.expressions) if isinstance(target, exp.Schema) else ()
    query = tree.expression
    if isinstance(query, exp.Values):
        query = exp.select("*").from_(query.as_("_v"))
    return Action("append", name=_name(target), sql=to_spark_sql(query), columns=columns)


def _delete(tree) -> Action:
    name = _name(tree.this)
    where = tree.args.get("where")
    query = exp.select("*").from_(exp.to_table(name))
    if where is None:
        return Action("materialize", name=name, sql=to_spark_sql(query.where(exp.false())))
    hit = exp.func("coalesce", exp.Paren(this=where.this), exp.false())
    # The executor probes which parts of the table hold a row to delete (most deletes,
    # e.g. superseded leads or a re-run's rows, match none) and rewrites only those.
    return Action("delete", name=name, sql=to_spark_sql(hit),
                  extra={"alias": tree.this.alias_or_name})


def delete_match_sql(action: Action, relation: str) -> str:
    """The rows of `relation` (the table or its tagged parts) that a DELETE removes."""
    return f"SELECT * FROM `{relation}` AS `{action.extra['alias']}` WHERE {action.sql}"


def delete_query_sql(action: Action, relation: str) -> str:
    """The Spark SELECT of the rows of `relation` (the table or one part of it) that a
    DELETE keeps."""
    return (f"SELECT * FROM `{relation}` AS `{action.extra['alias']}` "
            f"WHERE NOT ({action.sql})")


def _update(tree) -> Action:
    """UPDATE t SET c = e [FROM s] WHERE w. With a FROM, `w` becomes the condition of a
    LEFT JOIN. DuckDB updates a target row once even when several source rows match;
    here such a row would be repeated, so builders join the FROM on a unique key."""
    target = tree.this
    name = _name(target)
    alias = target.alias_or_name
    assignments = []
    for eq in tree.expressions:
        assignments.append((eq.this.name, to_spark_sql(eq.expression)))
    where = tree.args.get("where")
    condition = to_spark_sql(where.this) if where is not None else "TRUE"
    source = None
    from_ = tree.args.get("from_") or tree.args.get("from")
    if from_ is not None:
        source = to_spark_sql(exp.select("*").from_(from_.this))
        source_alias = from_.this.alias_or_name
    else:
        source_alias = None
    return Action("update", name=name, sql=condition, assignments=tuple(assignments),
                  source=source, extra={"alias": alias, "source_alias": source_alias})


def update_match_sql(action: Action, relation: str) -> str:
    """The rows of `relation` that an UPDATE changes (their `__part` column says where)."""
    alias = action.extra["alias"]
    if action.source is None:
        return f"SELECT * FROM `{relation}` AS {alias} WHERE coalesce(({action.sql}), false)"
    return (f"SELECT {alias}.* FROM `{relation}` AS {alias} "
            f"JOIN ({action.source}) AS {action.extra['source_alias']} ON {action.sql}")


def update_query_sql(action: Action, columns: list[str], relation: str | None = None) -> str:
    """The Spark SELECT that rewrites table `action.name` (with `columns`), or one part
    of it (`relation`), for an UPDATE."""
    relation = relation or action.name
    quoted = {c: f"`{c}`" for c in columns}
    alias = action.extra["alias"]
    sets = dict(action.assignments)
    if action.source is None:
        select = ", ".join(
            f"CASE WHEN coalesce(({action.sql}), false) THEN {sets[c]} ELSE {alias}.{quoted[c]} "
            f"END AS {quoted[c]}" if c in sets else f"{alias}.{quoted[c]}" for c in columns)
        return f"SELECT {select} FROM `{relation}` AS {alias}"
    src = action.extra["source_alias"]
    select = ", ".join(
        f"CASE WHEN {src}.`__matched` THEN {sets[c]} ELSE {alias}.{quoted[c]} END AS {quoted[c]}"
        if c in sets else f"{alias}.{quoted[c]}" for c in columns)
    return (f"SELECT {select} FROM `{relation}` AS {alias} "
            f"LEFT JOIN (SELECT *, TRUE AS `__matched` FROM ({action.source})) AS {src} "
            f"ON {action.sql}")


_FUNCTIONS = {  # DuckDB functions sqlglot passes through as they are
    "strlen": _renamed("octet_length"), "epoch_us": _renamed("unix_micros"),
    "regexp_split_to_array": _renamed("split"), "timezone": _timezone,
    "try_strptime": lambda node: _try_strptime(*node.expressions),
    "to_json": lambda node: _to_json(node.expressions[0]), "list_slice": _list_slice,
    "now": _utc_now, "get_current_timestamp": _utc_now,
    "error": _renamed("raise_error"),  # sqlfn.finite_guard's
}
_NODES = {
    exp.DataType: _json_type, exp.RegexpFullMatch: _full_match, exp.UnixToTime: _epoch_seconds,
    exp.ArgMin: _arg_min_max, exp.ArgMax: _arg_min_max, exp.Filter: _filter,
    exp.CurrentTimestamp: _utc_now, exp.ArrayAgg: _ordered_list,
    exp.GroupConcat: _ordered_list, exp.Tuple: _row_value, exp.TryCast: _try_cast,
    exp.Trim: _trim, exp.Cast: _blob_text, exp.Floor: _double_floor, exp.Ceil: _double_floor,
    exp.Add: _overflow_checked, exp.Sub: _overflow_checked, exp.Mul: _overflow_checked,
    exp.Abs: _sign_checked, exp.Neg: _sign_checked,
}
