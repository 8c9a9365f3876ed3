//! Transactions over several shards: XA transaction ids, the durable decision log, and the
//! recovery of in-doubt branches.
//!
//! A transaction that wrote on two or more shards commits in two phases: every written branch
//! is `XA PREPARE`d, the commit decision is appended to the decision log and synced to disk,
//! and only then is each branch `XA COMMIT`ted. A crash before the decision leaves prepared
//! branches that recovery rolls back; a crash after it leaves branches that recovery commits.
//!
//! Transaction ids are `myshard-<owner>-<boot>-<seq>`: `owner` names this myshard instance —
//! the configured `server.worker_id`, or else a hash of the host name and the decision log's
//! path, so that instances sharing the shards never resolve each other's branches while a
//! restarted instance recognises its own — and `boot` is the start time of this process in
//! milliseconds. A branch of an earlier boot of the same owner is in doubt
//! for certain (its process is gone); a branch of this boot is resolved only when its
//! decision is logged, so an in-flight commit is never disturbed.

use crate::backend::SessionState;
use crate::error::ProxyError;
use crate::server::Shared;
use myshard_router::text::quote_portable;
use mysql_common::value::Value;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Names this process's XA transactions.
#[derive(Debug)]
pub struct XidSource {
    owner: String,
    boot: u64,
    seq: AtomicU64,
}

impl XidSource {
    /// Ids for this process of the instance that keeps its decisions in `log`.
    pub fn new(worker_id: Option<u16>, log: &Path) -> Self {
        let boot = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        XidSource {
            owner: worker_id.map_or_else(|| instance_hash(log), |w| w.to_string()),
            boot,
            seq: AtomicU64::new(0),
        }
    }

    /// A fresh global transaction id.
    pub fn next(&self) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        format!("myshard-{}-{}-{n}", self.owner, self.boot)
    }

    /// Whether `gtrid` is one of this owner's, and of this boot.
    fn classify(&self, gtrid: &str) -> Option<bool> {
        let rest = gtrid.strip_prefix("myshard-")?.strip_prefix(&self.owner)?;
        let rest = rest.strip_prefix('-')?;
        let (boot, _) = rest.split_once('-')?;
        Some(boot == self.boot.to_string())
    }
}

/// `h` and a hash of the host name and the decision log's absolute path.
fn instance_hash(log: &Path) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let path = std::fs::canonicalize(log).unwrap_or_else(|_| log.to_path_buf());
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in host
        .trim()
        .bytes()
        .chain([0])
        .chain(path.to_string_lossy().bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("h{:08x}", h as u32 ^ (h >> 32) as u32)
}

/// `'gtrid','bqual'` for XA statements.
pub fn xid_sql(gtrid: &str, shard: &str) -> String {
    format!(
        "{},{}",
        quote_portable(gtrid.as_bytes(), "_utf8mb4"),
        quote_portable(shard.as_bytes(), "_utf8mb4")
    )
}

/// The durable record of commit decisions.
#[derive(Debug)]
pub struct DecisionLog {
    path: PathBuf,
    inner: Mutex<LogInner>,
}

#[derive(Debug)]
struct LogInner {
    file: std::fs::File,
    /// Decided to commit, not yet committed on every shard.
    pending: HashSet<String>,
    /// Bytes written since the file was last compacted.
    written: u64,
}

fn read_pending(path: &Path) -> std::io::Result<HashSet<String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let mut pending = HashSet::new();
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("C", id)) => {
                pending.insert(id.to_string());
            }
            Some(("D", id)) => {
                pending.remove(id);
            }
            // A torn last line (crash mid-write) was never synced as a decision.
            _ => {}
        }
    }
    Ok(pending)
}

fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

impl DecisionLog {
    /// Opens (or creates) the log and reads the decisions still pending in it.
    pub fn open(path: &Path) -> std::io::Result<DecisionLog> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let pending = read_pending(path)?;
        let file = open_append(path)?;
        Ok(DecisionLog {
            path: path.to_path_buf(),
            inner: Mutex::new(LogInner {
                file,
                pending,
                written: 0,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the decision to commit `gtrid`, durably, before any branch commits.
    pub fn decide_commit(&self, gtrid: &str) -> std::io::Result<()> {
        let mut inner = self.lock();
        let line = format!("C {gtrid}\n");
        inner.file.write_all(line.as_bytes())?;
        inner.file.sync_data()?;
        inner.written += line.len() as u64;
        inner.pending.insert(gtrid.to_string());
        Ok(())
    }

    /// Records that every branch of `gtrid` committed.
    pub fn done(&self, gtrid: &str) {
        let mut inner = self.lock();
        if inner.pending.remove(gtrid) {
            let line = format!("D {gtrid}\n");
            if inner.file.write_all(line.as_bytes()).is_ok() {
                inner.written += line.len() as u64;
            }
        }
    }

    /// Whether `gtrid` was decided to commit and is not finished yet.
    pub fn is_pending(&self, gtrid: &str) -> bool {
        self.lock().pending.contains(gtrid)
    }

    /// Rewrites the file with only the pending decisions once it has grown.
    pub fn compact_if_large(&self) -> std::io::Result<()> {
        let mut inner = self.lock();
        if inner.written < (1 << 20) {
            return Ok(());
        }
        let tmp = self.path.with_extension("compact");
        {
            let mut f = std::fs::File::create(&tmp)?;
            for id in &inner.pending {
                writeln!(f, "C {id}")?;
            }
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        inner.file = open_append(&self.path)?;
        inner.written = 0;
        Ok(())
    }
}

/// Both parts of the XA machinery a server holds.
#[derive(Debug)]
pub struct Xa {
    /// Transaction ids.
    pub ids: XidSource,
    /// Decision log.
    pub log: DecisionLog,
}

/// Resolves in-doubt branches on every shard's primary. `startup` is true for the pass
/// before clients are served. Returns how many branches were committed and rolled back.
pub async fn recover(shared: &Arc<Shared>, startup: bool) -> (usize, usize) {
    let Some(xa) = shared.xa.as_ref() else {
        return (0, 0);
    };
    let backends = shared.backends();
    let mut committed = 0;
    let mut rolled_back = 0;
    // Every id with a branch on some shard in this pass, resolved or not.
    let mut seen: HashSet<String> = HashSet::new();
    let mut all_reachable = true;
    for (shard, server) in backends.servers() {
        if server.replica {
            continue;
        }
        let branches = match recover_shard(xa, shard, server, startup).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(shard, "XA recovery could not reach the primary: {e}");
                all_reachable = false;
                continue;
            }
        };
        committed += branches.0;
        rolled_back += branches.1;
        seen.extend(branches.2);
    }
    // A decision is logged only once all its branches are prepared, so a pending decision
    // with no branch on any shard has committed everywhere. Only a pass that sees none
    // finishes it: a branch committed in this pass is confirmed gone by the next one.
    if all_reachable {
        let pending: Vec<String> = xa.log.lock().pending.iter().cloned().collect();
        for id in pending.iter().filter(|id| !seen.contains(*id)) {
            xa.log.done(id);
        }
    }
    if let Err(e) = xa.log.compact_if_large() {
        tracing::warn!("cannot compact the XA decision log: {e}");
    }
    if committed + rolled_back > 0 {
        tracing::info!(committed, rolled_back, "resolved in-doubt XA branches");
    }
    (committed, rolled_back)
}

type ShardRecovery = (usize, usize, Vec<String>);

async fn recover_shard(
    xa: &Xa,
    shard: &str,
    server: &crate::backend::pool::Server,
    startup: bool,
) -> Result<ShardRecovery, ProxyError> {
    let mut conn = server
        .pool(false)
        .checkout(None, &SessionState::default())
        .await?;
    let c = conn.conn()?;
    let (_, rows) = crate::executor::collect(c, shard, "XA RECOVER").await?;
    let mut committed = 0;
    let mut rolled_back = 0;
    let mut seen = Vec::new();
    for row in rows {
        let Some((gtrid, bqual)) = xid_of(&row) else {
            continue;
        };
        let Some(this_boot) = xa.ids.classify(&gtrid) else {
            continue;
        };
        seen.push(gtrid.clone());
        let decided = xa.log.is_pending(&gtrid);
        let verb = if decided {
            "COMMIT"
        } else if !this_boot || startup {
            "ROLLBACK"
        } else {
            // A commit of this process in flight.
            continue;
        };
        let sql = format!("XA {verb} {}", xid_sql(&gtrid, &bqual));
        match crate::executor::run(c, shard, &sql).await {
            Ok(()) if decided => committed += 1,
            Ok(()) => rolled_back += 1,
            Err(e) => tracing::warn!(shard, gtrid, "XA {verb} failed during recovery: {e}"),
        }
    }
    crate::backend::BackendPool::release(conn);
    Ok((committed, rolled_back, seen))
}

/// `(gtrid, bqual)` of an `XA RECOVER` row (formatID, gtrid_length, bqual_length, data).
fn xid_of(row: &[Value]) -> Option<(String, String)> {
    let num = |v: &Value| -> Option<usize> {
        match v {
            Value::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok(),
            Value::Int(i) => usize::try_from(*i).ok(),
            Value::UInt(u) => usize::try_from(*u).ok(),
            _ => None,
        }
    };
    let glen = num(row.get(1)?)?;
    let blen = num(row.get(2)?)?;
    let Value::Bytes(data) = row.get(3)? else {
        return None;
    };
    let gtrid = String::from_utf8(data.get(..glen)?.to_vec()).ok()?;
    let bqual = String::from_utf8(data.get(glen..glen + blen)?.to_vec()).ok()?;
    Some((gtrid, bqual))
}

/// Runs recovery every `interval` until shutdown.
pub fn spawn_recovery_loop(shared: Arc<Shared>, interval: std::time::Duration) {
    let mut shutdown = shared.shutdown.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => return,
            }
            recover(&shared, false).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_their_owner_and_boot() {
        let a = XidSource::new(Some(7), Path::new("/tmp/x.log"));
        let b = XidSource::new(None, Path::new("/tmp/x.log"));
        let c = XidSource::new(None, Path::new("/tmp/y.log"));
        assert_ne!(
            b.owner, c.owner,
            "instances with their own logs own their own ids"
        );
        assert_eq!(b.owner, XidSource::new(None, Path::new("/tmp/x.log")).owner);
        let id = a.next();
        assert!(id.starts_with("myshard-7-"));
        assert_eq!(a.classify(&id), Some(true));
        let earlier = format!("myshard-7-{}-3", a.boot - 1);
        assert_eq!(a.classify(&earlier), Some(false));
        assert_eq!(a.classify("myshard-8-1-1"), None);
        assert_eq!(a.classify("other"), None);
    }

    #[test]
    fn log_keeps_decisions_until_done_and_survives_reopen() {
        let dir = std::env::temp_dir().join(format!("myshard-xa-test-{}", std::process::id()));
        let path = dir.join("xa.log");
        let _ = std::fs::remove_file(&path);
        let log = DecisionLog::open(&path).expect("opens");
        log.decide_commit("g1").expect("logged");
        log.decide_commit("g2").expect("logged");
        log.done("g1");
        drop(log);
        // A torn line from a crash mid-write is ignored.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"C g3"))
            .expect("append");
        let again = DecisionLog::open(&path).expect("reopens");
        assert!(again.is_pending("g2"));
        assert!(!again.is_pending("g1"));
        assert!(
            again.is_pending("g3"),
            "a complete record without newline still counts"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn recover_rows_split_gtrid_and_bqual() {
        let row = vec![
            Value::Bytes(b"1".to_vec()),
            Value::Bytes(b"3".to_vec()),
            Value::Bytes(b"2".to_vec()),
            Value::Bytes(b"abcs1".to_vec()),
        ];
        assert_eq!(xid_of(&row), Some(("abc".into(), "s1".into())));
        assert_eq!(xid_of(&row[..2]), None);
    }
}
