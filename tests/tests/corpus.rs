//! The public differential corpus (`../shared/corpus`, taken from Vitess's end-to-end
//! suites): the same schema and data in one plain MariaDB and, through myshard, in 4 shards;
//! every statement on both. Prints the pass rate by query class. A refusal (ERR 1235) is an
//! honest "not yet"; a different answer is a bug, so the test requires none.

use std::path::PathBuf;

fn corpus_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    assert!(
        dir.join("queries.sql").is_file(),
        "the public corpus is expected at {} (shared/ beside the clone)",
        dir.display()
    );
    dir
}

#[test]
fn public_corpus_never_gets_a_wrong_answer() {
    let dir = corpus_dir();
    let summary = myshard_tests::differential::run(
        &dir,
        "corpus",
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus/run_corpus.py"),
    );
    assert_eq!(
        summary
            .get("ref_error")
            .and_then(|v| v.as_u64())
            .unwrap_or(0),
        0,
        "the reference rejected statements"
    );
    assert_eq!(
        summary
            .get("mismatch")
            .and_then(|v| v.as_u64())
            .unwrap_or(0),
        0,
        "myshard answered differently from one MariaDB"
    );
    assert!(summary.get("match").and_then(|v| v.as_u64()).unwrap_or(0) > 0);
}
