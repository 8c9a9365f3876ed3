//! Reads: one shard's answer forwarded, concatenations, merged (sorted, grouped, aggregated)
//! answers streamed or buffered, and the column definitions a prepared read announces.

use crate::backend::PooledConn;
use crate::error::ProxyError;
use crate::executor::{self, ForwardError};
use crate::local;
use crate::protocol::PacketStream;
use crate::server::Shared;
use crate::session::{Diagnostic, Session};
use myshard_merger::MergeSpec;
use myshard_router::StatementKind;
use myshard_sql_rewrite::ShardQuery;
use mysql_common::value::Value;

impl Session {
    /// The single-shard fast path: results stream straight through.
    pub(crate) async fn single(
        &mut self,
        stream: &mut PacketStream,
        query: &ShardQuery,
        renames: &[(String, String)],
        more: bool,
    ) -> Result<(), ForwardError> {
        let mut retried = false;
        let (mut conn, res) = loop {
            let mut conn = self
                .acquire(&query.shard, query.database.as_deref())
                .await
                .map_err(ForwardError::Statement)?;
            conn.count_statement();
            let framing = self.framing(more);
            let before = stream.packets_written();
            let shard_timer = self
                .shared
                .metrics
                .shard_latency
                .with_label_values(&[&query.shard])
                .start_timer();
            let res = match conn.conn() {
                Ok(c) => {
                    executor::forward(
                        stream,
                        c,
                        &query.shard,
                        &query.sql,
                        framing,
                        executor::Patches {
                            identity: self.shared.identity_overrides(),
                            renames,
                        },
                    )
                    .await
                }
                Err(e) => Err(ForwardError::Statement(e)),
            };
            shard_timer.observe_duration();
            // A replica that fails before anything reached the client: retry the read once
            // elsewhere (another replica, or the primary).
            let lost = matches!(
                &res,
                Err(ForwardError::Statement(ProxyError::ShardUnavailable { .. }))
            );
            if lost && conn.is_replica() && !retried && stream.packets_written() == before {
                tracing::warn!(shard = %query.shard, backend = conn.addr(), "replica failed mid-read; retrying elsewhere");
                conn.mark_backend_down();
                drop(conn);
                retried = true;
                continue;
            }
            break (conn, res);
        };
        let outcome = match res {
            Ok(o) => o,
            Err(e) => {
                match &e {
                    ForwardError::Statement(pe) => self.give_back(conn, Some(pe)),
                    ForwardError::Client(_) => drop(conn),
                }
                return Err(e);
            }
        };
        self.rows = outcome.rows;
        if outcome.last_insert_id != 0 {
            self.last_insert_id = outcome.last_insert_id;
        }
        if outcome.warnings > 0 {
            self.fetch_warnings(&mut conn, &query.shard).await;
        }
        self.give_back(conn, None);
        self.unpin_if_free();
        Ok(())
    }

    pub(crate) async fn fetch_warnings(&mut self, conn: &mut PooledConn, shard: &str) {
        if let Ok(c) = conn.conn() {
            if let Ok((_, rows)) = executor::collect(c, shard, "SHOW WARNINGS").await {
                self.diagnostics
                    .extend(rows.iter().filter_map(|r| local::diagnostic_from_row(r)));
            }
        }
    }

    /// A read over several targets whose row order MySQL leaves open: each target's rows
    /// in turn, with OFFSET/LIMIT applied here.
    pub(crate) async fn concat(
        &mut self,
        stream: &mut PacketStream,
        queries: &[ShardQuery],
        mut state: executor::ConcatState,
        more: bool,
    ) -> Result<(), ForwardError> {
        let framing = self.framing(more);
        if state.union && queries.len() > 1 {
            self.check_union_all(queries)
                .await
                .map_err(ForwardError::Statement)?;
        }
        if queries.len() > 1 && distinct_shards(queries) {
            let mut conns = self
                .acquire_all(queries)
                .await
                .map_err(ForwardError::Statement)?;
            let res = match raw_conns(&mut conns) {
                Ok(raw) => {
                    executor::concat_streams(stream, raw, queries, &mut state, framing).await
                }
                Err(e) => Err(e),
            };
            self.give_back_all(conns, res.as_ref().err());
            res?;
            executor::concat_end(stream, &state, framing).await?;
            self.rows = state.sent;
            self.unpin_if_free();
            return Ok(());
        }
        for query in queries {
            let mut conn = self
                .acquire(&query.shard, query.database.as_deref())
                .await
                .map_err(ForwardError::Statement)?;
            conn.count_statement();
            let res = match conn.conn() {
                Ok(c) => {
                    executor::concat_part(stream, c, &query.shard, &query.sql, &mut state, framing)
                        .await
                }
                Err(e) => Err(ForwardError::Statement(e)),
            };
            match res {
                Ok(()) => self.give_back(conn, None),
                Err(e) => {
                    match &e {
                        ForwardError::Statement(pe) => self.give_back(conn, Some(pe)),
                        ForwardError::Client(_) => drop(conn),
                    }
                    return Err(e);
                }
            }
        }
        executor::concat_end(stream, &state, framing).await?;
        self.rows = state.sent;
        self.unpin_if_free();
        Ok(())
    }

    /// A SELECT over several targets that needs aggregation, de-duplication or sorting: each
    /// target's rows are collected, merged with MySQL's semantics, then sent.
    pub(crate) async fn merged_select(
        &mut self,
        stream: &mut PacketStream,
        queries: &[ShardQuery],
        spec: &myshard_merger::SelectMerge,
        union: bool,
        more: bool,
    ) -> Result<(), ForwardError> {
        if spec.stream_order().is_some() && distinct_shards(queries) && queries.len() > 1 {
            return self.sorted_streams(stream, queries, spec, more).await;
        }
        let (out_columns, rows) = self
            .merged_rows(queries, spec, union)
            .await
            .map_err(ForwardError::Statement)?;
        self.unpin_if_free();
        let warnings = u16::try_from(self.diagnostics.len()).unwrap_or(u16::MAX);
        executor::write_result_warning(stream, &out_columns, &rows, self.framing(more), warnings)
            .await?;
        Ok(())
    }

    /// Gives back the connections of a statement that ran on several at once: after a client
    /// failure they are closed; after a shard's failure only that shard's is suspect.
    pub(crate) fn give_back_all(&mut self, conns: Vec<PooledConn>, failed: Option<&ForwardError>) {
        match failed {
            Some(ForwardError::Client(_)) => drop(conns),
            Some(ForwardError::Statement(e)) => {
                for conn in conns {
                    let theirs = matches!(e, ProxyError::ShardUnavailable { shard, .. } if shard == conn.shard());
                    self.give_back(conn, theirs.then_some(e));
                }
            }
            None => {
                for conn in conns {
                    self.give_back(conn, None);
                }
            }
        }
    }

    /// One connection per target (each target on its own shard), counted as running a
    /// statement; on failure the ones already taken go back.
    pub(crate) async fn acquire_all(
        &mut self,
        queries: &[ShardQuery],
    ) -> Result<Vec<PooledConn>, ProxyError> {
        let mut conns = Vec::with_capacity(queries.len());
        for query in queries {
            match self.acquire(&query.shard, query.database.as_deref()).await {
                Ok(conn) => {
                    conn.count_statement();
                    conns.push(conn);
                }
                Err(e) => {
                    for conn in conns {
                        self.give_back(conn, None);
                    }
                    return Err(e);
                }
            }
        }
        // Shards joined by this statement make the transaction span several: bound the
        // lock waits of the branches that began before them, as this statement runs on all.
        for i in 0..conns.len() {
            let shard = queries[i].shard.as_str();
            if let Err(e) = self.bound_lock_waits(&mut conns[i], shard).await {
                for conn in conns {
                    self.give_back(conn, None);
                }
                return Err(e);
            }
        }
        Ok(conns)
    }

    /// Every target's first result set: all at once when each target is on its own shard,
    /// else one after the other (a transaction has one connection per shard).
    pub(crate) async fn collect_all(
        &mut self,
        queries: &[ShardQuery],
    ) -> Result<Vec<(Vec<mysql_common::packets::Column>, Vec<Vec<Value>>)>, ProxyError> {
        // What a buffered merge holds is counted as it arrives, over all its shards.
        let budget = executor::Budget::new(
            self.shared.config().server.merge_memory_limit,
            usize::MAX,
            "server.merge_memory_limit",
        );
        let budget = &budget;
        if !distinct_shards(queries) {
            let mut out = Vec::with_capacity(queries.len());
            for query in queries {
                let mut conn = self
                    .acquire(&query.shard, query.database.as_deref())
                    .await?;
                conn.count_statement();
                let res = collect_timed(&self.shared, &mut conn, query, budget).await;
                self.give_back(conn, res.as_ref().err());
                out.push(res?);
            }
            return Ok(out);
        }
        let mut conns = self.acquire_all(queries).await?;
        let shared = self.shared.clone();
        let results =
            futures_util::future::join_all(conns.iter_mut().zip(queries).map(|(conn, query)| {
                let shared = &shared;
                async move { collect_timed(shared, conn, query, budget).await }
            }))
            .await;
        let mut out = Vec::with_capacity(queries.len());
        let mut first_error = None;
        for (conn, res) in conns.into_iter().zip(results) {
            self.give_back(conn, res.as_ref().err());
            match res {
                Ok(r) => out.push(r),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// A sorted or grouped read over several targets (one connection each), merged as
    /// streams.
    pub(crate) async fn sorted_streams(
        &mut self,
        stream: &mut PacketStream,
        queries: &[ShardQuery],
        spec: &myshard_merger::SelectMerge,
        more: bool,
    ) -> Result<(), ForwardError> {
        let framing = self.framing(more);
        let mut conns = self
            .acquire_all(queries)
            .await
            .map_err(ForwardError::Statement)?;
        let limit = self.shared.config().server.merge_memory_limit;
        let res = match raw_conns(&mut conns) {
            Ok(raw) => {
                executor::merge_sorted_streams(stream, raw, queries, spec, framing, limit).await
            }
            Err(e) => Err(e),
        };
        self.give_back_all(conns, res.as_ref().err());
        let sent = res?;
        self.shared.metrics.merge_rows.inc_by(sent);
        self.rows = sent;
        self.unpin_if_free();
        Ok(())
    }

    /// A UNION whose branches give one column different collations (each a table's column,
    /// of IMPLICIT coercibility): MariaDB either refuses it (ERR 1271, as here) or combines it
    /// in the one collation that wins (a `_bin` one over its charset's others, a Unicode
    /// charset's over latin1's), which the branches' collation weights cannot do; that is
    /// refused (ERR 1235).
    async fn check_union_collations(
        &mut self,
        queries: &[ShardQuery],
        answers: &[(Vec<mysql_common::packets::Column>, Vec<Vec<Value>>)],
        distinct: bool,
    ) -> Result<(), ProxyError> {
        let mut seen: Vec<Option<String>> = Vec::new();
        for (query, (cols, _)) in queries.iter().zip(answers) {
            let collations = self.column_collations(&query.shard, cols).await?;
            for (i, c) in collations.into_iter().enumerate() {
                if seen.len() <= i {
                    seen.resize(i + 1, None);
                }
                match (&seen[i], c) {
                    (Some(a), Some(b)) if *a != b => match union_collation(a, &b) {
                        None => {
                            return Err(ProxyError::sql(
                                1271,
                                "HY000",
                                "Illegal mix of collations for operation 'UNION'",
                            ))
                        }
                        // UNION ALL keeps every row: only the result's collation differs.
                        Some(_) if !distinct => {}
                        Some(_) => return Err(ProxyError::not_supported(format!(
                            "column {} of this UNION is {a} in one branch and {b} in another; combining them across shards is not supported yet (COLLATE both to one collation)",
                            i + 1
                        ))),
                    },
                    (None, Some(b)) => seen[i] = Some(b),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// A UNION ALL's branches streamed one after another: their columns' collations are
    /// checked first (ERR 1271 where MariaDB gives it), from each branch's prepared metadata
    /// (nothing runs), since the first branch's rows are sent before the next one's columns
    /// arrive.
    pub(crate) async fn check_union_all(
        &mut self,
        queries: &[ShardQuery],
    ) -> Result<(), ProxyError> {
        let mut branches: Vec<&ShardQuery> = Vec::new();
        for q in queries {
            if !branches.iter().any(|b| b.sql == q.sql) {
                branches.push(q);
            }
        }
        if branches.len() < 2 {
            return Ok(());
        }
        let mut described = Vec::with_capacity(branches.len());
        for q in &branches {
            // On the connection the branch will run on (a transaction's, or the one that
            // holds the session's temporary tables or table locks). A branch that cannot be
            // prepared is left to run (and fail) as it is.
            let Ok(cols) = self.prepared_columns(q, true).await else {
                return Ok(());
            };
            described.push((cols, Vec::new()));
        }
        let branches: Vec<ShardQuery> = branches.into_iter().cloned().collect();
        self.check_union_collations(&branches, &described, false)
            .await
    }

    /// The merged rows of a SELECT over several targets.
    pub(crate) async fn merged_rows(
        &mut self,
        queries: &[ShardQuery],
        spec: &myshard_merger::SelectMerge,
        union: bool,
    ) -> Result<(Vec<mysql_common::packets::Column>, Vec<Vec<Value>>), ProxyError> {
        let mut columns: Option<Vec<mysql_common::packets::Column>> = None;
        let mut union_branches: Vec<Vec<mysql_common::packets::Column>> = Vec::new();
        let mut per_shard = Vec::with_capacity(queries.len());
        let answers = self.collect_all(queries).await?;
        if union {
            self.check_union_collations(queries, &answers, true).await?;
        }
        for (query, (cols, rows)) in queries.iter().zip(answers) {
            let bytes: usize = rows
                .iter()
                .map(|r| {
                    r.iter()
                        .map(|v| match v {
                            Value::Bytes(b) => b.len(),
                            _ => 8,
                        })
                        .sum::<usize>()
                })
                .sum();
            self.shared.metrics.merge_bytes.inc_by(bytes as u64);
            match &columns {
                None => columns = Some(cols),
                Some(first) => {
                    crate::merge::check_same_shape(first, &cols, &query.shard)?;
                    if union {
                        union_branches.push(cols);
                    }
                }
            }
            per_shard.push(
                rows.into_iter()
                    .map(crate::merge::cells)
                    .collect::<Vec<_>>(),
            );
        }
        let mut columns = columns.unwrap_or_default();
        if union {
            let mut all: Vec<&[mysql_common::packets::Column]> = vec![&columns];
            all.extend(union_branches.iter().map(|b| b.as_slice()));
            columns = crate::merge::union_columns(&all);
        }
        let limit = self.shared.config().server.merge_memory_limit;
        let (out_columns, rows, cuts) =
            crate::merge::merge_select(spec, &columns, per_shard, limit)?;
        for row in cuts {
            self.diagnostics.push(Diagnostic {
                level: "Warning".into(),
                code: 1260,
                message: format!("Row {row} was cut by GROUP_CONCAT()"),
            });
        }
        self.shared.metrics.merge_rows.inc_by(rows.len() as u64);
        self.rows = rows.len() as u64;
        Ok((out_columns, rows))
    }

    /// The result columns a read would return, without running it: the first target's
    /// statement is prepared on its shard, and merged reads map those columns through the
    /// merge (uncorrelated subqueries run first, as at execution).
    pub(crate) async fn describe_read(
        &mut self,
        sql: &str,
    ) -> Result<Vec<mysql_common::packets::Column>, ProxyError> {
        // Writes and DDL return no rows: no planning (which would also spend generated ids).
        let head = myshard_router::lexer::tokenize(sql.get(..64).unwrap_or(sql));
        if myshard_router::route::first_kind(&head) != StatementKind::Read {
            return Ok(Vec::new());
        }
        let (plan, exec) = self.plan_materialized(sql).await?;
        let empty = Vec::new;
        // Preparing a read on its shard runs nothing, locking reads included.
        if plan.kind != StatementKind::Read {
            return Ok(empty());
        }
        let Some(q) = exec.queries.first() else {
            return Ok(empty());
        };
        self.role = exec.role;
        let res = self.prepared_columns(q, false).await;
        self.unpin_if_free();
        let columns = res?;
        match &exec.merge {
            MergeSpec::Select(spec) => {
                let (out, _, _) =
                    crate::merge::merge_select(spec, &columns, Vec::new(), usize::MAX)?;
                Ok(out)
            }
            _ => Ok(columns),
        }
    }

    /// The columns a target's statement would return, from its prepared metadata (COM_STMT_
    /// PREPARE runs nothing, locking reads included); on the session's own connection for
    /// the shard when `within`, else outside its transaction.
    async fn prepared_columns(
        &mut self,
        q: &ShardQuery,
        within: bool,
    ) -> Result<Vec<mysql_common::packets::Column>, ProxyError> {
        let mut conn = if within {
            self.acquire(&q.shard, q.database.as_deref()).await?
        } else {
            self.acquire_outside_transaction(&q.shard, q.database.as_deref())
                .await?
        };
        let res = match conn.conn() {
            Ok(c) => match mysql_async::prelude::Queryable::prep(c, q.sql.as_str()).await {
                Ok(stmt) => {
                    let cols = stmt.columns().to_vec();
                    let _ = mysql_async::prelude::Queryable::close(c, stmt).await;
                    Ok(cols)
                }
                Err(e) => Err(ProxyError::from_driver(&q.shard, e)),
            },
            Err(e) => Err(e),
        };
        self.give_back(conn, res.as_ref().err());
        res
    }

    /// The column definitions a statement would return (for COM_FIELD_LIST).
    pub async fn columns_of(
        &mut self,
        sql: &str,
    ) -> Result<Vec<mysql_common::packets::Column>, ProxyError> {
        match self.collect(sql).await {
            Ok((cols, _)) => Ok(cols),
            Err(ForwardError::Statement(e)) => Err(e),
            Err(ForwardError::Client(e)) => Err(ProxyError::Protocol {
                code: 2013,
                message: e.to_string(),
            }),
        }
    }
}

/// The driver connections of pooled ones, to run statements on all of them at once.
pub(crate) fn raw_conns(
    conns: &mut [PooledConn],
) -> Result<Vec<&mut mysql_async::Conn>, ForwardError> {
    conns
        .iter_mut()
        .map(|c| c.conn().map_err(ForwardError::Statement))
        .collect()
}

/// Whether every target is on its own shard (so each can have its own connection at once).
pub(crate) fn distinct_shards(queries: &[ShardQuery]) -> bool {
    let mut names: Vec<&str> = queries.iter().map(|q| q.shard.as_str()).collect();
    names.sort_unstable();
    names.windows(2).all(|w| w[0] != w[1])
}

/// Runs a target's statement and collects its rows, timing it per shard.
pub(crate) async fn collect_timed(
    shared: &Shared,
    conn: &mut PooledConn,
    query: &ShardQuery,
    budget: &executor::Budget,
) -> Result<(Vec<mysql_common::packets::Column>, Vec<Vec<Value>>), ProxyError> {
    let timer = shared
        .metrics
        .shard_latency
        .with_label_values(&[&query.shard])
        .start_timer();
    let res = match conn.conn() {
        Ok(c) => executor::collect_within(c, &query.shard, &query.sql, budget).await,
        Err(e) => Err(e),
    };
    timer.observe_duration();
    res
}

/// The collation MariaDB gives a UNION column whose branches are two different table
/// columns (both IMPLICIT): the Unicode side's over a non-Unicode charset, the binary one
/// within a charset; `None` where it refuses (ERR 1271).
fn union_collation<'a>(a: &'a str, b: &'a str) -> Option<&'a str> {
    fn charset(c: &str) -> &str {
        c.split('_').next().unwrap_or(c)
    }
    let unicode = |c: &str| {
        matches!(
            charset(c),
            "utf8mb4" | "utf8mb3" | "utf8" | "ucs2" | "utf16" | "utf32"
        )
    };
    let binary = |c: &str| c.ends_with("_bin");
    if charset(a) != charset(b) {
        return match (unicode(a), unicode(b)) {
            (true, false) => Some(a),
            (false, true) => Some(b),
            _ => None,
        };
    }
    match (binary(a), binary(b)) {
        (true, false) => Some(a),
        (false, true) => Some(b),
        _ => None,
    }
}

#[cfg(test)]
mod union_collation_tests {
    use super::union_collation;

    #[test]
    fn mariadb_picks_the_binary_or_unicode_side_or_refuses() {
        assert_eq!(
            union_collation("utf8mb4_bin", "utf8mb4_general_ci"),
            Some("utf8mb4_bin")
        );
        assert_eq!(
            union_collation("utf8mb4_unicode_ci", "utf8mb4_bin"),
            Some("utf8mb4_bin")
        );
        assert_eq!(
            union_collation("latin1_swedish_ci", "utf8mb4_general_ci"),
            Some("utf8mb4_general_ci")
        );
        assert_eq!(
            union_collation("utf8mb4_unicode_ci", "utf8mb4_general_ci"),
            None
        );
        assert_eq!(
            union_collation("utf8mb4_general_nopad_ci", "utf8mb4_general_ci"),
            None
        );
    }
}
