//! myshard's own client sessions: what `SHOW PROCESSLIST` lists and `KILL` acts on, as a
//! MySQL server does for its threads. A client never sees or stops a backend connection.
//!
//! Registering happens once per connection (one short lock on the registry); each statement
//! only touches its own session's entry.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::watch;

/// The most of a statement's text SHOW FULL PROCESSLIST shows.
pub const INFO_MAX: usize = 64 * 1024;

/// What a `KILL` asked of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kill {
    /// Nothing.
    #[default]
    None,
    /// `KILL QUERY`: stop the running statement.
    Query,
    /// `KILL [CONNECTION]`: stop the statement and close the connection.
    Connection,
}

/// What a session is doing now.
#[derive(Debug, Clone)]
struct Activity {
    db: Option<String>,
    /// The running statement, if any.
    info: Option<String>,
    since: Instant,
}

/// One client session as others see it.
#[derive(Debug)]
pub struct Entry {
    /// The connection id of the handshake (`CONNECTION_ID()`).
    pub id: u32,
    /// The user it logged in as.
    pub user: String,
    /// The client's address.
    pub host: String,
    /// An admin-port session.
    pub admin: bool,
    now: Mutex<Activity>,
    kill: watch::Sender<Kill>,
}

impl Entry {
    /// A statement begins.
    pub fn begin(&self, db: Option<&str>, statement: &str) {
        if let Ok(mut a) = self.now.lock() {
            if a.db.as_deref() != db {
                a.db = db.map(str::to_string);
            }
            // A multi-megabyte INSERT is not copied whole per statement for the processlist.
            let mut end = statement.len().min(INFO_MAX);
            while !statement.is_char_boundary(end) {
                end -= 1;
            }
            a.info = Some(statement[..end].to_string());
            a.since = Instant::now();
        }
        // A KILL QUERY that arrived between statements has nothing left to stop.
        self.kill.send_if_modified(|k| {
            let stale = *k == Kill::Query;
            if stale {
                *k = Kill::None;
            }
            stale
        });
    }

    /// The statement ended; the session waits for the next.
    pub fn end(&self) {
        if let Ok(mut a) = self.now.lock() {
            a.info = None;
            a.since = Instant::now();
        }
    }

    /// Asks the session to stop.
    pub fn kill(&self, k: Kill) {
        self.kill.send_if_modified(|cur| {
            let stronger = k == Kill::Connection || *cur == Kill::None;
            if stronger {
                *cur = k;
            }
            stronger
        });
    }

    /// Whether the session was asked to close.
    pub fn closing(&self) -> bool {
        *self.kill.borrow() == Kill::Connection
    }

    /// Kill requests, as they come.
    pub fn kills(&self) -> watch::Receiver<Kill> {
        self.kill.subscribe()
    }

    /// (db, command, seconds in it, statement) for SHOW PROCESSLIST.
    pub fn activity(&self) -> (Option<String>, &'static str, u64, Option<String>) {
        match self.now.lock() {
            Ok(a) => (
                a.db.clone(),
                if a.info.is_some() { "Query" } else { "Sleep" },
                a.since.elapsed().as_secs(),
                a.info.clone(),
            ),
            Err(_) => (None, "Sleep", 0, None),
        }
    }
}

/// Every session being served.
#[derive(Debug, Default)]
pub struct Registry {
    entries: Mutex<BTreeMap<u32, Arc<Entry>>>,
}

/// Keeps a session listed while it lives.
pub struct Registered {
    registry: Arc<Registry>,
    /// The session's entry.
    pub entry: Arc<Entry>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut m) = self.registry.entries.lock() {
            m.remove(&self.entry.id);
        }
    }
}

impl Registry {
    /// Lists a new session until the returned guard is dropped.
    pub fn register(self: &Arc<Self>, id: u32, user: &str, host: &str, admin: bool) -> Registered {
        let (kill, _) = watch::channel(Kill::None);
        let entry = Arc::new(Entry {
            id,
            user: user.to_string(),
            host: host.to_string(),
            admin,
            now: Mutex::new(Activity {
                db: None,
                info: None,
                since: Instant::now(),
            }),
            kill,
        });
        if let Ok(mut m) = self.entries.lock() {
            m.insert(id, entry.clone());
        }
        Registered {
            registry: self.clone(),
            entry,
        }
    }

    /// The session with this id.
    pub fn get(&self, id: u64) -> Option<Arc<Entry>> {
        let id = u32::try_from(id).ok()?;
        self.entries.lock().ok()?.get(&id).cloned()
    }

    /// Every session, by id.
    pub fn all(&self) -> Vec<Arc<Entry>> {
        self.entries
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kills_are_seen_and_stale_query_kills_dropped() {
        let r = Arc::new(Registry::default());
        let a = r.register(7, "app", "127.0.0.1:1", false);
        assert_eq!(r.all().len(), 1);
        let rx = a.entry.kills();
        a.entry.kill(Kill::Query);
        assert_eq!(*rx.borrow(), Kill::Query);
        a.entry.begin(Some("shop"), "SELECT 1");
        assert_eq!(*rx.borrow(), Kill::None);
        assert_eq!(a.entry.activity().1, "Query");
        a.entry.kill(Kill::Connection);
        a.entry.kill(Kill::Query);
        assert!(a.entry.closing());
        drop(a);
        assert!(r.get(7).is_none());
    }
}
