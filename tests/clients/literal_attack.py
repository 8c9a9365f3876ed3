"""The injection attempt of the literal issue, written the safe way with PyMySQL.

Usage: literal_attack.py MYSHARD_PORT
Inserts six rows spanning shards into lit.kv with cursor.execute(sql, params); every name
ends in a backslash and every note carries SQL that a broken quote would run. Prints "ok".
"""
import sys

import pymysql

conn = pymysql.connect(host="127.0.0.1", port=int(sys.argv[1]), user="app", password="app",
                       database="lit", charset="utf8mb4", autocommit=True)
with conn.cursor() as cur:
    cur.execute("DELETE FROM kv WHERE id BETWEEN 9000000 AND 9000099")
    rows = []
    for i in range(6):
        rid = 9_000_000 + i
        rows += [rid, f"a\\ {rid}\\", b"\xff\\" + bytes([i]) + b"\\",
                 "), (9000050, (SELECT CONCAT(user, '@', host) FROM mysql.user LIMIT 1), "
                 "NULL, NULL) -- \\"]
    cur.execute("INSERT INTO kv (id, name, bin, note) VALUES "
                + ", ".join(["(%s, %s, %s, %s)"] * 6), rows)
    assert cur.rowcount == 6, cur.rowcount
    cur.execute("SELECT id, name, bin, note FROM kv WHERE id BETWEEN 9000000 AND 9000099 "
                "ORDER BY id")
    got = [list(r) for r in cur.fetchall()]
    want = [rows[i * 4:i * 4 + 4] for i in range(6)]
    assert got == want, (got, want)
print("ok")
