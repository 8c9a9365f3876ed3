"""Client-compatibility check with PyMySQL against a running myshard.

Usage: pymysql_check.py PORT CA_PEM
Prints one line per check ("ok <name>") and exits non-zero on the first failure.
"""
import ssl
import sys

import pymysql

PORT = int(sys.argv[1])
CA = sys.argv[2]


def connect(user, password, db="shop", **kw):
    return pymysql.connect(host="127.0.0.1", port=PORT, user=user, password=password,
                           database=db, **kw)


def expect_error(code, fn):
    try:
        fn()
    except pymysql.err.MySQLError as e:
        if e.args[0] != code:
            raise AssertionError(f"expected error {code}, got {e.args}")
        return e.args
    raise AssertionError(f"expected error {code}, got success")


def ok(name):
    print(f"ok {name}", flush=True)


# caching_sha2_password, first login: full authentication through the RSA key exchange.
c = connect("rsa", "rsa", ssl_disabled=True)
assert not isinstance(c._sock, ssl.SSLSocket), type(c._sock)
with c.cursor() as cur:
    cur.execute("SELECT 1 + 1")
    assert cur.fetchone() == (2,)
c.close()
ok("caching_sha2 full auth via RSA without TLS")

# Second login: the fast path.
c = connect("rsa", "rsa", ssl_disabled=True)
c.close()
ok("caching_sha2 fast path")

# Full authentication over TLS.
ctx = ssl.create_default_context(cafile=CA)
ctx.check_hostname = False
c = connect("tlsu", "tlsu", ssl=ctx)
assert isinstance(c._sock, ssl.SSLSocket), "connection is not encrypted"
with c.cursor() as cur:
    cur.execute("SELECT DATABASE()")
    assert cur.fetchone() == ("shop",)
c.close()
ok("caching_sha2 full auth over TLS")

# mysql_native_password.
c = connect("nat", "nat")
with c.cursor() as cur:
    cur.execute("SELECT id, name, amount FROM items ORDER BY id")
    rows = cur.fetchall()
    assert rows[0][0] == 1 and rows[1][1] is None, rows
c.close()
ok("mysql_native_password and rows with NULL")

expect_error(1045, lambda: connect("nat", "wrong"))
ok("wrong password is 1045")
expect_error(1049, lambda: connect("app", "app", db="no_such_db"))
ok("unknown schema is 1049")
expect_error(1044, lambda: connect("nat", "nat", db="sbtest"))
ok("schema not granted is 1044")

c = connect("app", "app", autocommit=True)
with c.cursor() as cur:
    args = expect_error(1062, lambda: cur.execute("INSERT INTO items (id, name) VALUES (1, 'dup')"))
    assert "Duplicate entry" in args[1], args
    cur.execute("SELECT COUNT(*) FROM items")
    assert cur.fetchone()[0] >= 2
c.close()
ok("backend error passes through and the connection stays usable")
