"""Reads of authentication objects, object classes and integrations."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import connection, connections
from django.db.models import (
    BigIntegerField,
    Func,
    Lookup,
    OuterRef,
    QuerySet,
    Subquery,
    TextField,
    Value,
)
from django.db.models.expressions import Col
from django.db.models.functions import Cast
from django.db.models.sql.where import WhereNode

from outbound.integrations.models import (
    AuthenticationObject,
    Integration,
    ObjectClass,
    ObjectClassField,
)
from outbound.integrations.types import REGISTRY


def authentication_object_list() -> QuerySet[AuthenticationObject]:
    return AuthenticationObject.objects.order_by("name")


def object_class_list() -> QuerySet[ObjectClass]:
    return ObjectClass.objects.order_by("name")


def object_class_field_list(object_class: ObjectClass) -> QuerySet[ObjectClassField]:
    return ObjectClassField.objects.filter(object_class=object_class).order_by("name")


# What a response shows of an integration, as plain values (see api.IntegrationOutput).
INTEGRATION_ROW = (
    "uuid", "type", "name", "description", "is_enabled", "parameters", "sealed_secrets",
    "authentication_object", "authentication_object__name",
    "object_class", "object_class__name",
    "created_at", "created_by", "created_by__username",
    "modified_at", "modified_by", "modified_by__username",
)  # fmt: skip


# The timestamps a row carries as text (``<name>_text``) on SQLite; elsewhere as datetimes.
ROW_TIMESTAMPS = ("created_at", "modified_at")


def integration_rows(queryset: QuerySet[Integration]) -> QuerySet[Integration, dict[str, Any]]:
    if connection.vendor != "sqlite":
        return queryset.values(*_row_fields())
    # SQLite stores a timestamp as UTC text (``YYYY-MM-DD HH:MM:SS[.ffffff]``, Django's
    # ``str()`` of the naive UTC value); read as text, a page skips parsing it into a datetime
    # only to print it again (a fifth of a 100-row list's time).
    fields = [f for f in _row_fields() if f not in ROW_TIMESTAMPS]
    texts = {f"{f}_text": Cast(f, TextField()) for f in ROW_TIMESTAMPS}
    return queryset.values(*fields, **texts)


@cache
def _row_fields() -> tuple[str, ...]:
    # ``sealed_secrets`` only says which secrets are set; skip decoding it when no type has any.
    if any(f.secret for t in REGISTRY.values() for f in t.fields):
        return INTEGRATION_ROW
    return tuple(f for f in INTEGRATION_ROW if f != "sealed_secrets")


class _JsonInteger(Func):
    """The integer at ``<json column>.<key>``, or NULL when the value there is anything else
    (a string, a fraction, a boolean…: never a database error)."""

    output_field = BigIntegerField()

    def __init__(self, expression: Any, key: str) -> None:
        if not key.isidentifier():
            raise ValueError(f"not a plain key: {key!r}")
        self.key = key
        super().__init__(expression)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, Any]:
        column, params = compiler.compile(self.source_expressions[0])
        path = f"'$.\"{self.key}\"'"
        sql = (
            f"CASE WHEN json_type({column}, {path}) = 'integer' "
            f"THEN json_extract({column}, {path}) END"
        )
        return sql, (*params, *params)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, Any]:
        column, params = compiler.compile(self.source_expressions[0])
        key = f"'{self.key}'"
        # Up to 18 digits: always a bigint (the cast cannot overflow).
        sql = (
            f"CASE WHEN jsonb_typeof({column} -> {key}) = 'number' "
            f"AND ({column} ->> {key}) ~ '^-?[0-9]{{1,18}}$' "
            f"THEN ({column} ->> {key})::bigint END"
        )
        return sql, (*params, *params, *params)


# The largest magnitude whose label the page query looks up (see ``_JsonInteger``).
LABELLED_PK_MAX = 10**18 - 1


def pk_label_columns() -> dict[tuple[Any, str], str]:
    """``(model, alias)`` of every ``pk`` field a type declares -> the page query's column
    holding the label of the object it names."""
    columns: dict[tuple[Any, str], str] = {}
    for itype in REGISTRY.values():
        for f in itype.fields:
            if f.kind == "pk" and (f.model, f.alias) not in columns:
                columns[(f.model, f.alias)] = f"_label_{len(columns)}"
    return columns


def _pk_label_annotations() -> dict[str, Any]:
    annotations: dict[str, Any] = {}
    for (model, alias), column in pk_label_columns().items():
        field = next(
            f for t in REGISTRY.values() for f in t.fields if (f.model, f.alias) == (model, alias)
        )
        target = _JsonInteger(OuterRef("parameters"), alias)
        label = model.objects.filter(pk=target).order_by().values(field.label_field)
        annotations[column] = Subquery(label[:1])
    return annotations


_LIST_ROWS: dict[str, QuerySet[Integration, dict[str, Any]]] = {}


def integration_list_rows() -> QuerySet[Integration, dict[str, Any]]:
    """The API list: :func:`integration_list` as rows (see :func:`integration_rows`), each
    with the labels of the objects its type's ``pk`` fields name (``pk_label_columns``).
    Filter and order it like the queryset, then read a page with :func:`integration_page`.

    Built once per database vendor and cloned per request (building it is a good part of what
    Django's query API costs a list)."""
    vendor = connection.vendor
    template = _LIST_ROWS.get(vendor)
    if template is None:
        ordered = Integration.objects.order_by("-created_at", "name")
        template = integration_rows(ordered).annotate(**_pk_label_annotations())
        _SPLITS.clear()  # compiled from a template that is no more
        _LIST_ROWS[vendor] = template
    return template.all()


@dataclass(frozen=True)
class IntegrationPage:
    """A page of :func:`integration_list_rows`: each row a list of values by ``columns``,
    the same values as iterating the queryset gives (the uuid as its text)."""

    columns: dict[str, int]
    rows: list[list[Any]]
    total_count: int  # every integration
    filtered_count: int  # those the filters let through


def integration_page(
    rows: QuerySet[Integration, dict[str, Any]], *, offset: int, limit: int
) -> IntegrationPage:
    """``rows[offset:offset + limit]`` of (filtered) :func:`integration_list_rows` and both
    counts: two statements, whatever the page size.

    When the filters are conditions on the integration's own columns (the list's filters
    are), the page's SQL is the template's, compiled once per ordering, with the filters'
    WHERE (compiled per request) put in, and the counts are one statement over that WHERE;
    anything else (a join, a subquery, raw SQL) is compiled and counted by Django, the same
    as ever. The rows are read from the cursor with converters of its own for the columns
    Django would convert one value at a time (uuid, booleans, JSON): no per-value
    machinery, no dict per row."""
    db = rows.db
    query = rows.query
    names = list(query.selected) if query.selected else [
        *query.extra_select, *query.values_select, *query.annotation_select
    ]  # fmt: skip
    columns = {name: i for i, name in enumerate(names)}
    compiler = query.get_compiler(using=db)
    try:
        where = _own_where(query, compiler)
        sql, params = _page_sql(rows, where, offset, limit)
    except EmptyResultSet:  # a filter no row can match (e.g. ``type__in`` of nothing)
        return IntegrationPage(columns, [], Integration.objects.using(db).count(), 0)
    with connections[db].cursor() as cursor:
        cursor.execute(sql, params)
        raw = cursor.fetchall()
        if where is None:
            total, filtered = Integration.objects.using(db).count(), rows.count()
        else:
            total, filtered = _counts(query, compiler, where, cursor)
    result = [list(values) for values in raw]
    if result:
        for i, convert in _converters(rows, names):
            for row in result:
                if (value := row[i]) is not None:
                    row[i] = convert(value)
    return IntegrationPage(columns, result, total, filtered)


def _own_where(query: Any, compiler: Any) -> tuple[str, tuple[Any, ...]] | None:
    """The query's WHERE as SQL (``""`` for none) when it reads only the integration's own
    columns; ``None`` otherwise. Raises ``EmptyResultSet`` when no row can match."""
    where = query.where
    if where.contains_aggregate or where.contains_over_clause:
        return None
    if not _own_columns_only(where, query.base_table):
        return None
    try:
        sql, params = compiler.compile(where)
    except FullResultSet:
        return "", ()
    return sql, tuple(params)


# (db, vendor, ordering) -> the template's SQL without WHERE, split where a WHERE goes, with
# the parameters of each part; None once it proved not to be the request's.
_Split = tuple[str, tuple[Any, ...], str, tuple[Any, ...]]
_SPLITS: dict[tuple[Any, ...], _Split | None] = {}


def _page_sql(
    rows: QuerySet[Any, Any],
    where: tuple[str, tuple[Any, ...]] | None,
    offset: int,
    limit: int,
) -> tuple[str, tuple[Any, ...]]:
    """The SQL of ``rows[offset:offset + limit]``: the template's (see ``_SPLITS``) with
    ``where`` put in when ``rows`` is the template filtered and ordered, else Django's."""
    query = rows.query
    template = _LIST_ROWS.get(connections[rows.db].vendor)
    key: tuple[Any, ...] | None = None
    if where is not None and template is not None and _shape(query) == _shape(template.query):
        key = (rows.db, query.order_by, query.default_ordering, query.standard_ordering)
    split = _SPLITS.get(key) if key is not None else None
    if key is not None and key not in _SPLITS:
        split = _split(template.order_by(*query.order_by), rows.db)  # type: ignore[union-attr]
    composed = None
    if split is not None and where is not None:
        head, head_params, tail, tail_params = split
        where_sql, where_params = where
        limits = connections[rows.db].ops.limit_offset_sql(offset, offset + limit)
        composed = (
            f"{head}{f' WHERE {where_sql}' if where_sql else ''}{tail} {limits}",
            (*head_params, *where_params, *tail_params),
        )
    if composed is not None and key in _SPLITS:
        return composed
    sql, params = rows[offset : offset + limit].query.get_compiler(using=rows.db).as_sql()
    if key is not None:  # first use of this ordering: keep the split if it gives Django's SQL
        _SPLITS[key] = split if composed == (sql, tuple(params)) else None
    return sql, tuple(params)


def _split(ordered: QuerySet[Any, Any], db: str) -> _Split | None:
    """``ordered``'s SQL as (what comes before a WHERE, what comes after), or None."""
    head, head_params = ordered.order_by().query.get_compiler(using=db).as_sql()
    full, params = ordered.query.get_compiler(using=db).as_sql()
    tail = full[len(head) :]
    if not full.startswith(head) or (tail and not tail.startswith(" ORDER BY ")):
        return None
    if tuple(params[: len(head_params)]) != tuple(head_params):
        return None
    return head, tuple(head_params), tail, tuple(params[len(head_params) :])


def _shape(query: Any) -> tuple[Any, ...]:
    """What, besides its WHERE and ORDER BY, makes a rows query's SQL: the list's queries
    (the template filtered and ordered) share the template's."""
    return (
        tuple(
            (alias, type(join), getattr(join, "join_type", None), join.table_name)
            for alias, join in query.alias_map.items()
        ),
        tuple((name, id(expression)) for name, expression in query.annotation_select.items()),
        tuple(query.selected or ()),
        query.values_select,
        query.distinct,
        query.distinct_fields,
        query.select_for_update,
        query.combinator,
        query.group_by,
        bool(query.extra),
        bool(query.extra_order_by),
        query.low_mark,
        query.high_mark,
    )


def _counts(
    query: Any, compiler: Any, where: tuple[str, tuple[Any, ...]], cursor: Any
) -> tuple[int, int]:
    """``(every integration, those ``where`` lets through)`` in one statement:
    ``SELECT COUNT(*), COUNT(CASE WHEN <where> THEN 1 END) FROM <the table>``."""
    alias, table = query.base_table, Integration._meta.db_table
    qn = compiler.quote_name_unless_alias
    source = qn(table) if alias == table else f"{qn(table)} {qn(alias)}"
    where_sql, params = where
    filtered = f"COUNT(CASE WHEN {where_sql} THEN 1 END)" if where_sql else "COUNT(*)"
    # Django's own SQL of the WHERE and quoted names; every value is a parameter.
    cursor.execute(f"SELECT COUNT(*), {filtered} FROM {source}", params)  # noqa: S608
    total, matched = cursor.fetchone()
    return int(total), int(matched)


def _own_columns_only(node: Any, alias: str) -> bool:
    """Whether ``node`` (a WHERE tree) reads only columns of ``alias``, through lookups and
    functions of them and plain values."""
    if isinstance(node, Col):
        return bool(node.alias == alias)
    if isinstance(node, Value):
        return True
    if not isinstance(node, (WhereNode, Lookup, Func)):
        return False  # a subquery, raw SQL, an outer reference…
    return all(
        _own_columns_only(child, alias)
        for child in node.get_source_expressions()
        if child is not None
    )


_CONVERTERS: dict[tuple[str, tuple[str, ...]], list[tuple[int, Callable[[Any], Any]]]] = {}


def _converters(
    rows: QuerySet[Any, Any], names: list[str]
) -> list[tuple[int, Callable[[Any], Any]]]:
    """The columns whose cursor values differ from what ``values()`` gives, each with its
    conversion: Django's own converters, except for the columns this module knows (the same
    results, one call each). The columns of a name are the same expression in every page
    query: worked out once."""
    conn = connections[rows.db]
    key = (conn.vendor, tuple(names))
    converters = _CONVERTERS.get(key)
    if converters is None:
        compiler = rows.query.get_compiler(using=rows.db)
        compiler.setup_query()
        django_converters = compiler.get_converters([col for col, _, _ in compiler.select])
        fast = _FAST_CONVERTERS.get(conn.vendor, {})
        converters = []
        for i, name in enumerate(names):
            if name in fast:
                converters.append((i, fast[name]))
            elif i in django_converters:
                funcs, expression = django_converters[i]
                converters.append((i, _chain(funcs, expression, conn)))
        _CONVERTERS[key] = converters
    return converters


def _chain(funcs: list[Any], expression: Any, conn: Any) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        for func in funcs:
            value = func(value, expression, conn)
        return value

    return convert


def _json(value: Any) -> Any:
    """``JSONField.from_db_value`` (no custom decoder): the text parsed, or as it is."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


_HEX32 = re.compile(r"[0-9a-f]{32}")


def _sqlite_uuid(value: Any) -> str:
    """SQLite keeps a UUID as its 32 lowercase hex digits: the canonical text, directly."""
    if isinstance(value, str) and _HEX32.fullmatch(value):
        return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
    return str(uuid.UUID(str(value)))


# ``uuid`` is given as its text (what the response shows) rather than a ``UUID``.
_FAST_CONVERTERS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "sqlite": {
        "uuid": _sqlite_uuid,
        "is_enabled": bool,
        "parameters": _json,
        "sealed_secrets": _json,
    },
    "postgresql": {"uuid": str, "parameters": _json, "sealed_secrets": _json},
}


def integration_row(pk: Any) -> dict[str, Any]:
    return integration_rows(integration_list().filter(pk=pk)).get()


def integration_list() -> QuerySet[Integration]:
    """Every integration, with what a response shows joined in (no per-row queries)."""
    return Integration.objects.select_related(
        "authentication_object", "object_class", "created_by", "modified_by"
    ).order_by("-created_at", "name")
