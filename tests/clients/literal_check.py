"""Values through PyMySQL's own parameter escaping, compared with one plain MariaDB.

Usage: literal_check.py MYSHARD_PORT REFERENCE_PORT REFERENCE_DB < cases.json
Each case is {"gbk": bool, "texts": [str, str], "bins": [hex, hex]}. Every case runs in the
sessions of its character set, under the default sql_mode and under NO_BACKSLASH_ESCAPES,
through myshard (schema lit, four shards) and in the reference database; what is stored and
what is read back must be equal. Prints "ok N sessions" or exits non-zero with the difference.
"""
import json
import sys

import pymysql

MYSHARD, REFERENCE, REF_DB = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
CASES = json.load(sys.stdin)


def connect(port, user, password, db, charset, nbe):
    c = pymysql.connect(host="127.0.0.1", port=port, user=user, password=password,
                        database=db, charset=charset, autocommit=True)
    mode = "STRICT_TRANS_TABLES,NO_BACKSLASH_ESCAPES" if nbe else "STRICT_TRANS_TABLES"
    with c.cursor() as cur:
        cur.execute("SET SESSION sql_mode = %s", (mode,))
    return c


def run(conn, sql, params):
    cur = conn.cursor()
    try:
        cur.execute(sql, params)
        return ("ok", [tuple(r) for r in cur.fetchall()])
    except pymysql.err.MySQLError as e:
        return ("error", e.args[0], e.args[1], cur.mogrify(sql, params))
    finally:
        cur.close()


def main():
    sessions = 0
    for s, (charset, nbe) in enumerate([("utf8mb4", False), ("utf8mb4", True),
                                        ("gbk", False), ("gbk", True)]):
        mine = connect(MYSHARD, "app", "app", "lit", charset, nbe)
        ref = connect(REFERENCE, "root", "", REF_DB, charset, nbe)
        gbk = charset == "gbk"
        # PyMySQL sends bytes as _binary'raw bytes', which a GBK server reads as GBK
        # characters: binary values go as hex text there.
        b = "UNHEX(%s)" if gbk else "%s"
        sessions += 1
        for i, case in enumerate(c for c in CASES if c["gbk"] == gbk):
            base = 5_000_000 + s * 100_000 + i * 100
            t0, t1 = case["texts"]
            b0, b1 = case["bins"] if gbk else [bytes.fromhex(x) for x in case["bins"]]
            lo, hi = base, base + 99

            def both(what, db_sql, params):
                x = run(mine, db_sql("lit"), params)
                y = run(ref, db_sql(REF_DB), params)
                same = x == y or (x[0] == "error" and y[0] == "error" and x[1] == y[1])
                if not same:
                    print(f"{what} differs ({charset}, nbe={nbe}) for {case!r}:\n"
                          f" myshard:   {x!r}\n reference: {y!r}")
                    sys.exit(1)
                return x

            both("split INSERT", lambda db: "INSERT INTO kv (id, name, bin, note) VALUES "
                 f"(%s, %s, {b}, %s), (%s, %s, {b}, %s), (%s, %s, {b}, %s)",
                 (base, t0, b0, t1, base + 1, t1, b1, t0, base + 2, t0, b1, None))
            both("renamed split-table INSERT", lambda db: f"INSERT INTO {db}.kv_split "
                 f"(id, name, bin) VALUES (%s, %s, {b}), (%s, %s, {b})",
                 (base, t0, b0, base + 1, t1, b1))
            both("generated-id INSERT", lambda db: "INSERT INTO kv_gen (k, name, bin) VALUES "
                 f"(%s, %s, {b}), (%s, %s, {b})", (base, t0, b0, base + 1, t1, b1))
            for table, key in [("kv", "id"), ("kv_split", "id"), ("kv_gen", "k")]:
                r = both(f"stored {table}", lambda db: f"SELECT {key}, HEX(name), HEX(bin) "
                         f"FROM {table} WHERE {key} BETWEEN %s AND %s ORDER BY {key}", (lo, hi))
                if r[0] != "ok" or not r[1]:
                    print(f"nothing stored in {table} for {case!r}: {r!r}")
                    sys.exit(1)
            both("merged read", lambda db: "SELECT id, name, bin, CONCAT(name, %s) FROM kv "
                 f"WHERE id BETWEEN %s AND %s AND (name = %s OR bin = {b} OR id > 0) ORDER BY id",
                 (t1, lo, hi, t0, b1))
            both("aggregate", lambda db: "SELECT COUNT(*), MAX(bin), MAX(name = %s) FROM kv "
                 "WHERE id BETWEEN %s AND %s AND name <> %s", (t0, lo, hi, t1))
            both("off-key join", lambda db: "SELECT a.id, b.name, b.bin FROM kv a JOIN kv_split b "
                 "ON a.name = b.name WHERE a.id BETWEEN %s AND %s AND b.id BETWEEN %s AND %s "
                 "AND b.name <> %s ORDER BY a.id, b.id", (lo, hi, lo, hi, t1 + "x"))
        mine.close()
        ref.close()
    print(f"ok {sessions} sessions")


main()
