"""mysql-connector-python: prepared cursors (binary protocol) return what text cursors do."""
import decimal
import sys

import mysql.connector

port = int(sys.argv[1])
cases = [
    ("SELECT * FROM ps_types WHERE id = %s", (3,)),
    ("SELECT * FROM ps_types WHERE id = %s", (14,)),
    ("SELECT id, n, price, day, at, f, label FROM ps_types WHERE id BETWEEN %s AND %s ORDER BY id", (2, 33)),
    ("SELECT grp, COUNT(*), SUM(price), MIN(day), MAX(at) FROM ps_types WHERE id > %s GROUP BY grp ORDER BY grp", (0,)),
    ("SELECT id, price FROM ps_types WHERE price > %s ORDER BY price DESC LIMIT 4", (decimal.Decimal("10.5"),)),
    ("SELECT LENGTH(data), data FROM ps_types WHERE id = %s", (40,)),
]
conn = mysql.connector.connect(host="127.0.0.1", port=port, user="app", password="app",
                               database="sbshard", use_pure=True)
text = conn.cursor()
prep = conn.cursor(prepared=True)
for sql, params in cases:
    text.execute(sql, params)
    want = text.fetchall()
    prep.execute(sql.replace("%s", "?"), params)
    got = prep.fetchall()
    assert want, sql
    norm = lambda rows: [tuple(bytes(v) if isinstance(v, (bytes, bytearray)) else v for v in r) for r in rows]
    if norm(want) != norm(got):
        raise AssertionError(f"{sql}\ntext:     {want[:3]}\nprepared: {got[:3]}")
    if [d[0] for d in text.description] != [d[0] for d in prep.description]:
        raise AssertionError(f"{sql}: column labels differ")
print(f"ok prepared = text for {len(cases)} statements")
