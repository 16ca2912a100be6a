"""Executemany inserts at the driver, with each column's value converted once per distinct value.

SQLAlchemy's executemany runs every row through its parameter processing: a dict per row, and for
each datetime column the TypeDecorator (aware → UTC) and, on SQLite, a Python string format. The
rows of one batch share their timestamps (`now`), so converting a value once and reusing it for the
rows that carry the very same object cuts most of that: a first sync of 100,000 people spent about
a seventh of its CPU there. The statement is compiled once per table, dialect and set of columns;
what the driver receives is what SQLAlchemy would have sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import cache
from operator import itemgetter
from typing import Any

from sqlalchemy import ColumnElement, Row, Table, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect

_Plan = tuple[str, tuple[str, ...], list[Callable[[Any], Any] | None], bool] | None
_plans: dict[tuple[str, str, tuple[str, ...]], _Plan] = {}


def insert_chunk(conn: Connection, table: Table, rows: list[dict[str, Any]], *, skip_existing: bool = False) -> None:
    """INSERT these rows; all of one shape (the same keys), else through SQLAlchemy as a whole.
    `skip_existing`: a row whose unique key is taken already is left out (ON CONFLICT DO NOTHING,
    which SQLite and PostgreSQL both write so)."""
    if not rows:
        return
    keys = tuple(rows[0])
    plan = _plan(conn.dialect, table, keys)
    if plan is None or any(len(row) != len(keys) for row in rows):
        conn.execute(_dialect_insert(conn)(table).on_conflict_do_nothing() if skip_existing else table.insert(), rows)
        return
    sql, names, processors, positional = plan
    if skip_existing:
        sql += " ON CONFLICT DO NOTHING"
    columns: list[list[Any]] = []
    for name, processor in zip(names, processors, strict=True):
        values = [row[name] for row in rows]
        columns.append(values if processor is None else _converted(values, processor))
    if positional:
        conn.exec_driver_sql(sql, list(zip(*columns, strict=True)))
    else:
        conn.exec_driver_sql(sql, [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)])


def _converted(values: list[Any], processor: Callable[[Any], Any]) -> list[Any]:
    out: list[Any] = []
    last_in: Any = out  # a sentinel no value is
    last_out: Any = None
    for value in values:
        if value is not last_in:
            last_in, last_out = value, (None if value is None else processor(value))
        out.append(last_out)
    return out


def _plan(dialect: Dialect, table: Table, keys: tuple[str, ...]) -> _Plan:
    key = (dialect.name, table.name, keys)
    if key not in _plans:
        _plans[key] = _compile(dialect, table, keys)
    return _plans[key]


def _compile(dialect: Dialect, table: Table, keys: tuple[str, ...]) -> _Plan:
    """The statement and each column's converter; None where a column left out has a default
    SQLAlchemy computes in Python (only SQLAlchemy's own path fills it in)."""
    given = set(keys)
    if not given <= set(table.columns.keys()):
        return None
    if any(c.name not in given and c.default is not None for c in table.columns):
        return None
    # inline(): no RETURNING of the generated key, which PostgreSQL's dialect would otherwise add
    compiled = table.insert().inline().compile(dialect=dialect, column_keys=list(keys))
    positional = compiled.positiontup is not None
    names = tuple(compiled.positiontup or ()) if positional else keys
    if set(names) != given:
        return None
    # what SQLAlchemy itself applies to each column (the dialect's implementation of its type)
    processors: list[Callable[[Any], Any] | None] = [
        table.columns[name].type._cached_bind_processor(dialect) for name in names
    ]
    return compiled.string, names, processors, positional


# Statements that name a list of values go out `_SIZE` at a time, compiled once each (the last
# chunk padded with repeats of its last item, which change nothing: a repeated value matches
# nothing more). They run without SQLAlchemy's work per execution (a cache key over every bound
# value, an expanding IN rebuilt per value, a bind processor per value), which cost more than
# SQLite's own; one size keeps one prepared statement per connection, where each size would be
# another (a prepared statement of 512 rows held ~270 KB of SQLite memory).
_SIZE = 128
# (SQL, the parameters in the driver's order if it takes them by position, converters by name)
_Shape = tuple[str, Callable[[dict[str, Any]], tuple[Any, ...]] | None, dict[str, Callable[[Any], Any]]]
_shapes: dict[tuple[Any, ...], _Shape] = {}


def where_in(
    conn: Connection,
    name: str,
    build: Callable[[ColumnElement[bool]], Any],
    column: ColumnElement[Any],
    values: list[Any],
    fixed: dict[str, Any] | None = None,
) -> list[Row[Any]]:
    """Run `build(column IN (…))` over these values, whatever their number; the rows it returns, if
    any, as the driver gives them (no result processing: select only columns that need none, such
    as strings). `name` names the statement for its cache, `fixed` the values of its other parameters."""
    found: list[Row[Any]] = []

    def statement() -> Any:
        return build(column.in_([bindparam(f"v{i}", type_=column.type) for i in range(_SIZE)]))

    for chunk in _chunks(values):
        params = dict(zip(_value_names(), chunk, strict=True))
        params.update(fixed or {})
        result = _execute(conn, (name,), statement, params)
        if result.returns_rows:
            found += result.all()
    return found


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(items), _SIZE):
        chunk = items[start : start + _SIZE]
        yield chunk + [chunk[-1]] * (_SIZE - len(chunk))


@cache
def _value_names() -> tuple[str, ...]:
    return tuple(f"v{i}" for i in range(_SIZE))


def _execute(conn: Connection, key: tuple[Any, ...], build: Callable[[], Any], params: dict[str, Any]) -> Any:
    dialect = conn.dialect
    shape = _shapes.get((dialect.name, *key))
    if shape is None:
        shape = _shapes[(dialect.name, *key)] = _shape(dialect, build())
    sql, ordered, processors = shape
    converted: dict[int, Any] = {}  # one conversion per distinct value (a batch shares its `now`)
    for name, processor in processors.items():
        value = params[name]
        if value is not None:
            done = converted.get(id(value), converted)
            if done is converted:
                done = converted[id(value)] = processor(value)
            params[name] = done
    return conn.exec_driver_sql(sql, params if ordered is None else ordered(params))


def _shape(dialect: Dialect, statement: Any) -> _Shape:
    compiled = statement.compile(dialect=dialect)
    processors = {
        name: processor
        for name, bind in compiled.binds.items()
        if (processor := bind.type._cached_bind_processor(dialect)) is not None
    }
    order = compiled.positiontup  # (more than one name: itemgetter returns a tuple)
    return compiled.string, None if order is None else itemgetter(*order), processors


def _dialect_insert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def batches(conn: Connection, statement: Any, size: int = 10_000) -> Iterator[Sequence[Any]]:
    """A large SELECT's rows, `size` at a time, as the driver gives them (tuples: a million Row
    objects cost about a second), never all held at once. SQLite's driver steps the statement as
    rows are fetched; on PostgreSQL the rows come through a server-side cursor, which SQLAlchemy
    reads ahead of us, so there they go through its result."""
    if conn.dialect.name != "sqlite":
        streamed = {"stream_results": True, "max_row_buffer": size}  # this statement's, not the connection's
        yield from conn.execute(statement, execution_options=streamed).partitions(size)
        return
    with conn.execute(statement) as result:
        while rows := result.cursor.fetchmany(size):
            yield rows
