//! The in-repository differential suite (`tests/differential/`): five tables, thousands of
//! rows with NULLs, duplicates, negative numbers, mixed-case and accented strings, dates and
//! decimals, and over 300 SELECTs of every class, answered by one plain MariaDB and by myshard
//! over four shards. Every answer must be identical — labels, rows, and order where ORDER BY
//! fixes it — or, for a class the README lists as unsupported, ERR 1235.

use std::path::PathBuf;

#[test]
fn myshard_answers_every_query_as_one_mariadb() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("differential");
    let summary = myshard_tests::differential::run(&dir, "diff", &dir.join("run.py"));
    let count = |k: &str| summary.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
    assert_eq!(count("ref_error"), 0, "the reference rejected queries");
    assert_eq!(count("mismatch"), 0, "myshard answered differently");
    assert_eq!(count("label_mismatch"), 0, "column labels differ");
    assert_eq!(count("refused_bad"), 0, "a supported query was refused");
    assert!(count("match") + count("refused_ok") >= 300, "{summary}");
}
