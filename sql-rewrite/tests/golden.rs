//! Golden-file tests for routing and per-shard SQL: each case is `{comment, schema, sql}`
//! with the expected `plan` or `error`. A mismatch fails with a diff; run
//! `MYSHARD_ACCEPT=1 cargo test -p myshard-sql-rewrite --test golden` to write the actual
//! output into the case files, then review the change with `git diff`.

use myshard_config::Config;
use myshard_router::{CountingIds, Router};
use myshard_sql_rewrite::staged::{plan_tree, Facts, Plan};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn actual(router: &Router, schema: Option<&str>, sql: &str) -> (Option<Value>, Option<String>) {
    let mut ids = CountingIds(1000);
    let facts = Facts {
        schema,
        allowed: None,
        mode: Default::default(),
    };
    let (plan, exec) = match plan_tree(router, &facts, sql, &mut ids) {
        Plan::Run(p) => *p,
        Plan::Refuse(e) => return (None, Some(e.to_string())),
        // Parts that run first: the plan as `myshard explain` prints it.
        staged => return (Some(json!({ "stages": staged.lines() })), None),
    };
    let queries: Vec<Value> = exec
        .queries
        .iter()
        .map(|q| {
            let target = match q.table {
                Some(t) => format!("{}#{t}", q.shard),
                None => q.shard.clone(),
            };
            json!(format!("{target}: {}", q.sql))
        })
        .collect();
    let mut out = json!({
        "kind": plan.kind.label(),
        "merge": exec.merge.to_string(),
        "queries": queries,
    });
    if let Some(id) = exec.last_insert_id {
        out["last_insert_id"] = json!(id);
    }
    if !exec.result_renames.is_empty() {
        out["result_renames"] = json!(exec.result_renames);
    }
    if !plan.catalog.is_empty() {
        out["catalog"] = json!(plan.catalog);
    }
    if !plan.schemas.is_empty() {
        out["schemas"] = json!(plan.schemas);
    }
    (Some(out), None)
}

#[test]
fn golden_cases() {
    let config =
        Config::load(&golden_dir().join("shardmap.toml")).expect("golden shard map is valid");
    let router = Router::new(Arc::new(config));
    // The unique keys myshard would read from the shards (`myshard_router::columns`):
    // customers and the split t_order are keyed by their sharding column, orders only by
    // its own id (so upserts into it are refused).
    let key = |name: &str, columns: &[&str]| myshard_router::columns::UniqueKey {
        name: name.to_string(),
        columns: columns.iter().map(|c| c.to_string()).collect(),
    };
    let catalog = router.columns();
    catalog.set_unique_keys("shop", "customers", vec![key("PRIMARY", &["id"])]);
    catalog.set_unique_keys("shop", "orders", vec![key("PRIMARY", &["id"])]);
    catalog.set_unique_keys(
        "shop",
        "t_order",
        vec![key("PRIMARY", &["user_id", "order_id"])],
    );
    catalog.set_unique_keys(
        "shop",
        "members",
        vec![key("PRIMARY", &["level", "id"]), key("email", &["email"])],
    );
    // The columns myshard would read from the shards when a subquery's names decide whether
    // it refers to the statement around it.
    let columns = |table: &str, names: &[&str]| {
        catalog.set("shop", table, names.iter().map(|n| n.to_string()).collect())
    };
    columns(
        "customers",
        &["id", "name", "region", "level", "created_at"],
    );
    columns(
        "orders",
        &["id", "customer_id", "amount", "status", "created_at"],
    );
    columns(
        "order_items",
        &["id", "customer_id", "order_id", "sku", "qty", "price"],
    );
    columns("stores", &["id", "region", "name"]);
    columns("members", &["id", "level", "email", "name"]);
    columns("tenant_events", &["id", "tenant_id", "kind"]);
    columns("logs", &["id", "msg"]);
    columns("t_order", &["order_id", "user_id", "status", "amount"]);
    columns(
        "t_order_item",
        &["item_id", "order_id", "user_id", "sku", "qty"],
    );
    columns("countries", &["code", "name"]);
    let accept = std::env::var("MYSHARD_ACCEPT").is_ok_and(|v| v == "1");
    let mut files: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .expect("golden dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut failures = Vec::new();
    let mut total = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read cases");
        let mut cases: Vec<Value> =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for case in cases.iter_mut() {
            total += 1;
            let sql = case["sql"].as_str().expect("sql").to_string();
            let schema = case
                .get("schema")
                .and_then(|s| s.as_str())
                .map(str::to_string)
                .or(Some("shop".into()));
            let schema = schema.filter(|s| !s.is_empty());
            let (plan, error) = actual(&router, schema.as_deref(), &sql);
            let expected_plan = case.get("plan").cloned();
            let expected_error = case
                .get("error")
                .and_then(|e| e.as_str())
                .map(str::to_string);
            if expected_plan != plan || expected_error != error {
                failures.push(format!(
                    "{}: {}\n  sql: {sql}\n  expected: {}\n  actual:   {}",
                    file.file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    case["comment"].as_str().unwrap_or(""),
                    expected_plan
                        .map(|p| p.to_string())
                        .or(expected_error.map(|e| format!("error: {e}")))
                        .unwrap_or_default(),
                    plan.clone()
                        .map(|p| p.to_string())
                        .or(error.clone().map(|e| format!("error: {e}")))
                        .unwrap_or_default(),
                ));
            }
            if let Some(obj) = case.as_object_mut() {
                obj.remove("plan");
                obj.remove("error");
                if let Some(p) = plan {
                    obj.insert("plan".into(), p);
                }
                if let Some(e) = error {
                    obj.insert("error".into(), json!(e));
                }
            }
        }
        if accept {
            let pretty = serde_json::to_string_pretty(&cases).expect("json");
            std::fs::write(&file, pretty + "\n").expect("write cases");
        }
    }
    assert!(total >= 150, "only {total} golden cases");
    if !accept && !failures.is_empty() {
        panic!(
            "{} of {total} golden cases differ:\n\n{}\n\nIf the new output is right, accept it with\n  MYSHARD_ACCEPT=1 cargo test -p myshard-sql-rewrite --test golden\nand review `git diff sql-rewrite/tests/golden`.",
            failures.len(),
            failures.join("\n\n")
        );
    }
}
