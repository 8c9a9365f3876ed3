#!/usr/bin/env python3
"""The random differential tester: generates data and statements from a seed, runs every
statement on one plain MariaDB and through myshard (four shards), and compares the answers —
column labels, rows (in order where ORDER BY fixes it), affected rows of writes, and after
every write the written table's whole contents.

The data is adversarial: strings equal under utf8mb4_general_ci ('abc', 'ABC', 'abc ', 'Àbc',
'', ' '), NULLs, ties, 4-byte UTF-8, quotes and backslashes, binary values, in columns of
several collations (general_ci, unicode_ci, _bin, NO PAD, latin1: see schema.sql). The statements:
filters, ORDER BY/LIMIT/OFFSET, GROUP BY with every aggregate, HAVING, DISTINCT, co-located,
broadcast and off-key joins, outer joins, IN/EXISTS/scalar subqueries, UNION [ALL], and
writes (multi-row INSERT, UPDATE, DELETE, upserts).

Verdicts: "match"; "refused" (myshard answered ERR 1235 to a statement the reference ran: not
wrong, counted); "wrong" (a different answer, or another error). Prints each wrong statement
with both answers, the counts, and one line "SUMMARY {json}".

Usage: fuzz.py SUITE_DIR REF_HOST:PORT/DB TEST_HOST:PORT/DB USER PASSWORD
Seed and length come from MYSHARD_FUZZ_SEED (default 1) and MYSHARD_FUZZ_COUNT (default 3000).
"""
import decimal
import json
import os
import random
import re
import sys
import unicodedata
from collections import Counter

import pymysql

suite, ref_spec, test_spec, user, password = sys.argv[1:6]
SEED = int(os.environ.get("MYSHARD_FUZZ_SEED", "1"))
COUNT = int(os.environ.get("MYSHARD_FUZZ_COUNT", "3000"))
rnd = random.Random(SEED)

# Strings equal or nearly equal under utf8mb4_general_ci (PAD SPACE, case- and
# accent-insensitive), 4-byte UTF-8, quotes and backslashes.
TEXTS = ["abc", "ABC", "abc ", "Àbc", "abd", "", " ", "b", "B", "zz", "😀", "a😀", "o'k",
         "back\\slash", "x\"y", "Zoë", "zoe"]
REGIONS = ["EU", "eu", "US", "AS", None]
BINARY = [b"\x00\xff", b"abc", b"ABC", b"", b"\x00", b"abc\x00", None]


def lit(v):
    if v is None:
        return "NULL"
    if isinstance(v, bytes):
        return "0x" + v.hex() if v else "''"
    if isinstance(v, str):
        return "'" + v.replace("\\", "\\\\").replace("'", "''") + "'"
    return str(v)


def maybe(v, p=0.15):
    return None if rnd.random() < p else v


class Data:
    """The next free ids, so that inserts never collide by accident."""

    def __init__(self):
        self.next = {"cust": 1, "ord": 1, "item": 1}

    def take(self, table):
        i = self.next[table]
        self.next[table] += 1
        return i

    def cust_row(self, i):
        return (i, rnd.choice([t for t in TEXTS]), rnd.choice(REGIONS), maybe(rnd.randint(-3, 9)),
                maybe(decimal.Decimal(rnd.randint(-500, 5000)) / 100), rnd.choice(BINARY))

    def ord_row(self, i):
        return (i, rnd.randint(1, self.next["cust"] + 3), maybe(rnd.randint(0, 50)),
                maybe(rnd.choice(TEXTS)), maybe(rnd.choice(TEXTS), 0.4))

    def item_row(self, i):
        return (i, maybe(rnd.randint(1, self.next["ord"] + 3)), maybe(rnd.randint(1, 5)),
                maybe(rnd.choice(TEXTS)))


COLUMNS = {
    "cust": ["id", "name", "region", "score", "bal", "tag"],
    "ord": ["id", "cust_id", "amount", "sku", "note"],
    "item": ["id", "ord_id", "qty", "label"],
    "region": ["code", "title"],
}
TEXT_COLS = {"cust": ["name", "region"], "ord": ["sku", "note"], "item": ["label"],
             "region": ["code", "title"]}
NUM_COLS = {"cust": ["id", "score", "bal"], "ord": ["id", "cust_id", "amount"],
            "item": ["id", "ord_id", "qty"], "region": []}
KEY = {"cust": "id", "ord": "cust_id", "item": "id"}


def insert_sql(table, rows, verb="INSERT"):
    cols = ", ".join(COLUMNS[table])
    values = ", ".join("(" + ", ".join(lit(v) for v in r) + ")" for r in rows)
    return f"{verb} INTO {table} ({cols}) VALUES {values}"


def setup(data):
    stmts = [insert_sql("region", [("EU", "Europe"), ("US", "States"), ("AS", "Asia"),
                                    ("AF", "Africa")])]
    for table, n in (("cust", 60), ("ord", 150), ("item", 150)):
        rows = [getattr(data, f"{table}_row")(data.take(table)) for _ in range(n)]
        stmts.append(insert_sql(table, rows))
    return stmts


def pred(table, alias=None, data=None):
    """A WHERE condition over `table`'s columns."""
    a = f"{alias}." if alias else ""
    kinds = ["key_eq", "key_in", "range", "text_eq", "text_in", "null", "num_cmp", "like"]
    k = rnd.choice(kinds)
    hi = data.next[table] if data and table in data.next else 60
    key = KEY.get(table, "code")
    if k == "key_eq" and table != "region":
        return f"{a}{key} = {rnd.randint(1, hi)}"
    if k == "key_in" and table != "region":
        return f"{a}{key} IN ({', '.join(str(rnd.randint(1, hi)) for _ in range(rnd.randint(1, 5)))})"
    if k == "range" and NUM_COLS[table]:
        c = rnd.choice(NUM_COLS[table])
        lo = rnd.randint(-5, 40)
        return f"{a}{c} BETWEEN {lo} AND {lo + rnd.randint(0, 30)}"
    if k == "text_eq":
        return f"{a}{rnd.choice(TEXT_COLS[table])} = {lit(rnd.choice(TEXTS + ['EU', 'eu']))}"
    if k == "text_in":
        vals = ", ".join(lit(rnd.choice(TEXTS)) for _ in range(rnd.randint(1, 4)))
        return f"{a}{rnd.choice(TEXT_COLS[table])} IN ({vals})"
    if k == "null":
        c = rnd.choice(COLUMNS[table][1:])
        return f"{a}{c} IS {rnd.choice(['', 'NOT '])}NULL"
    if k == "like":
        return f"{a}{rnd.choice(TEXT_COLS[table])} LIKE {lit(rnd.choice(['a%', '%b%', 'A_c', '%', '😀%']))}"
    if NUM_COLS[table]:
        c = rnd.choice(NUM_COLS[table])
        return f"{a}{c} {rnd.choice(['<', '>', '<=', '>=', '<>'])} {rnd.randint(-2, 40)}"
    return "1 = 1"


def where(table, alias=None, data=None):
    if rnd.random() < 0.2:
        return ""
    p = pred(table, alias, data)
    if rnd.random() < 0.3:
        p = f"({p}) {rnd.choice(['AND', 'OR'])} ({pred(table, alias, data)})"
    return f" WHERE {p}"


def pk(table):
    return "code" if table == "region" else "id"


class Query:
    def __init__(self, sql, ordered=False, ci=False, write=None):
        self.sql, self.ordered, self.ci, self.write = sql, ordered, ci, write


def q_filter(data):
    t = rnd.choice(["cust", "ord", "item", "region"])
    cols = rnd.sample(COLUMNS[t], rnd.randint(1, len(COLUMNS[t])))
    if rnd.random() < 0.2:
        cols = [f"{t}.*"] if rnd.random() < 0.5 else [f"{t}.{c}" for c in cols]
    sql = f"SELECT {', '.join(cols)} FROM {t}{where(t, data=data)}"
    if rnd.random() < 0.6:
        keys = rnd.sample(COLUMNS[t], rnd.randint(1, 2))
        order = ", ".join(f"{k} {rnd.choice(['ASC', 'DESC'])}" for k in keys)
        sql += f" ORDER BY {order}, {pk(t)}"
        if rnd.random() < 0.6:
            sql += f" LIMIT {rnd.randint(0, 20)}"
            if rnd.random() < 0.3:
                sql += f" OFFSET {rnd.randint(0, 10)}"
        return Query(sql, ordered=True)
    return Query(sql)


AGGS = ["COUNT(*)", "COUNT({n})", "SUM({n})", "MIN({n})", "MAX({n})", "AVG({n})",
        "COUNT(DISTINCT {t})", "MIN({t})", "MAX({t})", "SUM(DISTINCT {n})",
        "GROUP_CONCAT({t} ORDER BY {t} SEPARATOR '|')", "GROUP_CONCAT(DISTINCT {t} ORDER BY {t})",
        "BIT_OR({n})", "BIT_AND({n})", "BIT_XOR({n})"]


def agg(t):
    a = rnd.choice(AGGS)
    return a.format(n=rnd.choice(NUM_COLS[t]), t=rnd.choice(TEXT_COLS[t]))


def q_group(data):
    t = rnd.choice(["cust", "ord", "item"])
    aggs = [agg(t) for _ in range(rnd.randint(1, 3))]
    if rnd.random() < 0.25:
        return Query(f"SELECT {', '.join(aggs)} FROM {t}{where(t, data=data)}", ci=True)
    g = rnd.choice(COLUMNS[t][1:])
    sql = f"SELECT {g}, {', '.join(aggs)} FROM {t}{where(t, data=data)} GROUP BY {g}"
    if rnd.random() < 0.3:
        sql += f" HAVING COUNT(*) {rnd.choice(['>', '>=', '<'])} {rnd.randint(1, 4)}"
    ordered = rnd.random() < 0.5
    if ordered:
        sql += f" ORDER BY {g} {rnd.choice(['ASC', 'DESC'])}"
        if rnd.random() < 0.4:
            sql += f" LIMIT {rnd.randint(1, 10)}"
    return Query(sql, ordered=ordered, ci=True)


def q_distinct(data):
    t = rnd.choice(["cust", "ord", "item"])
    cols = rnd.sample(COLUMNS[t][1:], rnd.randint(1, 2))
    sql = f"SELECT DISTINCT {', '.join(cols)} FROM {t}{where(t, data=data)}"
    return Query(sql, ci=True)


JOINS = [
    # co-located on the sharding key
    ("cust c JOIN ord o ON o.cust_id = c.id", ["c", "o"], ["cust", "ord"]),
    ("ord o JOIN cust c ON c.id = o.cust_id", ["o", "c"], ["ord", "cust"]),
    ("cust c LEFT JOIN ord o ON o.cust_id = c.id", ["c", "o"], ["cust", "ord"]),
    # with a broadcast table
    ("cust c JOIN region r ON r.code = c.region", ["c", "r"], ["cust", "region"]),
    ("cust c LEFT JOIN region r ON r.code = c.region", ["c", "r"], ["cust", "region"]),
    ("region r LEFT JOIN cust c ON c.region = r.code", ["r", "c"], ["region", "cust"]),
    ("cust c RIGHT JOIN region r ON r.code = c.region", ["c", "r"], ["cust", "region"]),
    # off the key
    ("ord o JOIN item i ON i.ord_id = o.id", ["o", "i"], ["ord", "item"]),
    ("item i LEFT JOIN ord o ON o.id = i.ord_id", ["i", "o"], ["item", "ord"]),
]


def q_join(data):
    text, aliases, tables = rnd.choice(JOINS)
    cols = []
    for a, t in zip(aliases, tables):
        cols += [f"{a}.{c}" for c in rnd.sample(COLUMNS[t], rnd.randint(1, 2))]
    w = ""
    if rnd.random() < 0.7:
        i = rnd.randrange(2)
        w = f" WHERE {pred(tables[i], aliases[i], data)}"
        if "LEFT JOIN" in text and rnd.random() < 0.3:
            w = f" WHERE {aliases[1]}.{pk(tables[1])} IS NULL"
    sql = f"SELECT {', '.join(cols)} FROM {text}{w}"
    if rnd.random() < 0.3:
        g = f"{aliases[0]}.{pk(tables[0])}"
        sql = (f"SELECT {g}, COUNT({aliases[1]}.{pk(tables[1])}) FROM {text}{w} GROUP BY {g}")
        return Query(sql)
    if rnd.random() < 0.4:
        order = ", ".join(f"{a}.{pk(t)}" for a, t in zip(aliases, tables))
        sql += f" ORDER BY {order} LIMIT {rnd.randint(1, 30)}"
        return Query(sql, ordered=True)
    return Query(sql)


def q_subquery(data):
    shapes = [
        lambda: f"SELECT id, name FROM cust WHERE id IN (SELECT cust_id FROM ord{where('ord', data=data)})",
        lambda: f"SELECT id, amount FROM ord WHERE cust_id IN (SELECT id FROM cust{where('cust', data=data)})",
        lambda: f"SELECT id, label FROM item WHERE ord_id IN (SELECT id FROM ord{where('ord', data=data)})",
        lambda: f"SELECT c.id FROM cust c WHERE EXISTS (SELECT 1 FROM ord o WHERE o.cust_id = c.id AND {pred('ord', 'o', data)})",
        lambda: f"SELECT c.id FROM cust c WHERE NOT EXISTS (SELECT 1 FROM ord o WHERE o.cust_id = c.id)",
        lambda: f"SELECT id, (SELECT COUNT(*) FROM ord o WHERE o.cust_id = c.id) AS n FROM cust c{where('cust', 'c', data)}",
        lambda: f"SELECT id FROM item WHERE qty > (SELECT AVG(qty) FROM item)",
    ]
    return Query(rnd.choice(shapes)())


def q_union(data):
    t1, t2 = rnd.choice(["cust", "ord", "item"]), rnd.choice(["cust", "ord", "item"])
    c1, c2 = rnd.choice(TEXT_COLS[t1]), rnd.choice(TEXT_COLS[t2])
    op = rnd.choice(["UNION", "UNION ALL"])
    sql = f"SELECT {c1} AS u FROM {t1}{where(t1, data=data)} {op} SELECT {c2} FROM {t2}{where(t2, data=data)}"
    return Query(sql, ci=op == "UNION")


def q_expr(data):
    """Expressions in the select list, ORDER BY expressions, HAVING over expressions of
    aggregates, derived tables, CTEs and window functions."""
    t = rnd.choice(["cust", "ord", "item"])
    n, x = rnd.choice(NUM_COLS[t]), rnd.choice(TEXT_COLS[t])
    shapes = [
        lambda: Query(f"SELECT id, COALESCE({x}, '(none)') AS v, {n} * 2 + 1 AS w FROM {t}"
                      f"{where(t, data=data)} ORDER BY w DESC, id LIMIT {rnd.randint(1, 15)}",
                      ordered=True),
        lambda: Query(f"SELECT id, CASE WHEN {n} > 5 THEN 'big' WHEN {n} IS NULL THEN 'none' "
                      f"ELSE 'small' END AS k, CONCAT({x}, '|') AS c FROM {t}{where(t, data=data)}"),
        lambda: Query(f"SELECT {x}, SUM({n}) / COUNT(*) AS m, MAX({n}) - MIN({n}) AS r FROM {t} "
                      f"GROUP BY {x} HAVING SUM({n}) > {rnd.randint(-5, 40)}", ci=True),
        lambda: Query(f"SELECT d.k, COUNT(*) FROM (SELECT {x} AS k FROM {t}{where(t, data=data)}) d "
                      f"GROUP BY d.k", ci=True),
        lambda: Query(f"WITH w AS (SELECT id, {n} AS v FROM {t}{where(t, data=data)}) "
                      f"SELECT COUNT(*), SUM(v) FROM w"),
        lambda: Query(f"SELECT id, ROW_NUMBER() OVER (ORDER BY {n}, id) AS rn FROM {t}"
                      f"{where(t, data=data)} ORDER BY id", ordered=True),
        lambda: Query(f"SELECT {x} AS u FROM {t} WHERE {n} > {rnd.randint(0, 20)} UNION ALL "
                      f"SELECT {x} FROM {t} WHERE id < {rnd.randint(1, 40)} UNION "
                      f"SELECT {x} FROM {t} WHERE {pred(t, data=data)}", ci=True),
        lambda: Query(f"(SELECT id FROM {t} WHERE {pred(t, data=data)}) UNION "
                      f"(SELECT id FROM {t} WHERE {pred(t, data=data)}) ORDER BY id LIMIT "
                      f"{rnd.randint(1, 20)}", ordered=True),
    ]
    return rnd.choice(shapes)()


def q_write(data):
    kind = rnd.choice(["insert", "insert", "update", "update", "delete", "upsert", "replace",
                       "insert_select", "insert_set", "update_expr", "update_limit",
                       "delete_subquery", "insert_ignore", "qualified"])
    if kind == "qualified":
        # Table-qualified names in every position, over the split table too.
        t = rnd.choice(["cust", "item", "ord"])
        c = rnd.choice([c for c in NUM_COLS[t] if c not in ("id", KEY[t])])
        w = pred(t, t, data)
        return rnd.choice([
            Query(f"UPDATE {t} SET {t}.{c} = {t}.{c} + 1 WHERE {w}", write=t),
            Query(f"DELETE {t} FROM {t} WHERE {w}", write=t),
            Query(f"DELETE FROM {t} WHERE {w}", write=t),
        ])
    if kind == "insert_select":
        i = data.take("item")
        data.next["item"] += 40
        return Query(f"INSERT INTO item (id, ord_id, qty, label) SELECT id + {i}, ord_id, qty, "
                     f"label FROM item WHERE id <= 40{' AND ' + pred('item', data=data) if rnd.random() < 0.5 else ''}",
                     write="item")
    if kind == "insert_set":
        r = data.cust_row(data.take("cust"))
        sets = ", ".join(f"{c} = {lit(v)}" for c, v in zip(COLUMNS["cust"], r))
        return Query(f"INSERT INTO cust SET {sets}", write="cust")
    if kind == "update_expr":
        t = rnd.choice(["cust", "ord", "item"])
        c = rnd.choice([c for c in NUM_COLS[t] if c not in ("id", KEY[t])])
        return Query(f"UPDATE {t} SET {c} = {c} + 1{where(t, data=data)}", write=t)
    if kind == "update_limit":
        t = rnd.choice(["cust", "item"])
        c = rnd.choice(NUM_COLS[t][1:])
        return Query(f"UPDATE {t} SET {c} = 7{where(t, data=data)} ORDER BY id LIMIT "
                     f"{rnd.randint(1, 5)}", write=t)
    if kind == "delete_subquery":
        return Query(f"DELETE FROM item WHERE ord_id IN (SELECT id FROM ord WHERE "
                     f"{pred('ord', data=data)})", write="item")
    if kind == "insert_ignore":
        t = rnd.choice(["cust", "item", "ord"])
        rows = [getattr(data, f"{t}_row")(rnd.randint(1, data.next[t] + 2))
                for _ in range(rnd.randint(1, 4))]
        for r in rows:
            data.next[t] = max(data.next[t], r[0] + 1)
        return Query(insert_sql(t, rows, "INSERT IGNORE"), write=t)
    if kind == "insert":
        t = rnd.choice(["cust", "ord", "item"])
        rows = [getattr(data, f"{t}_row")(data.take(t)) for _ in range(rnd.randint(1, 6))]
        return Query(insert_sql(t, rows), write=t)
    if kind in ("upsert", "replace"):
        # cust and item are keyed by their sharding column; ord's primary key lacks it, so
        # myshard refuses upserts into it (the conflicting row may be on another shard).
        t = rnd.choice(["cust", "item", "ord"])
        rows = []
        for _ in range(rnd.randint(1, 4)):
            i = rnd.randint(1, data.next[t] + 2)
            data.next[t] = max(data.next[t], i + 1)
            rows.append(getattr(data, f"{t}_row")(i))
        ids = {r[0] for r in rows}
        rows = [next(r for r in rows if r[0] == i) for i in sorted(ids)]
        if kind == "replace":
            return Query(insert_sql(t, rows, "REPLACE"), write=t)
        c = rnd.choice(COLUMNS[t][2:])
        return Query(insert_sql(t, rows) + f" ON DUPLICATE KEY UPDATE {c} = VALUES({c})", write=t)
    t = rnd.choice(["cust", "ord", "item"])
    if kind == "update":
        c = rnd.choice([c for c in COLUMNS[t] if c not in ("id", KEY[t])])
        v = getattr(data, f"{t}_row")(0)[COLUMNS[t].index(c)]
        return Query(f"UPDATE {t} SET {c} = {lit(v)}{where(t, data=data) or ' WHERE ' + pred(t, data=data)}", write=t)
    return Query(f"DELETE FROM {t} WHERE {pred(t, data=data)}", write=t)


# Statements these runs found answered wrongly once: run first, with every seed.
REGRESSIONS = [
    # PAD SPACE: '' = ' ' and 'abc ' = 'ABC' under utf8mb4_general_ci, in ORDER BY ties,
    # DISTINCT, UNION, GROUP BY and COUNT(DISTINCT) across shards.
    Query("SELECT tag, id, name, score FROM cust ORDER BY name ASC, id LIMIT 4", ordered=True),
    Query("SELECT bal FROM cust ORDER BY name ASC, id", ordered=True),
    Query("SELECT label AS u FROM item WHERE label = 'abc ' UNION SELECT region FROM cust", ci=True),
    Query("SELECT DISTINCT label FROM item", ci=True),
    Query("SELECT sku, MIN(note), COUNT(*), SUM(id) FROM ord GROUP BY sku ORDER BY sku DESC",
          ordered=True, ci=True),
    Query("SELECT qty, COUNT(DISTINCT label) FROM item GROUP BY qty", ci=True),
    # An outer join keeping every row of a broadcast table, over a sharded one.
    Query("SELECT r.code, COUNT(c.id) FROM region r LEFT JOIN cust c ON c.region = r.code "
          "WHERE c.id IS NULL GROUP BY r.code"),
    Query("SELECT r.title, r.code, c.name FROM region r LEFT JOIN cust c ON c.region = r.code"),
    Query("SELECT c.name, r.title FROM cust c RIGHT JOIN region r ON r.code = c.region"),
    # Bit aggregates over no rows beside DISTINCT aggregates: 0 (BIT_AND: all ones).
    Query("SELECT BIT_OR(amount), BIT_AND(amount), BIT_XOR(amount), SUM(DISTINCT id) FROM ord "
          "WHERE id < 0"),
    Query("SELECT GROUP_CONCAT(DISTINCT region ORDER BY region), BIT_OR(bal) FROM cust "
          "WHERE score > 1000", ci=True),
    # Rows materialized as literals keep their column's collation (the result metadata gives
    # only the connection's): NO PAD and _bin in derived tables, joins off the key, the copy.
    Query("SELECT d.k, COUNT(*) FROM (SELECT label AS k FROM item) d GROUP BY d.k", ci=True),
    Query("SELECT d.k, COUNT(*) FROM (SELECT sku AS k FROM ord) d GROUP BY d.k", ci=True),
    Query("SELECT i.ord_id, o.sku FROM item i LEFT JOIN ord o ON o.id = i.ord_id "
          "WHERE o.sku IN ('Zoë', 'abc')"),
    Query("SELECT id, ROW_NUMBER() OVER (ORDER BY cust_id, id) AS rn FROM ord "
          "WHERE sku LIKE '%b%' ORDER BY id", ordered=True),
    # UNIONs of columns of different collations: ERR 1271 where MariaDB refuses them.
    Query("SELECT note AS u FROM ord UNION SELECT name FROM cust", ci=True),
    Query("SELECT note AS u FROM ord UNION ALL SELECT label FROM item"),
    Query("SELECT sku AS u FROM ord UNION ALL SELECT name FROM cust"),
]

GENERATORS = [(q_filter, 26), (q_group, 18), (q_distinct, 7), (q_join, 13), (q_subquery, 8),
              (q_union, 6), (q_expr, 10), (q_write, 22)]


def fold(v):
    """A text as utf8mb4_general_ci compares it: case, accents and trailing spaces folded;
    in GROUP_CONCAT results (pieces joined by '|' or ','), piece by piece, since pieces
    equal under the collation come in either order."""
    s = unicodedata.normalize("NFKD", v)
    s = "".join(c for c in s if not unicodedata.combining(c)).casefold()
    return re.sub(r" +(?=[|,]|$)", "", s)


def norm(v, ci):
    if v is None:
        return None
    if isinstance(v, (bytes, bytearray)):
        return "0x" + bytes(v).hex()
    if isinstance(v, str):
        return fold(v) if ci else v
    return str(v)


def connect(spec):
    hostport, db = spec.split("/", 1)
    host, port = hostport.split(":")
    return pymysql.connect(host=host, port=int(port), user=user, password=password, database=db,
                           charset="utf8mb4", autocommit=True, binary_prefix=True).cursor()


def run(cur, sql):
    try:
        cur.execute(sql)
        labels = [d[0] for d in cur.description] if cur.description else []
        rows = list(cur.fetchall()) if cur.description else []
        return True, labels, rows, cur.rowcount
    except pymysql.err.MySQLError as e:
        return False, e.args[0] if e.args else 0, str(e), 0


def compare(q, ref, test):
    # A write myshard refuses is not run on the reference either: the two stay equal.
    ok_t, lab_t, rows_t, n_t = run(test, q.sql)
    if q.write and not ok_t and lab_t == 1235:
        return "refused", (True, "not run", []), (ok_t, lab_t, rows_t)
    ok_r, lab_r, rows_r, n_r = run(ref, q.sql)
    if not ok_r:
        return ("match" if not ok_t and lab_t == lab_r else "wrong"), (ok_r, lab_r, rows_r), (ok_t, lab_t, rows_t)
    if not ok_t:
        return ("refused" if lab_t == 1235 else "wrong"), (ok_r, lab_r, rows_r), (ok_t, lab_t, rows_t)
    if q.write:
        if n_r != n_t:
            return "wrong", (ok_r, f"{n_r} rows affected", []), (ok_t, f"{n_t} rows affected", [])
        contents = f"SELECT * FROM {q.write} ORDER BY {pk(q.write)}"
        ok_r, lab_r, rows_r, _ = run(ref, contents)
        ok_t, lab_t, rows_t, _ = run(test, contents)
        if not ok_t:
            return "wrong", (ok_r, lab_r, rows_r), (ok_t, lab_t, rows_t)
    if lab_r != lab_t:
        return "wrong", (ok_r, lab_r, rows_r), (ok_t, lab_t, rows_t)
    r = [tuple(norm(x, q.ci) for x in row) for row in rows_r]
    t = [tuple(norm(x, q.ci) for x in row) for row in rows_t]
    if not q.ordered and not q.write:
        r, t = sorted(r, key=repr), sorted(t, key=repr)
    return ("match" if r == t else "wrong"), (ok_r, lab_r, rows_r), (ok_t, lab_t, rows_t)


def resync(table, ref, test):
    """After a write that left the table different, myshard's copy is made the reference's
    again, so that one wrong write is reported once, not in every statement after it."""
    ok, _, rows, _ = run(ref, f"SELECT {', '.join(COLUMNS[table])} FROM {table}")
    run(test, f"DELETE FROM {table}")
    for i in range(0, len(rows), 200):
        run(test, insert_sql(table, rows[i:i + 200]))


def main():
    ref, test = connect(ref_spec), connect(test_spec)
    for cur, side in ((ref, "reference"), (test, "myshard")):
        text = open(os.path.join(suite, "schema.sql"), encoding="utf-8").read()
        code = "\n".join(l for l in text.splitlines() if not l.startswith("--"))
        for body in (b.strip() for b in code.split(";")):
            if body:
                cur.execute(body)
    data = Data()
    for s in setup(data):
        for cur, side in ((ref, "reference"), (test, "myshard")):
            try:
                cur.execute(s)
            except pymysql.err.MySQLError as e:
                print(f"LOAD FAILED on {side}: {s[:160]}: {e}")
                print("SUMMARY " + json.dumps({"load_failed": True}))
                return
    gens = [g for g, w in GENERATORS for _ in range(w)]
    totals, refused, wrong = Counter(), Counter(), []
    def regression(_data, it=iter(REGRESSIONS)):
        return next(it)

    plan = [regression] * len(REGRESSIONS) + [rnd.choice(gens) for _ in range(COUNT)]
    for n, gen in enumerate(plan):
        q = gen(data)
        verdict, r, t = compare(q, ref, test)
        if verdict == "wrong" and q.write:
            resync(q.write, ref, test)
        totals[verdict] += 1
        totals[f"{gen.__name__}:{verdict}"] += 1
        if verdict == "refused":
            refused[str(t[2])[:160]] += 1
        if verdict == "wrong":
            wrong.append(f"#{n} {q.sql}\n    myshard:   {str(t[1])[:200]} {str(t[2])[:600]}\n"
                         f"    reference: {str(r[1])[:200]} {str(r[2])[:600]}")
    print(f"seed {SEED}, {COUNT} statements")
    for name in ["regression"] + [g.__name__ for g, _ in GENERATORS]:
        print(f"  {name:<12} match {totals[name + ':match']:>5}  refused {totals[name + ':refused']:>4}"
              f"  wrong {totals[name + ':wrong']:>4}")
    for why, n in refused.most_common(12):
        print(f"  refused {n:>4}x: {why}")
    for w in wrong[:60]:
        print("WRONG " + w)
    print("SUMMARY " + json.dumps({"load_failed": False, "seed": SEED, "match": totals["match"],
                                   "refused": totals["refused"], "wrong": totals["wrong"]}))


if __name__ == "__main__":
    main()
