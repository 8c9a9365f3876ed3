"""Introspection through myshard as ORMs do it: SQLAlchemy's inspect() and information_schema.

Usage: introspect_check.py PORT USER PASSWORD SCHEMA
Prints one JSON object: the schemas, tables, columns, primary keys and indexes inspect() finds,
and the schemas and tables information_schema lists.
"""
import json
import sys

import sqlalchemy as sa

PORT, USER, PASSWORD, SCHEMA = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]

engine = sa.create_engine(f"mysql+pymysql://{USER}:{PASSWORD}@127.0.0.1:{PORT}/{SCHEMA}")
inspector = sa.inspect(engine)
tables = {}
for name in sorted(inspector.get_table_names()):
    tables[name] = {
        "columns": [c["name"] for c in inspector.get_columns(name)],
        "primary_key": inspector.get_pk_constraint(name)["constrained_columns"],
        "indexes": sorted(i["name"] for i in inspector.get_indexes(name)),
    }
with engine.connect() as conn:
    schemata = [r[0] for r in conn.execute(sa.text(
        "SELECT schema_name FROM information_schema.schemata ORDER BY schema_name"))]
    listed = [list(r) for r in conn.execute(sa.text(
        "SELECT table_schema, table_name FROM information_schema.tables"
        " WHERE table_schema <> 'information_schema' ORDER BY 1, 2"))]
    columns = {}
    for t, c in conn.execute(sa.text(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = :s ORDER BY table_name, ordinal_position"), {"s": SCHEMA}):
        columns.setdefault(t, []).append(c)
print(json.dumps({
    "schemas": inspector.get_schema_names(),
    "tables": tables,
    "schemata": schemata,
    "information_schema_tables": listed,
    "information_schema_columns": columns,
}, sort_keys=True))
