// Go's database/sql with go-sql-driver/mysql against myshard, as an application uses it:
// connection pooling, prepared statements (server-side, or interpolated on the client with
// interpolateParams=true), CRUD by the sharding key, a transaction over several shards
// committed and one rolled back, and a cross-shard ORDER BY.
// Usage: sqlcheck PORT INTERPOLATE(true|false). Prints "ok …" lines; exits 1 on a failure.
package main

import (
	"database/sql"
	"fmt"
	"os"
	"strings"

	"github.com/go-sql-driver/mysql"
)

func check(ok bool, what string, detail interface{}) {
	if !ok {
		fmt.Fprintf(os.Stderr, "FAILED %s: %v\n", what, detail)
		os.Exit(1)
	}
	fmt.Printf("ok %s\n", what)
}

func must(err error, what string) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAILED %s: %v\n", what, err)
		os.Exit(1)
	}
}

func main() {
	port, interpolate := os.Args[1], os.Args[2]
	base := int64(7710000)
	if interpolate == "true" {
		base = 7720000
	}
	dsn := fmt.Sprintf("mall:mall@tcp(127.0.0.1:%s)/mall?interpolateParams=%s", port, interpolate)
	db, err := sql.Open("mysql", dsn)
	must(err, "open")
	defer db.Close()
	db.SetMaxOpenConns(4)

	_, err = db.Exec("DELETE FROM users WHERE id BETWEEN ? AND ?", base, base+99)
	must(err, "clean")
	ins, err := db.Prepare("INSERT INTO users (id, name, region) VALUES (?, ?, ?)")
	must(err, "prepare insert")
	for i := int64(1); i <= 8; i++ {
		region := "US"
		if i%2 == 1 {
			region = "EU"
		}
		_, err = ins.Exec(base+i, fmt.Sprintf("g'%d\\y", i), region)
		must(err, "insert")
	}
	must(ins.Close(), "close insert")

	var name, region string
	must(db.QueryRow("SELECT name, region FROM users WHERE id = ?", base+3).Scan(&name, &region), "read")
	check(name == "g'3\\y" && region == "EU", "a row read by its key as written", name)

	res, err := db.Exec("UPDATE users SET name = ? WHERE id = ?", "renamed", base+4)
	must(err, "update")
	n, _ := res.RowsAffected()
	check(n == 1, "update by key", n)
	res, err = db.Exec("DELETE FROM users WHERE id = ?", base+8)
	must(err, "delete")
	n, _ = res.RowsAffected()
	check(n == 1, "delete by key", n)

	rows, err := db.Query("SELECT id FROM users WHERE id BETWEEN ? AND ? ORDER BY id DESC LIMIT 5", base, base+99)
	must(err, "order by")
	var ids []string
	for rows.Next() {
		var id int64
		must(rows.Scan(&id), "scan")
		ids = append(ids, fmt.Sprint(id-base))
	}
	must(rows.Err(), "rows")
	check(strings.Join(ids, ",") == "7,6,5,4,3", "cross-shard ORDER BY DESC LIMIT", ids)

	tx, err := db.Begin()
	must(err, "begin")
	_, err = tx.Exec("INSERT INTO users (id, name, region) VALUES (?, ?, ?)", base+20, "tx", "AS")
	must(err, "tx insert")
	_, err = tx.Exec("INSERT INTO users (id, name, region) VALUES (?, ?, ?)", base+21, "tx", "AS")
	must(err, "tx insert")
	must(tx.Commit(), "commit")
	tx, err = db.Begin()
	must(err, "begin")
	_, err = tx.Exec("INSERT INTO users (id, name, region) VALUES (?, ?, ?)", base+30, "gone", "AS")
	must(err, "tx insert")
	_, err = tx.Exec("DELETE FROM users WHERE id = ?", base+2)
	must(err, "tx delete")
	must(tx.Rollback(), "rollback")
	var count int
	must(db.QueryRow("SELECT COUNT(*) FROM users WHERE id BETWEEN ? AND ? AND region = ?", base, base+99, "AS").Scan(&count), "count")
	check(count == 2, "a committed transaction over shards is there, a rolled-back one is not", count)
	must(db.QueryRow("SELECT COUNT(*) FROM users WHERE id = ?", base+2).Scan(&count), "count")
	check(count == 1, "the rolled-back DELETE left its row", count)

	_, err = db.Exec("INSERT INTO users (id, name, region) VALUES (?, ?, ?)", base+1, "dup", "EU")
	me, isMy := err.(*mysql.MySQLError)
	check(isMy && me.Number == 1062, "a duplicate key is ERR 1062", err)

	_, err = db.Exec("DELETE FROM users WHERE id BETWEEN ? AND ?", base, base+99)
	must(err, "clean")
}
