//! The `mariadb` command-line client, in batch mode and in a scripted interactive session on
//! a pseudo-terminal, with both auth plugins, with and without TLS.

use crate::env::env;
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn mariadb(user: &str, password: &str, db: Option<&str>, extra: &[&str], sql: &str) -> Output {
    let e = env();
    let mut cmd = Command::new("mariadb");
    cmd.args(["--no-defaults", "-h127.0.0.1", "-B"])
        .arg(format!("-P{}", e.proxy.port))
        .arg(format!("-u{user}"))
        .arg(format!("-p{password}"))
        .args(extra)
        .arg("-e")
        .arg(sql);
    if let Some(db) = db {
        cmd.arg(db);
    }
    cmd.output()
        .expect("the mariadb client runs (apt-get install mariadb-client)")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn batch_query_with_caching_sha2_without_tls() {
    let o = mariadb(
        "app",
        "app",
        Some("shop"),
        &["--skip-ssl"],
        "SELECT id, name FROM items WHERE id <= 3 ORDER BY id",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "id\tname\n1\tapple\n2\tNULL\n3\tCherry\n");
}

#[test]
fn batch_query_with_native_password_over_tls() {
    let e = env();
    let ca = format!("--ssl-ca={}", e.cert.display());
    let o = mariadb(
        "nat",
        "nat",
        Some("shop"),
        &["--ssl", &ca],
        "SHOW STATUS LIKE 'Ssl_version'; SELECT COUNT(*) FROM items WHERE id <= 3",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("3\n"), "{}", stdout(&o));
}

#[test]
fn batch_query_with_caching_sha2_over_tls() {
    let o = mariadb(
        "cli",
        "cli",
        Some("shop"),
        &["--ssl"],
        "SELECT DATABASE(), @@version_comment",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "DATABASE()\t@@version_comment\nshop\tmyshard sharding proxy\n"
    );
}

#[test]
fn wrong_password_is_1045() {
    let o = mariadb("app", "nope", Some("shop"), &["--skip-ssl"], "SELECT 1");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("ERROR 1045 (28000)"), "{}", stderr(&o));
    let o = mariadb("nat", "nope", None, &["--skip-ssl"], "SELECT 1");
    assert!(stderr(&o).contains("ERROR 1045 (28000)"), "{}", stderr(&o));
}

#[test]
fn unknown_schema_is_1049_and_ungranted_schema_is_1044() {
    let o = mariadb("app", "app", Some("nosuch"), &["--skip-ssl"], "SELECT 1");
    assert!(stderr(&o).contains("ERROR 1049 (42000)"), "{}", stderr(&o));
    let o = mariadb("app", "app", Some("other"), &["--skip-ssl"], "SELECT 1");
    assert!(stderr(&o).contains("ERROR 1044 (42000)"), "{}", stderr(&o));
    let o = mariadb("app", "app", None, &["--skip-ssl"], "USE other");
    assert!(stderr(&o).contains("ERROR 1044 (42000)"), "{}", stderr(&o));
}

#[test]
fn backend_error_reaches_the_client_unchanged() {
    let o = mariadb(
        "app",
        "app",
        Some("shop"),
        &["--skip-ssl"],
        "INSERT INTO items (id) VALUES (1)",
    );
    assert!(
        stderr(&o).contains("ERROR 1062 (23000) at line 1: Duplicate entry '1' for key 'PRIMARY'"),
        "{}",
        stderr(&o)
    );
    let o = mariadb(
        "app",
        "app",
        Some("shop"),
        &["--skip-ssl"],
        "SELECT nosuchcolumn FROM items",
    );
    assert!(stderr(&o).contains("ERROR 1054 (42S22)"), "{}", stderr(&o));
}

#[test]
fn show_databases_lists_only_granted_logical_schemas() {
    let o = mariadb("app", "app", None, &["--skip-ssl"], "SHOW DATABASES");
    assert_eq!(stdout(&o), "Database\nlit\nsbshard\nsbtest\nshop\n");
    let o = mariadb(
        "app",
        "app",
        Some("shop"),
        &["--skip-ssl"],
        "SHOW TABLES LIKE 'item%'",
    );
    assert_eq!(stdout(&o), "Tables_in_shop (item%)\nitems\n");
}

#[test]
fn admin_status_and_ping_use_com_statistics_and_com_ping() {
    let e = env();
    let o = Command::new("mariadb-admin")
        .args([
            "--no-defaults",
            "-h127.0.0.1",
            "-uapp",
            "-papp",
            "--skip-ssl",
        ])
        .arg(format!("-P{}", e.proxy.port))
        .args(["ping", "status"])
        .output()
        .expect("mariadb-admin runs");
    let out = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.contains("mysqld is alive"), "{out}");
    assert!(
        out.contains("Uptime:") && out.contains("Questions:"),
        "{out}"
    );
}

#[test]
fn scripted_interactive_session_on_a_terminal() {
    let e = env();
    // `script` gives the client a pseudo-terminal, so it runs in interactive mode (prompt,
    // table output, tab-completion rehash through COM_FIELD_LIST).
    let command = format!(
        "mariadb --no-defaults -h127.0.0.1 -P{} -ucli -pcli --skip-ssl --auto-rehash shop",
        e.proxy.port
    );
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1) runs");
    let input = "SELECT name FROM items WHERE id = 3;\nINSERT INTO items (id) VALUES (1);\nstatus\nSELECT 'still here' AS s;\nquit\n";
    {
        let stdin = child.stdin.as_mut().expect("stdin");
        for line in input.lines() {
            stdin.write_all(line.as_bytes()).expect("write");
            stdin.write_all(b"\n").expect("write");
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    }
    let o = child.wait_with_output().expect("script finishes");
    let out = stdout(&o);
    assert!(
        out.contains("MariaDB [shop]>") || out.contains("MySQL [shop]>"),
        "{out}"
    );
    assert!(out.contains("| Cherry |"), "{out}");
    assert!(out.contains("ERROR 1062 (23000)"), "{out}");
    assert!(
        out.contains("Server version:") && out.contains("8.0.36-myshard"),
        "{out}"
    );
    assert!(out.contains("| still here |"), "{out}");
}
