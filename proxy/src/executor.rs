//! Runs statements on backend connections and writes their results to the client.
//! Single-shard results stream through: each row is re-framed as it arrives, never buffered
//! whole.

use crate::error::ProxyError;
use crate::protocol::binary::binary_row_packet;
use crate::protocol::response::{err_packet, Ok as OkPacket};
use crate::protocol::resultset::{
    column_count_packet, column_packet, columns_end_packet, rows_end_packet, text_row_packet,
};
use crate::protocol::stream::PacketError;
use crate::protocol::PacketStream;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use mysql_common::constants::{ColumnFlags, StatusFlags};
use mysql_common::packets::Column;
use mysql_common::value::Value;

/// How results are framed for this client.
#[derive(Debug, Clone, Copy)]
pub struct Framing {
    /// The client set CLIENT_DEPRECATE_EOF.
    pub deprecate_eof: bool,
    /// AUTOCOMMIT / IN_TRANS flags after the statement.
    pub status: StatusFlags,
    /// More statements of the same COM_QUERY follow.
    pub more_follows: bool,
    /// Rows go out in the binary protocol (the answer to COM_STMT_EXECUTE).
    pub binary: bool,
}

/// One row packet in the protocol the client expects.
pub fn row_packet(
    framing: Framing,
    columns: &[Column],
    values: &[Value],
) -> Result<Vec<u8>, ProxyError> {
    if framing.binary {
        binary_row_packet(columns, values)
            .map_err(|e| ProxyError::sql(1105, "HY000", e.to_string()))
    } else {
        Ok(text_row_packet(values))
    }
}

impl Framing {
    /// Status flags for the last packet of this statement's answer.
    pub fn status_with_more(&self) -> StatusFlags {
        self.status(self.more_follows)
    }

    fn status(&self, more: bool) -> StatusFlags {
        if more {
            self.status | StatusFlags::SERVER_MORE_RESULTS_EXISTS
        } else {
            self.status
        }
    }
}

/// What a forwarded statement reported.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Warnings of the last result.
    pub warnings: u16,
    /// Last insert id of the last OK result.
    pub last_insert_id: u64,
    /// Rows sent plus rows affected.
    pub rows: u64,
}

/// Why forwarding stopped.
#[derive(Debug)]
pub enum ForwardError {
    /// The client socket failed: stop serving this client.
    Client(PacketError),
    /// The statement failed on the backend: report it with an ERR packet.
    Statement(ProxyError),
}

impl From<PacketError> for ForwardError {
    fn from(e: PacketError) -> Self {
        ForwardError::Client(e)
    }
}

/// A row's values (a value the driver did not hand over reads as NULL).
fn row_values(row: mysql_async::Row) -> Vec<Value> {
    row.unwrap_raw()
        .into_iter()
        .map(|v| v.unwrap_or(Value::NULL))
        .collect()
}

/// What myshard changes in a result it forwards.
pub struct Patches<'a> {
    /// (column label, value): columns that show the shard's identity (`@@version`, …) get
    /// myshard's values instead.
    pub identity: &'a [(String, String)],
    /// (physical, logical) table names: in a column that names the table (`Table`) or
    /// creates it (`Create Table`), the physical name shows as the logical one.
    pub renames: &'a [(String, String)],
}

/// Whether a result column names or creates a table (SHOW CREATE TABLE, SHOW INDEX).
fn names_table(c: &Column) -> bool {
    let name = c.name_str();
    name.eq_ignore_ascii_case("Table") || name.eq_ignore_ascii_case("Create Table")
}

impl Patches<'_> {
    /// A value with its physical table name shown as the logical one.
    fn rename(&self, v: &mut Value) {
        let Value::Bytes(b) = v else {
            return;
        };
        for (physical, logical) in self.renames {
            if b.as_slice() == physical.as_bytes() {
                *b = logical.as_bytes().to_vec();
                return;
            }
            // `SHOW CREATE TABLE`: `CREATE TABLE `name_0` (…`.
            let quoted = format!("`{physical}`");
            if let Some(at) = b.windows(quoted.len()).position(|w| w == quoted.as_bytes()) {
                if b[..at]
                    .iter()
                    .all(|c| c.is_ascii_alphabetic() || *c == b' ')
                {
                    b.splice(at..at + quoted.len(), format!("`{logical}`").into_bytes());
                    return;
                }
            }
        }
    }
}

/// Runs `sql` on `conn` and streams every result set it produces to the client.
pub async fn forward(
    stream: &mut PacketStream,
    conn: &mut Conn,
    shard: &str,
    sql: &str,
    framing: Framing,
    patches: Patches<'_>,
) -> Result<Outcome, ForwardError> {
    let overrides = patches.identity;
    let driver = |e| ForwardError::Statement(ProxyError::from_driver(shard, e));
    let mut result = conn.query_iter(sql).await.map_err(driver)?;
    let mut outcome = Outcome::default();
    loop {
        let columns = result.columns().filter(|c| !c.is_empty());
        match columns {
            Some(columns) => {
                write_columns(stream, &columns, framing).await?;
                // Columns that show the shard's identity (`@@version`, `VERSION()`, …) get
                // myshard's values instead.
                let renamed: Vec<usize> = if patches.renames.is_empty() {
                    Vec::new()
                } else {
                    (0..columns.len())
                        .filter(|i| names_table(&columns[*i]))
                        .collect()
                };
                let identity: Vec<(usize, &str)> = columns
                    .iter()
                    .enumerate()
                    .filter_map(|(i, c)| {
                        let name = c.name_str().to_ascii_lowercase();
                        overrides
                            .iter()
                            .find(|(label, _)| *label == name)
                            .map(|(_, v)| (i, v.as_str()))
                    })
                    .collect();
                let mut pending_error = None;
                let mut encode_error = None;
                loop {
                    match result.next().await {
                        Ok(Some(row)) => {
                            let mut values = row_values(row);
                            for (i, v) in &identity {
                                if let Some(cell) = values.get_mut(*i) {
                                    *cell = Value::Bytes(v.as_bytes().to_vec());
                                }
                            }
                            for i in &renamed {
                                if let Some(v) = values.get_mut(*i) {
                                    patches.rename(v);
                                }
                            }
                            if encode_error.is_some() {
                                continue;
                            }
                            match row_packet(framing, &columns, &values) {
                                Ok(p) => stream.write_packet(&p).await?,
                                Err(e) => encode_error = Some(e),
                            }
                            outcome.rows += 1;
                        }
                        Ok(None) => break,
                        Err(e) => {
                            pending_error = Some(e);
                            break;
                        }
                    }
                }
                // `next()` already moved on to the next result set, if any.
                let more = !result.is_empty() || pending_error.is_some();
                outcome.warnings = result.warnings();
                let end = rows_end_packet(
                    framing.deprecate_eof,
                    outcome.warnings,
                    framing.status(more || framing.more_follows),
                );
                if let Some(e) = pending_error {
                    // An error after rows replaces the terminator, as MySQL sends it.
                    return Err(driver(e));
                }
                if let Some(e) = encode_error {
                    while !result.is_empty() {
                        let _ = result.next().await;
                    }
                    return Err(ForwardError::Statement(e));
                }
                stream.write_packet(&end).await?;
                if !more {
                    break;
                }
            }
            None => {
                let ok = OkPacket {
                    affected_rows: result.affected_rows(),
                    last_insert_id: result.last_insert_id().unwrap_or(0),
                    status: framing.status,
                    warnings: result.warnings(),
                    info: result.info().into_owned(),
                };
                outcome.warnings = ok.warnings;
                outcome.rows += ok.affected_rows;
                if ok.last_insert_id != 0 {
                    outcome.last_insert_id = ok.last_insert_id;
                }
                let advance = result.next().await;
                let more = !result.is_empty();
                let ok = OkPacket {
                    status: framing.status(more || framing.more_follows || advance.is_err()),
                    ..ok
                };
                stream.write_packet(&ok.encode(0x00)).await?;
                if let Err(e) = advance {
                    return Err(driver(e));
                }
                if !more {
                    break;
                }
            }
        }
    }
    Ok(outcome)
}

/// How much buffered statements may hold, counted as rows arrive (shared by the shards of
/// one statement), not after they are all held.
#[derive(Debug)]
pub struct Budget {
    bytes_left: std::sync::atomic::AtomicUsize,
    rows_left: std::sync::atomic::AtomicUsize,
    what: &'static str,
}

impl Budget {
    /// At most `bytes` and `rows` in all; `what` names the limit in the error.
    pub fn new(bytes: usize, rows: usize, what: &'static str) -> Self {
        Budget {
            bytes_left: bytes.into(),
            rows_left: rows.into(),
            what,
        }
    }

    /// No limit.
    pub fn unlimited() -> Self {
        Budget::new(usize::MAX, usize::MAX, "")
    }

    /// Takes one row of `bytes`; false once the budget is spent.
    fn take(&self, bytes: usize) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let ok = |left: &std::sync::atomic::AtomicUsize, n: usize| {
            left.fetch_update(Relaxed, Relaxed, |l| l.checked_sub(n))
                .is_ok()
        };
        ok(&self.rows_left, 1) && ok(&self.bytes_left, bytes)
    }
}

fn row_bytes(row: &[Value]) -> usize {
    row.iter()
        .map(|v| match v {
            Value::Bytes(b) => b.len() + 8,
            _ => 16,
        })
        .sum()
}

/// Runs `sql` and collects its first result set (for results myshard adjusts).
pub async fn collect(
    conn: &mut Conn,
    shard: &str,
    sql: &str,
) -> Result<(Vec<Column>, Vec<Vec<Value>>), ProxyError> {
    collect_within(conn, shard, sql, &Budget::unlimited()).await
}

/// [`collect`] within a budget. Past it the rest of the result is read and dropped (the
/// connection stays usable) and the statement fails with ERR 1038.
pub async fn collect_within(
    conn: &mut Conn,
    shard: &str,
    sql: &str,
    budget: &Budget,
) -> Result<(Vec<Column>, Vec<Vec<Value>>), ProxyError> {
    let mut result = conn
        .query_iter(sql)
        .await
        .map_err(|e| ProxyError::from_driver(shard, e))?;
    let columns = result.columns().map(|c| c.to_vec()).unwrap_or_default();
    let mut rows = Vec::new();
    let mut spent = false;
    while let Some(row) = result
        .next()
        .await
        .map_err(|e| ProxyError::from_driver(shard, e))?
    {
        if spent {
            continue;
        }
        let values = row_values(row);
        if budget.take(row_bytes(&values)) {
            rows.push(values);
        } else {
            spent = true;
            rows = Vec::new();
        }
    }
    if spent {
        while !result.is_empty() {
            result
                .next()
                .await
                .map_err(|e| ProxyError::from_driver(shard, e))?;
        }
        return Err(ProxyError::sql(
            1038,
            "HY001",
            format!("Out of memory: the rows this statement buffers passed {} while arriving from the shards; myshard stopped holding them", budget.what),
        ));
    }
    // Drain any further result sets so the connection is clean.
    while !result.is_empty() {
        result
            .next()
            .await
            .map_err(|e| ProxyError::from_driver(shard, e))?;
    }
    Ok((columns, rows))
}

/// Runs `sql`, discarding results.
pub async fn run(conn: &mut Conn, shard: &str, sql: &str) -> Result<(), ProxyError> {
    conn.query_drop(sql)
        .await
        .map_err(|e| ProxyError::from_driver(shard, e))
}

async fn write_columns(
    stream: &mut PacketStream,
    columns: &[Column],
    framing: Framing,
) -> Result<(), PacketError> {
    stream
        .write_packet(&column_count_packet(columns.len()))
        .await?;
    for c in columns {
        stream.write_packet(&column_packet(c)).await?;
    }
    if let Some(eof) = columns_end_packet(framing.deprecate_eof, framing.status) {
        stream.write_packet(&eof).await?;
    }
    Ok(())
}

/// Writes a complete result set that myshard built or adjusted.
pub async fn write_result(
    stream: &mut PacketStream,
    columns: &[Column],
    rows: &[Vec<Value>],
    framing: Framing,
) -> Result<(), PacketError> {
    write_result_warning(stream, columns, rows, framing, 0).await
}

/// [`write_result`] announcing `warnings` in the terminator.
pub async fn write_result_warning(
    stream: &mut PacketStream,
    columns: &[Column],
    rows: &[Vec<Value>],
    framing: Framing,
    warnings: u16,
) -> Result<(), PacketError> {
    write_columns(stream, columns, framing).await?;
    for row in rows {
        match row_packet(framing, columns, row) {
            Ok(p) => stream.write_packet(&p).await?,
            Err(e) => {
                // Replaces the terminator, as an error after rows does.
                return write_error(stream, &e).await;
            }
        }
    }
    stream
        .write_packet(&rows_end_packet(
            framing.deprecate_eof,
            warnings,
            framing.status(framing.more_follows),
        ))
        .await
}

/// Writes an OK packet.
pub async fn write_ok(
    stream: &mut PacketStream,
    framing: Framing,
    affected_rows: u64,
) -> Result<(), PacketError> {
    let ok = OkPacket {
        affected_rows,
        status: framing.status(framing.more_follows),
        ..OkPacket::default()
    };
    stream.write_packet(&ok.encode(0x00)).await
}

/// Writes an ERR packet for an error.
pub async fn write_error(stream: &mut PacketStream, e: &ProxyError) -> Result<(), PacketError> {
    let (code, state, message) = e.to_err();
    stream
        .write_packet(&err_packet(code, &state, &message))
        .await
}

/// What an OK packet said.
#[derive(Debug, Clone, Default)]
pub struct OkInfo {
    /// Affected rows.
    pub affected_rows: u64,
    /// Last insert id.
    pub last_insert_id: u64,
    /// Warnings.
    pub warnings: u16,
    /// Info text.
    pub info: String,
}

/// Runs `sql`, discards any rows, and returns what its OK packet said.
pub async fn run_for_ok(conn: &mut Conn, shard: &str, sql: &str) -> Result<OkInfo, ProxyError> {
    let driver = |e| ProxyError::from_driver(shard, e);
    let mut result = conn.query_iter(sql).await.map_err(driver)?;
    let mut ok = OkInfo {
        affected_rows: result.affected_rows(),
        last_insert_id: result.last_insert_id().unwrap_or(0),
        warnings: result.warnings(),
        info: result.info().into_owned(),
    };
    while !result.is_empty() {
        result.next().await.map_err(driver)?;
        ok.warnings = ok.warnings.max(result.warnings());
    }
    Ok(ok)
}

/// Progress of a concatenation of several targets' rows.
pub struct ConcatState {
    /// The column definitions sent to the client (the first target's); every target's rows
    /// are encoded under them.
    columns: Option<Vec<Column>>,
    window: myshard_merger::OffsetLimit,
    warnings: u16,
    /// Rows sent so far.
    pub sent: u64,
    /// The targets are a UNION's branches (see [`crate::merge::union_column`]).
    pub union: bool,
}

impl ConcatState {
    /// A concatenation that skips `offset` rows and returns at most `limit`.
    pub fn new(offset: u64, limit: Option<u64>) -> Self {
        ConcatState {
            columns: None,
            window: myshard_merger::OffsetLimit::new(offset, limit),
            warnings: 0,
            sent: 0,
            union: false,
        }
    }
}

/// Streams one target's rows of a concatenation (the column definitions come from the first).
pub async fn concat_part(
    stream: &mut PacketStream,
    conn: &mut Conn,
    shard: &str,
    sql: &str,
    state: &mut ConcatState,
    framing: Framing,
) -> Result<(), ForwardError> {
    let result = conn
        .query_iter(sql)
        .await
        .map_err(|e| ForwardError::Statement(ProxyError::from_driver(shard, e)))?;
    concat_result(stream, result, shard, state, framing).await
}

/// Streams one started target's rows of a concatenation.
async fn concat_result(
    stream: &mut PacketStream,
    mut result: mysql_async::QueryResult<'_, 'static, mysql_async::TextProtocol>,
    shard: &str,
    state: &mut ConcatState,
    framing: Framing,
) -> Result<(), ForwardError> {
    let driver = |e| ForwardError::Statement(ProxyError::from_driver(shard, e));
    let columns = result.columns().unwrap_or_else(|| Vec::new().into());
    let mut encode_error = None;
    let announced = match &state.columns {
        None => {
            if state.union {
                // Later branches are not known yet: no column is announced NOT NULL.
                let announced: Vec<Column> = columns
                    .iter()
                    .map(|c| crate::merge::union_column(c, false))
                    .collect();
                write_columns(stream, &announced, framing).await?;
            } else {
                write_columns(stream, &columns, framing).await?;
            }
            state.columns.insert(columns.to_vec())
        }
        Some(first) => {
            crate::merge::check_same_shape(first, &columns, shard)
                .map_err(ForwardError::Statement)?;
            first
        }
    };
    while let Some(row) = result.next().await.map_err(driver)? {
        if encode_error.is_none() && state.window.admit() {
            match row_packet(framing, announced, &row_values(row)) {
                Ok(p) => {
                    stream.write_packet(&p).await?;
                    state.sent += 1;
                }
                Err(e) => encode_error = Some(e),
            }
        }
    }
    state.warnings = state.warnings.saturating_add(result.warnings());
    while !result.is_empty() {
        result.next().await.map_err(driver)?;
    }
    match encode_error {
        Some(e) => Err(ForwardError::Statement(e)),
        None => Ok(()),
    }
}

/// A concatenation whose targets (each on its own connection) all start at once; their rows
/// are then sent target after target.
pub async fn concat_streams(
    stream: &mut PacketStream,
    conns: Vec<&mut Conn>,
    queries: &[myshard_sql_rewrite::ShardQuery],
    state: &mut ConcatState,
    framing: Framing,
) -> Result<(), ForwardError> {
    let results = start_all(conns, queries).await?;
    // Every target's columns are known before anything is sent: a mismatch is refused while
    // the statement can still be answered another way.
    let first = results.first().and_then(|r| r.columns());
    let first: &[Column] = match (&state.columns, &first) {
        (Some(c), _) => c,
        (None, Some(c)) => c,
        (None, None) => &[],
    };
    for (r, q) in results.iter().zip(queries) {
        let theirs = r.columns().unwrap_or_else(|| Vec::new().into());
        if let Err(e) = crate::merge::check_same_shape(first, &theirs, &q.shard) {
            return abandon(results, ForwardError::Statement(e)).await;
        }
    }
    let mut rest = results.into_iter().zip(queries);
    while let Some((result, query)) = rest.next() {
        if let Err(e) = concat_result(stream, result, &query.shard, state, framing).await {
            return abandon(rest.map(|(r, _)| r).collect(), e).await;
        }
    }
    Ok(())
}

/// Sends every target its statement at once, so the shards work in parallel, and waits for
/// each one's result header; if one fails, the others are read off and its error returned.
async fn start_all<'c>(
    conns: Vec<&'c mut Conn>,
    queries: &'c [myshard_sql_rewrite::ShardQuery],
) -> Result<Vec<mysql_async::QueryResult<'c, 'static, mysql_async::TextProtocol>>, ForwardError> {
    let started = futures_util::future::join_all(
        conns
            .into_iter()
            .zip(queries)
            .map(|(c, q)| async move { c.query_iter(q.sql.as_str()).await }),
    )
    .await;
    let mut results = Vec::with_capacity(started.len());
    let mut first_error = None;
    for (r, q) in started.into_iter().zip(queries) {
        match r {
            Ok(r) => results.push(r),
            Err(e) => {
                first_error.get_or_insert_with(|| {
                    ForwardError::Statement(ProxyError::from_driver(&q.shard, e))
                });
            }
        }
    }
    match first_error {
        Some(e) => abandon(results, e).await,
        None => Ok(results),
    }
}

/// Ends a concatenation.
pub async fn concat_end(
    stream: &mut PacketStream,
    state: &ConcatState,
    framing: Framing,
) -> Result<(), PacketError> {
    if state.columns.is_none() {
        return write_ok(stream, framing, 0).await;
    }
    stream
        .write_packet(&rows_end_packet(
            framing.deprecate_eof,
            state.warnings,
            framing.status(framing.more_follows),
        ))
        .await
}

/// Reads off started results before failing with `e`, so their connections stay usable.
async fn abandon<T>(
    results: Vec<mysql_async::QueryResult<'_, 'static, mysql_async::TextProtocol>>,
    e: ForwardError,
) -> Result<T, ForwardError> {
    for r in results {
        let _ = r.drop_result().await;
    }
    Err(e)
}

/// A sorted or grouped read over several targets, streamed: every target runs its (sorted)
/// statement at once, and a k-way merge of their row streams sends rows to the client as
/// they win — for grouped reads, each group as soon as the next begins — holding one row per
/// target and stopping after OFFSET + LIMIT rows. Returns the rows sent; an error names the
/// failing target's shard.
pub async fn merge_sorted_streams(
    stream: &mut PacketStream,
    conns: Vec<&mut Conn>,
    queries: &[myshard_sql_rewrite::ShardQuery],
    spec: &myshard_merger::SelectMerge,
    framing: Framing,
    memory_limit: usize,
) -> Result<u64, ForwardError> {
    use futures_util::future::join_all;
    let driver = |shard: &str, e| ForwardError::Statement(ProxyError::from_driver(shard, e));
    let mut results = start_all(conns, queries).await?;
    let columns: Vec<Column> = match results.first().and_then(|r| r.columns()) {
        Some(c) => c.to_vec(),
        None => Vec::new(),
    };
    for (r, q) in results.iter().zip(queries).skip(1) {
        let theirs = r.columns().unwrap_or_else(|| Vec::new().into());
        if let Err(e) = crate::merge::check_same_shape(&columns, &theirs, &q.shard) {
            return abandon(results, ForwardError::Statement(e)).await;
        }
    }
    let resolved = myshard_sql_rewrite::merge::resolve(
        spec,
        columns.len(),
        myshard_sql_rewrite::merge::hidden_count(spec),
    );
    if let Err(e) = crate::merge::check_sortable(&resolved, &columns) {
        return abandon(results, ForwardError::Statement(e)).await;
    }
    let kinds: Vec<myshard_merger::Kind> = columns.iter().map(crate::merge::kind_of).collect();
    let order = resolved.stream_order().unwrap_or_default();
    if order.iter().any(|k| {
        columns.get(k.col).is_some_and(|c| {
            c.flags()
                .intersects(ColumnFlags::ENUM_FLAG | ColumnFlags::SET_FLAG)
        })
    }) {
        // The shards sorted ENUM/SET group keys by definition position, which the merge cannot
        // compare: collect the groups and merge them by value instead.
        let mut per_shard = Vec::with_capacity(results.len());
        for (r, q) in results.iter_mut().zip(queries) {
            let mut rows = Vec::new();
            while let Some(row) = r.next().await.map_err(|e| driver(&q.shard, e))? {
                rows.push(crate::merge::cells(row_values(row)));
            }
            per_shard.push(rows);
        }
        for (r, q) in results.into_iter().zip(queries) {
            r.drop_result().await.map_err(|e| driver(&q.shard, e))?;
        }
        let (cols, rows, _) = crate::merge::merge_select(spec, &columns, per_shard, memory_limit)
            .map_err(ForwardError::Statement)?;
        write_result(stream, &cols, &rows, framing).await?;
        return Ok(rows.len() as u64);
    }
    let out_columns = crate::merge::client_columns(&resolved, &columns, &kinds);
    let Some(mut merge) = myshard_merger::kway::StreamMerge::new(&resolved, &kinds) else {
        return abandon(
            results,
            ForwardError::Statement(ProxyError::unmergeable(
                "this read cannot be merged as streams",
            )),
        )
        .await;
    };
    write_columns(stream, &out_columns, framing).await?;
    let firsts = join_all(results.iter_mut().map(|r| r.next())).await;
    for (i, (row, q)) in firsts.into_iter().zip(queries).enumerate() {
        match row {
            Ok(Some(row)) => merge.push(i, crate::merge::cells(row_values(row))),
            Ok(None) => {}
            Err(e) => return Err(driver(&q.shard, e)),
        }
    }
    let mut sent = 0u64;
    loop {
        let done = match merge.pop() {
            Some((i, row)) => {
                if let (Some(r), Some(q)) = (results.get_mut(i), queries.get(i)) {
                    match r.next().await {
                        Ok(Some(next)) => merge.push(i, crate::merge::cells(row_values(next))),
                        Ok(None) => {}
                        Err(e) => return Err(driver(&q.shard, e)),
                    }
                }
                merge
                    .take(row)
                    .map_err(|e| ForwardError::Statement(ProxyError::unmergeable(e.to_string())))?
            }
            None => match merge.finish() {
                Some(last) => Some(last),
                None => break,
            },
        };
        let Some(row) = done else { continue };
        let values: Vec<Value> = row
            .into_iter()
            .map(|c| c.map_or(Value::NULL, Value::Bytes))
            .collect();
        let packet = row_packet(framing, &out_columns, &values).map_err(ForwardError::Statement)?;
        stream.write_packet(&packet).await?;
        sent += 1;
    }
    // The rest (at most OFFSET + LIMIT rows per target) is read off so the connections are
    // clean for their next statement.
    let mut warnings = 0u16;
    for (r, q) in results.into_iter().zip(queries) {
        warnings = warnings.saturating_add(r.warnings());
        r.drop_result().await.map_err(|e| driver(&q.shard, e))?;
    }
    stream
        .write_packet(&rows_end_packet(
            framing.deprecate_eof,
            warnings,
            framing.status(framing.more_follows),
        ))
        .await?;
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_spent_row_by_row_across_shards() {
        let b = Budget::new(100, 3, "test");
        assert!(b.take(40));
        assert!(b.take(40));
        // Bytes run out before rows.
        assert!(!b.take(40));
        let rows = Budget::new(usize::MAX, 2, "test");
        assert!(rows.take(1) && rows.take(1));
        assert!(!rows.take(1));
        assert_eq!(
            row_bytes(&[Value::Bytes(vec![0; 10]), Value::NULL]),
            18 + 16
        );
    }
}
