"""Writing different values to many rows in one statement, cheaply.

Django's ``QuerySet.bulk_update`` builds a ``Case(When(pk=…))`` expression tree per row and
field and resolves each of them: for a batch of 50 messages that is thousands of expression
objects and several milliseconds of CPU, which is most of what the mail worker would spend
per message. :func:`update_rows` writes the same statement as text (``CASE id WHEN %s THEN
%s … END``, or a plain ``= %s`` when every row gets the same value), with values prepared by
each field exactly as ``save()`` prepares them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connections, router
from django.db.models import Field, Model

CHUNK = 200  # rows per statement: well inside SQLite's and PostgreSQL's parameter limits


def update_rows(
    model: type[Model],
    rows: Mapping[Any, Mapping[str, Any]],
    *,
    where: Mapping[str, Any] | None = None,
) -> int:
    """Set, for each ``pk -> {field name: value}`` in ``rows``, those fields of that row; every
    row must name the same fields. ``where`` adds equality conditions (``{field name: value}``)
    a row must still meet to be written. Returns the number of rows written."""
    if not rows:
        return 0
    using = router.db_for_write(model)
    connection = connections[using]
    qn = connection.ops.quote_name
    meta = model._meta
    names = list(next(iter(rows.values())))
    fields = [_field(model, name) for name in names]
    pk = meta.pk
    assert pk is not None
    written = 0
    keys = list(rows)
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start : start + CHUNK]
        ids = [pk.get_db_prep_value(key, connection) for key in chunk]
        id_column = qn(str(pk.column))
        sets: list[str] = []
        params: list[Any] = []
        for field in fields:
            values = [field.get_db_prep_save(rows[key][field.name], connection) for key in chunk]
            column = qn(str(field.column))
            cast = _cast(connection, field)
            if all(v == values[0] and type(v) is type(values[0]) for v in values):
                sets.append(f"{column} = {cast % '%s'}")
                params.append(values[0])
                continue
            whens = " ".join("WHEN %s THEN " + cast % "%s" for _ in chunk)
            sets.append(f"{column} = CASE {id_column} {whens} END")
            for key_value, value in zip(ids, values, strict=True):
                params.extend((key_value, value))
        conditions = [f"{id_column} IN ({', '.join(['%s'] * len(ids))})"]
        params.extend(ids)
        for name, value in (where or {}).items():
            condition = _field(model, name)
            conditions.append(f"{qn(str(condition.column))} = %s")
            params.append(condition.get_db_prep_value(value, connection))
        sql = (
            f"UPDATE {qn(meta.db_table)} SET {', '.join(sets)} "  # noqa: S608 (names from metadata)
            f"WHERE {' AND '.join(conditions)}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            written += cursor.rowcount
    return written


def _cast(connection: Any, field: Any) -> str:
    """``%s`` as the column's type: PostgreSQL types a ``CASE`` of parameters as text, which
    it would not assign to a timestamp or integer column (Django casts the same way)."""
    if connection.vendor != "postgresql":
        return "%s"
    return f"CAST(%s AS {field.cast_db_type(connection)})"


def values_of(instance: Model, names: Sequence[str]) -> dict[str, Any]:
    """``{name: value}`` of a model instance's fields, for :func:`update_rows`."""
    return {name: getattr(instance, _field(type(instance), name).attname) for name in names}


def _field(model: type[Model], name: str) -> Field[Any, Any]:
    field = model._meta.get_field(name)
    assert isinstance(field, Field), name  # a concrete column, not a relation's other side
    return field
