//! Globally unique ids for auto-increment columns of sharded tables, Snowflake style:
//! `41 bits of milliseconds since 2026-01-01 | 10 bits of worker id | 12 bits of sequence`.
//! Ids are unique across proxy instances with different worker ids and strictly increasing
//! per instance (a clock that steps back keeps counting from the last id).

use myshard_router::IdSource;
use std::sync::atomic::{AtomicU64, Ordering};

/// 2026-01-01T00:00:00Z in milliseconds since the Unix epoch.
const EPOCH_MS: u64 = 1_767_225_600_000;

/// The generator; one per proxy instance, shared by every session without a lock (the last
/// id handed out is one atomic word, advanced by compare-and-swap).
#[derive(Debug)]
pub struct IdGenerator {
    worker: u64,
    last: AtomicU64,
}

impl IdGenerator {
    /// A generator for this worker id (0–1023).
    pub fn new(worker: u16) -> Self {
        IdGenerator {
            worker: (worker & 0x3FF) as u64,
            last: AtomicU64::new(0),
        }
    }

    fn now_ms() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
            .saturating_sub(EPOCH_MS)
    }

    /// The next id.
    pub fn next(&self) -> i64 {
        let now = Self::now_ms();
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let id = self.after(last, now);
            match self
                .last
                .compare_exchange_weak(last, id, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return id as i64,
                Err(seen) => last = seen,
            }
        }
    }

    /// The id that follows `last` at `now_ms`.
    fn after(&self, last: u64, now_ms: u64) -> u64 {
        let candidate = (now_ms << 22) | (self.worker << 12);
        // Same millisecond (or a clock step back): take the next sequence number; when the
        // 12-bit sequence overflows this borrows from the next millisecond.
        if candidate > last {
            candidate
        } else {
            let next = last + 1;
            if (next >> 12) & 0x3FF == self.worker {
                next
            } else {
                // Skipped into another worker's bits: move to the next millisecond.
                (((last >> 22) + 1) << 22) | (self.worker << 12)
            }
        }
    }
}

impl IdSource for &IdGenerator {
    fn next_id(&mut self) -> i64 {
        self.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_carry_the_worker() {
        let g = IdGenerator::new(5);
        let mut prev = 0;
        for _ in 0..10_000 {
            let id = g.next();
            assert!(id > prev);
            assert_eq!((id >> 12) & 0x3FF, 5);
            prev = id;
        }
    }

    #[test]
    fn workers_never_collide() {
        let a = IdGenerator::new(1);
        let b = IdGenerator::new(2);
        let xs: std::collections::HashSet<i64> = (0..5000).map(|_| a.next()).collect();
        assert!((0..5000).all(|_| !xs.contains(&b.next())));
    }

    #[test]
    fn threads_sharing_one_generator_never_get_the_same_id() {
        let g = std::sync::Arc::new(IdGenerator::new(7));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let g = g.clone();
                std::thread::spawn(move || (0..20_000).map(|_| g.next()).collect::<Vec<_>>())
            })
            .collect();
        let mut all = std::collections::HashSet::new();
        for h in handles {
            for id in h.join().expect("thread") {
                assert!(all.insert(id), "duplicate id {id}");
            }
        }
        assert_eq!(all.len(), 80_000);
    }
}
