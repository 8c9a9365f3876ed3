//! Globally unique ids for auto-increment columns of sharded tables, Snowflake style:
//! `41 bits of milliseconds since 2026-01-01 | 10 bits of worker id | 12 bits of sequence`.
//! Ids are unique across proxy instances with different worker ids and strictly increasing
//! per instance (a clock that steps back keeps counting from the last id).

use myshard_router::IdSource;

/// 2026-01-01T00:00:00Z in milliseconds since the Unix epoch.
const EPOCH_MS: u64 = 1_767_225_600_000;

/// The generator; one per proxy instance.
#[derive(Debug)]
pub struct IdGenerator {
    worker: u64,
    last: u64,
}

impl IdGenerator {
    /// A generator for this worker id (0–1023).
    pub fn new(worker: u16) -> Self {
        IdGenerator {
            worker: (worker & 0x3FF) as u64,
            last: 0,
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
    pub fn next(&mut self) -> i64 {
        let candidate = (Self::now_ms() << 22) | (self.worker << 12);
        // Same millisecond (or a clock step back): take the next sequence number; when the
        // 12-bit sequence overflows this borrows from the next millisecond.
        let id = if candidate > self.last {
            candidate
        } else {
            let next = self.last + 1;
            if (next >> 12) & 0x3FF == self.worker {
                next
            } else {
                // Skipped into another worker's bits: move to the next millisecond.
                (((self.last >> 22) + 1) << 22) | (self.worker << 12)
            }
        };
        self.last = id;
        id as i64
    }
}

impl IdSource for IdGenerator {
    fn next_id(&mut self) -> i64 {
        self.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_carry_the_worker() {
        let mut g = IdGenerator::new(5);
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
        let mut a = IdGenerator::new(1);
        let mut b = IdGenerator::new(2);
        let xs: std::collections::HashSet<i64> = (0..5000).map(|_| a.next()).collect();
        assert!((0..5000).all(|_| !xs.contains(&b.next())));
    }
}
