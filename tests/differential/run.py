#!/usr/bin/env python3
"""The differential suite's runner: loads schema.sql and data.sql into a plain MariaDB and,
through myshard, into the shards; runs every query of queries.sql on both; compares column
labels, rows (in order when ORDER BY fixes it) and values. Prints the pass rate by class, each
problem, and one JSON summary line prefixed "SUMMARY ".

Usage: run.py SUITE_DIR REF_HOST:PORT/DB TEST_HOST:PORT/DB USER PASSWORD
"""
import json
import os
import re
import sys
import unicodedata
from collections import defaultdict

import pymysql

suite, ref_spec, test_spec, user, password = sys.argv[1:6]


def connect(spec):
    hostport, db = spec.split("/", 1)
    host, port = hostport.split(":")
    return pymysql.connect(host=host, port=int(port), user=user, password=password, database=db,
                           charset="utf8mb4", autocommit=True, binary_prefix=False).cursor()


def statements(path):
    buf = []
    for line in open(path, encoding="utf-8"):
        if line.startswith("--") or (not buf and not line.strip()):
            continue
        buf.append(line)
        if line.rstrip().endswith(";"):
            s = "".join(buf).strip().rstrip(";")
            buf = []
            if s and not s.startswith("--"):
                yield s


def queries(path):
    cls, tags = None, set()
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if line.startswith("-- class:"):
            cls, tags = line.split(":", 1)[1].strip(), set()
        elif line.startswith("-- tag:"):
            tags.add(line.split(":", 1)[1].strip())
        elif line and not line.startswith("--") and cls:
            yield cls, tags, line.rstrip(";")
            cls = None


def fold(s):
    """A text as utf8mb4_general_ci compares it: case, accents and (PAD SPACE) trailing
    spaces folded."""
    s = unicodedata.normalize("NFKD", s)
    return "".join(c for c in s if not unicodedata.combining(c)).casefold().rstrip(" ")


def outer_order_by(sql):
    """Whether the outermost query has ORDER BY (one inside a subquery or a parenthesized
    UNION branch does not order the result)."""
    depth, quote, outer = 0, None, []
    for ch in sql:
        if quote:
            if ch == quote:
                quote = None
            continue
        if ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0:
            outer.append(ch)
            continue
        outer.append(" ")
    return re.search(r"\border\s+by\b", "".join(outer), re.I) is not None


def norm(v, tags):
    if v is None:
        return None
    if isinstance(v, float) and "float" in tags:
        return float(f"{v:.9g}")
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    s = str(v)
    return fold(s) if "collation-ci" in tags else s


def run(cur, sql):
    try:
        cur.execute(sql)
        labels = [d[0] for d in cur.description] if cur.description else []
        return True, labels, list(cur.fetchall()) if cur.description else []
    except pymysql.err.MySQLError as e:
        return False, e.args[0] if e.args else 0, str(e)


def main():
    ref, test = connect(ref_spec), connect(test_spec)
    for cur, side in ((ref, "reference"), (test, "myshard")):
        for f in ("schema.sql", "data.sql"):
            for s in statements(os.path.join(suite, f)):
                try:
                    cur.execute(s)
                except pymysql.err.MySQLError as e:
                    print(f"LOAD FAILED on {side}: {s[:120]}: {e}")
                    print("SUMMARY " + json.dumps({"load_failed": True}))
                    return
    by_class = defaultdict(lambda: defaultdict(int))
    totals = defaultdict(int)
    problems = []
    for cls, tags, sql in queries(os.path.join(suite, "queries.sql")):
        ok_r, lab_r, rows_r = run(ref, sql)
        ok_t, lab_t, rows_t = run(test, sql)
        if cls == "write" and ok_r and ok_t:
            # A write: the rows it changed, then the written table, row by row.
            if ref.rowcount != test.rowcount:
                ok_t, lab_t, rows_t = False, 0, f"{test.rowcount} rows affected, not {ref.rowcount}"
            else:
                table = re.search(r"(?:INTO|UPDATE|FROM)\s+`?(\w+)", sql).group(1)
                contents = f"SELECT * FROM {table} ORDER BY 1"
                ok_r, lab_r, rows_r = run(ref, contents)
                ok_t, lab_t, rows_t = run(test, contents)
        if not ok_r:
            # Both refusing with the same error code is the same answer.
            v = "match" if "error" in tags and not ok_t and lab_t == lab_r else "ref_error"
        elif not ok_t:
            v = "refused_ok" if "unsupported" in tags and lab_t == 1235 else "refused_bad"
        elif lab_r != lab_t:
            v = "label_mismatch"
        elif "rowcount" in tags:
            v = "match" if len(rows_r) == len(rows_t) else "mismatch"
        else:
            r = [tuple(norm(x, tags) for x in row) for row in rows_r]
            t = [tuple(norm(x, tags) for x in row) for row in rows_t]
            ordered = outer_order_by(sql) and "partial" not in tags
            if not ordered:
                r, t = sorted(r, key=repr), sorted(t, key=repr)
            v = "match" if r == t else "mismatch"
        by_class[cls][v] += 1
        totals[v] += 1
        if v != "match" and v != "refused_ok":
            got = rows_t if ok_t else f"ERR {lab_t} {rows_t}"
            problems.append(f"{v} [{cls}]: {sql}\n    myshard:   {lab_t if ok_t else ''} {str(got)[:400]}\n    reference: {lab_r} {str(rows_r)[:400]}")
    print(f"{'class':<12} {'answered':>8} {'refused':>8} {'wrong':>6} {'total':>6}")
    for cls in sorted(by_class):
        c = by_class[cls]
        print(f"{cls:<12} {c['match']:>8} {c['refused_ok'] + c['refused_bad']:>8} "
              f"{c['mismatch'] + c['label_mismatch']:>6} {sum(c.values()):>6}")
    print(f"{'all':<12} {totals['match']:>8} {totals['refused_ok'] + totals['refused_bad']:>8} "
          f"{totals['mismatch'] + totals['label_mismatch']:>6} {sum(totals.values()):>6}")
    for p in problems:
        print(p)
    print("SUMMARY " + json.dumps({"load_failed": False, **totals}))


if __name__ == "__main__":
    main()
