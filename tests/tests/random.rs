//! The random differential tester (`tests/random/fuzz.py`): generated statements — reads of
//! every class and writes — over adversarial data, answered by one plain MariaDB and by
//! myshard over four shards. A fixed seed runs in the test suite and must give no wrong
//! answer; `scripts/fuzz` runs a fresh seed for longer.

use std::path::PathBuf;

#[test]
fn random_statements_answer_as_one_mariadb() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("random");
    let summary = myshard_tests::differential::run(&dir, "fuzz", &dir.join("fuzz.py"));
    let count = |k: &str| summary.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
    assert_eq!(
        count("wrong"),
        0,
        "myshard answered differently from one MariaDB (seed {}); each WRONG line above is a statement to turn into a permanent case",
        summary["seed"]
    );
    assert!(count("match") > 0, "{summary}");
}
