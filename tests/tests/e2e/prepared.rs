//! Prepared statements (binary protocol) through real drivers — mysql_async `exec`,
//! mysql-connector-python prepared cursors, MariaDB Connector/J with `useServerPrepStmts` —
//! answer exactly as the text protocol does, over a table sharded across four shards:
//! NULL, DECIMAL, DATE/DATETIME, BLOB and large values, and merged cross-shard results.

use crate::env::connect;
use mysql_async::prelude::*;
use mysql_async::Value;
use tokio::sync::OnceCell;

static TABLE: OnceCell<()> = OnceCell::const_new();

/// Creates and fills `sbshard.ps_types` once (rows on every shard).
pub async fn ps_table() {
    TABLE
        .get_or_init(|| async {
            let mut c = connect("app", "app", Some("sbshard"))
                .await
                .expect("connects");
            c.query_drop("DROP TABLE IF EXISTS ps_types")
                .await
                .expect("drop");
            c.query_drop(
                "CREATE TABLE ps_types (id INT PRIMARY KEY, grp VARCHAR(10), n BIGINT NULL, \
                 price DECIMAL(12,3) NULL, day DATE NULL, at DATETIME(6) NULL, \
                 f DOUBLE NULL, label VARCHAR(100) NULL, data LONGBLOB NULL)",
            )
            .await
            .expect("create");
            for i in 1..=40i64 {
                let null = i % 7 == 0;
                let v = |s: String| if null { "NULL".to_string() } else { s };
                c.query_drop(format!(
                    "INSERT INTO ps_types (id, grp, n, price, day, at, f, label, data) VALUES \
                     ({i}, '{}', {}, {}, {}, {}, {}, {}, {})",
                    ["a", "B", "c"][(i % 3) as usize],
                    v(format!("{}", (i - 20) * 1_000_000_007)),
                    v(format!("{}.{:03}", i * 3 - 50, i * 37 % 1000)),
                    v(format!("'2024-{:02}-{:02}'", i % 12 + 1, i % 28 + 1)),
                    v(format!(
                        "'2024-03-{:02} 10:{:02}:{:02}.{:06}'",
                        i % 28 + 1,
                        i,
                        i,
                        i * 12345
                    )),
                    v(format!("{}e-1", i * 11)),
                    v(format!("'Label {i} \\' quoted'")),
                    v(format!("REPEAT(X'00FF{:02X}', {})", i, i * 100)),
                ))
                .await
                .expect("insert");
            }
            // One large value (4 MiB) on some shard.
            let big = "x".repeat(4 << 20);
            c.exec_drop(
                "UPDATE ps_types SET data = ? WHERE id = ?",
                (big.as_bytes(), 40),
            )
            .await
            .expect("large parameter");
            c.disconnect().await.expect("quit");
            // Other clients read from the replicas: let them catch up first.
            let e = crate::env::env();
            for shard in 0..e.cluster.shards() {
                e.cluster.sync_replicas(shard).expect("replicas catch up");
            }
        })
        .await;
}

/// Statements and their parameters; each is also run as text with the values inlined.
fn cases() -> Vec<(&'static str, Vec<Value>)> {
    vec![
        ("SELECT * FROM ps_types WHERE id = ?", vec![Value::Int(3)]),
        ("SELECT * FROM ps_types WHERE id = ?", vec![Value::Int(7)]),
        ("SELECT id, data FROM ps_types WHERE id = ?", vec![Value::Int(40)]),
        (
            "SELECT id, n, price, day, at, f, label FROM ps_types WHERE id BETWEEN ? AND ? ORDER BY id",
            vec![Value::Int(5), Value::Int(30)],
        ),
        (
            "SELECT grp, COUNT(*), SUM(price), AVG(price), MIN(day), MAX(at), SUM(n) FROM ps_types \
             WHERE id > ? GROUP BY grp ORDER BY grp",
            vec![Value::Int(0)],
        ),
        (
            "SELECT id, price FROM ps_types WHERE price > ? ORDER BY price DESC LIMIT ?",
            vec![Value::Bytes(b"10.5".to_vec()), Value::Int(5)],
        ),
        (
            "SELECT label FROM ps_types WHERE label = ?",
            vec![Value::Bytes(b"Label 4 ' quoted".to_vec())],
        ),
        (
            "SELECT id FROM ps_types WHERE day = ? OR at < ? ORDER BY id",
            vec![
                Value::Date(2024, 5, 5, 0, 0, 0, 0),
                Value::Date(2024, 3, 3, 0, 0, 0, 0),
            ],
        ),
        ("SELECT COUNT(*) FROM ps_types WHERE n IS NULL OR n = ?", vec![Value::NULL]),
        (
            "SELECT id, label FROM ps_types WHERE id < ? UNION SELECT id, grp FROM ps_types WHERE id > ? ORDER BY 1",
            vec![Value::Int(4), Value::Int(37)],
        ),
        (
            "SELECT id FROM ps_types WHERE id IN (SELECT id FROM ps_types WHERE price > ?) ORDER BY id",
            vec![Value::Int(60)],
        ),
        (
            "SELECT id, price FROM ps_types WHERE id = ? FOR UPDATE",
            vec![Value::Int(5)],
        ),
        (
            "SELECT ? AS a, ? AS b, ? AS c",
            vec![Value::Int(-5), Value::NULL, Value::Double(0.25)],
        ),
    ]
}

fn inline(sql: &str, params: &[Value]) -> String {
    let mut out = String::new();
    let mut it = params.iter();
    for (i, part) in sql.split('?').enumerate() {
        if i > 0 {
            out.push_str(&it.next().expect("a value per marker").as_sql(false));
        }
        out.push_str(part);
    }
    out
}

#[tokio::test]
async fn mysql_async_exec_answers_as_the_text_protocol() {
    ps_table().await;
    let mut c = connect("app", "app", Some("sbshard"))
        .await
        .expect("connects");
    for (sql, params) in cases() {
        let text: Vec<mysql_async::Row> = c.query(inline(sql, &params)).await.expect(sql);
        let stmt = c.prep(sql).await.expect(sql);
        assert_eq!(stmt.num_params() as usize, params.len(), "{sql}");
        // Result columns are announced at prepare time, for clients that size buffers then.
        let announced: Vec<String> = stmt
            .columns()
            .iter()
            .map(|c| c.name_str().into_owned())
            .collect();
        let bin: Vec<mysql_async::Row> = c.exec(&stmt, params.clone()).await.expect(sql);
        assert!(!text.is_empty(), "{sql} returned no rows");
        assert_eq!(text.len(), bin.len(), "{sql}");
        for (t, b) in text.iter().zip(&bin) {
            let names = |r: &mysql_async::Row| {
                r.columns_ref()
                    .iter()
                    .map(|c| c.name_str().into_owned())
                    .collect::<Vec<_>>()
            };
            assert_eq!(names(t), names(b), "{sql}");
            assert_eq!(announced, names(b), "{sql}: columns announced at prepare");
            for i in 0..t.len() {
                // Text values are strings; binary ones typed: compare what an app reads.
                let tv: Option<String> = match t.as_ref(i) {
                    Some(Value::Bytes(x)) => Some(String::from_utf8_lossy(x).into_owned()),
                    Some(Value::NULL) | None => None,
                    Some(other) => panic!("{sql}: text protocol value {other:?}"),
                };
                let bv: Option<String> = match b.as_ref(i) {
                    Some(Value::NULL) | None => None,
                    Some(v) => Some(match v {
                        Value::Bytes(x) => String::from_utf8_lossy(x).into_owned(),
                        Value::Double(d) => d.to_string(),
                        Value::Date(..) | Value::Time(..) => {
                            let s = v.as_sql(true);
                            s.trim_matches('\'').to_string()
                        }
                        other => other.as_sql(true),
                    }),
                };
                let norm = |s: Option<String>| {
                    s.map(|s| match s.parse::<f64>() {
                        Ok(f) if s.contains('e') || s.contains('.') => format!("{f}"),
                        _ => s,
                    })
                };
                assert_eq!(norm(tv), norm(bv), "{sql}: column {i}");
            }
        }
        c.close(stmt).await.expect("close");
    }
    // A failing execution is an ERR with the shard's code; the connection stays usable.
    let dup = c
        .exec_drop("INSERT INTO ps_types (id, grp) VALUES (?, ?)", (1, "dup"))
        .await;
    assert!(
        matches!(&dup, Err(mysql_async::Error::Server(e)) if e.code == 1062),
        "{dup:?}"
    );
    let one: Option<i64> = c.query_first("SELECT 1").await.expect("usable");
    assert_eq!(one, Some(1));
}

#[tokio::test]
async fn sql_prepare_and_execute_with_user_variables() {
    ps_table().await;
    let mut c = connect("app", "app", Some("sbshard"))
        .await
        .expect("connects");
    c.query_drop("PREPARE q FROM 'SELECT label FROM ps_types WHERE id = ?'")
        .await
        .expect("prepare");
    c.query_drop("SET @id = 8").await.expect("set");
    let label: Option<String> = c.query_first("EXECUTE q USING @id").await.expect("execute");
    assert_eq!(label.as_deref(), Some("Label 8 ' quoted"));
    c.query_drop("DEALLOCATE PREPARE q")
        .await
        .expect("deallocate");
    let gone = c.query_drop("EXECUTE q USING @id").await;
    assert!(
        matches!(&gone, Err(mysql_async::Error::Server(e)) if e.code == 1243),
        "{gone:?}"
    );
}

#[tokio::test]
async fn mysql_connector_python_prepared_cursor_answers_as_text() {
    crate::drivers::ensure_python_module("mysql.connector", "mysql-connector-python");
    ps_table().await;
    let out = crate::drivers::python_client(
        "prepared_check.py",
        &[crate::env::env().proxy.port.to_string()],
        None,
    );
    assert!(out.contains("ok prepared = text for 6 statements"), "{out}");
}
