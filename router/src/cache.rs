//! Parse once per statement shape.
//!
//! Parsing is the largest part of planning a short statement, and applications send the same
//! few shapes with different values. [`ParseCache`] keeps the parse of each shape (the text
//! with its literals as parameters, [`crate::text::literal_shape`]); a statement of a known
//! shape gets a copy of that syntax tree with its own literal values put in, and is planned
//! from it without sqlparser. Routing always runs on the new values: sharding-key values are
//! parameters of the cached tree, never part of the key.
//!
//! A shape is kept only when the tree's literal values, in the order the visitor meets them,
//! are exactly the statement's literals in source order (same count, kinds and values), so
//! putting values back by position is putting them where the parser would. `verify` re-parses
//! on every hit and reports a difference, for tests.

use crate::text::{Literal, LiteralKind};
use dashmap::DashMap;
use sqlparser::ast::{Statement, Value, ValueWithSpan, VisitMut, VisitorMut};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};

/// Longest statement text whose parse is kept, in bytes.
pub const MAX_TEXT: usize = 4096;

/// Most literals a kept statement may have.
pub const MAX_LITERALS: usize = 64;

/// Counters of a [`ParseCache`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Statements planned from a kept parse.
    pub hits: u64,
    /// Statements parsed.
    pub misses: u64,
    /// Shapes dropped to make room.
    pub evictions: u64,
    /// Shapes kept now.
    pub size: u64,
}

/// The parses of statement shapes, shared by every session of one shard-map version (a
/// reload starts a new one). Concurrent without a global lock.
#[derive(Debug)]
pub struct ParseCache {
    shapes: DashMap<String, Statement>,
    capacity: usize,
    verify: bool,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

/// Whether a value is one of a statement's literals, and of which kind.
fn literal_kind(v: &Value) -> Option<LiteralKind> {
    match v {
        Value::Number(..) => Some(LiteralKind::Num),
        // `0x41` reaches the tree as a hex value that keeps its `0x` (see
        // `text::sqlparser_text`); `X'41'` is a quoted string in the source.
        Value::HexStringLiteral(h) if h.starts_with(crate::text::HEX_NUMBER_PREFIX) => {
            Some(LiteralKind::Num)
        }
        Value::SingleQuotedString(_)
        | Value::DoubleQuotedString(_)
        | Value::NationalStringLiteral(_)
        | Value::HexStringLiteral(_)
        | Value::SingleQuotedByteStringLiteral(_)
        | Value::DoubleQuotedByteStringLiteral(_) => Some(LiteralKind::Str),
        _ => None,
    }
}

fn content(v: &mut Value) -> Option<&mut String> {
    match v {
        Value::Number(s, _)
        | Value::HexStringLiteral(s)
        | Value::SingleQuotedString(s)
        | Value::DoubleQuotedString(s)
        | Value::NationalStringLiteral(s)
        | Value::SingleQuotedByteStringLiteral(s)
        | Value::DoubleQuotedByteStringLiteral(s) => Some(s),
        _ => None,
    }
}

/// Walks a tree's literal values in visiting order: checks them against `literals`, or
/// replaces them with `literals`.
struct Literals<'a> {
    literals: &'a [Literal],
    next: usize,
    replace: bool,
    ok: bool,
}

impl VisitorMut for Literals<'_> {
    type Break = ();

    fn pre_visit_value(&mut self, v: &mut ValueWithSpan) -> ControlFlow<()> {
        let Some(kind) = literal_kind(&v.value) else {
            return ControlFlow::Continue(());
        };
        let Some(lit) = self.literals.get(self.next) else {
            self.ok = false;
            return ControlFlow::Break(());
        };
        self.next += 1;
        if lit.kind != kind {
            self.ok = false;
            return ControlFlow::Break(());
        }
        // `5` and `0x1F` are one shape but different nodes (a number, a hex value): a
        // number goes only where one of its own radix was.
        fn radix(t: &str) -> Option<&str> {
            t.get(..2).filter(|p| matches!(*p, "0x" | "0b"))
        }
        match content(&mut v.value) {
            Some(s) if self.replace && radix(s) != radix(&lit.value) => {
                self.ok = false;
                return ControlFlow::Break(());
            }
            Some(s) if self.replace => {
                s.clear();
                s.push_str(&lit.value);
            }
            Some(s) if *s == lit.value => {}
            _ => {
                self.ok = false;
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }
}

fn walk(stmt: &mut Statement, literals: &[Literal], replace: bool) -> bool {
    let mut w = Literals {
        literals,
        next: 0,
        replace,
        ok: true,
    };
    let _ = stmt.visit(&mut w);
    w.ok && w.next == literals.len()
}

/// Whether a tree's literal values, in visiting order, are exactly `literals` (same count,
/// kinds and values): then the `n`-th literal of the text is the `n`-th value the visitor
/// meets.
pub fn lines_up(stmt: &Statement, literals: &[Literal]) -> bool {
    let mut probe = stmt.clone();
    walk(&mut probe, literals, false)
}

/// The position, among a tree's literal values in visiting order, of the value at `target`
/// (compared by address: `target` must point into `stmt`).
pub fn literal_slot(stmt: &Statement, target: &Value) -> Option<usize> {
    struct Find<'a> {
        target: &'a Value,
        next: usize,
        found: Option<usize>,
    }
    impl sqlparser::ast::Visitor for Find<'_> {
        type Break = ();
        fn pre_visit_value(&mut self, v: &ValueWithSpan) -> ControlFlow<()> {
            if literal_kind(&v.value).is_none() {
                return ControlFlow::Continue(());
            }
            if std::ptr::eq(&v.value, self.target) {
                self.found = Some(self.next);
                return ControlFlow::Break(());
            }
            self.next += 1;
            ControlFlow::Continue(())
        }
    }
    let mut f = Find {
        target,
        next: 0,
        found: None,
    };
    let _ = sqlparser::ast::Visit::visit(stmt, &mut f);
    f.found
}

/// A number as MySQL writes one: a statement whose shape matches can still hold `1abc` (a
/// name) where another held `1`; only plain numbers are put into a kept tree.
fn plain_number(s: &str) -> bool {
    let b = s.as_bytes();
    if let Some(hex) = s.strip_prefix("0x") {
        return !hex.is_empty() && hex.bytes().all(|c| c.is_ascii_hexdigit());
    }
    if let Some(bits) = s.strip_prefix("0b") {
        return !bits.is_empty() && bits.bytes().all(|c| c == b'0' || c == b'1');
    }
    !b.is_empty()
        && b[0].is_ascii_digit()
        && b.iter()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
}

impl ParseCache {
    /// A cache of at most `capacity` shapes (0: off); `verify` re-parses every hit.
    pub fn new(capacity: usize, verify: bool) -> Self {
        ParseCache {
            shapes: DashMap::new(),
            capacity,
            verify,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    /// Whether the cache keeps anything.
    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// Whether hits are checked against a fresh parse.
    pub fn verifies(&self) -> bool {
        self.verify
    }

    /// The tree of a statement of a known shape with `literals` put in.
    pub fn get(&self, shape: &str, literals: &[Literal]) -> Option<Statement> {
        if !self.enabled() {
            return None;
        }
        if literals
            .iter()
            .any(|l| l.kind == LiteralKind::Num && !plain_number(&l.value))
        {
            return None;
        }
        let mut stmt = self.shapes.get(shape)?.value().clone();
        if !walk(&mut stmt, literals, true) {
            return None;
        }
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(stmt)
    }

    /// Keeps the parse of a statement of this shape when its literal values are exactly
    /// `literals`, in order.
    pub fn insert(&self, shape: String, stmt: &Statement, literals: &[Literal]) {
        self.misses.fetch_add(1, Ordering::Relaxed);
        if !self.enabled() || self.shapes.contains_key(&shape) {
            return;
        }
        let mut probe = stmt.clone();
        if !walk(&mut probe, literals, false) {
            return;
        }
        if self.shapes.len() >= self.capacity {
            // Make room: drop some shape (the map's shards keep no order to evict by age).
            let victim = self.shapes.iter().next().map(|e| e.key().clone());
            if let Some(k) = victim {
                self.shapes.remove(&k);
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.shapes.insert(shape, probe);
    }

    /// Counters so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            size: self.shapes.len() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::literal_shape;

    fn parse(sql: &str) -> Statement {
        crate::parse::parse(sql).expect("parses").remove(0)
    }

    fn cached(cache: &ParseCache, sql: &str) -> Option<Statement> {
        let (shape, lits) = literal_shape(sql)?;
        match cache.get(&shape, &lits) {
            Some(s) => Some(s),
            None => {
                cache.insert(shape, &parse(sql), &lits);
                None
            }
        }
    }

    #[test]
    fn a_known_shape_gets_its_own_values() {
        let cache = ParseCache::new(10, false);
        let first = "SELECT c FROM t WHERE id = 5 AND name = 'a\\\\b' LIMIT 10";
        assert!(cached(&cache, first).is_none());
        let second = "SELECT c FROM t WHERE id = 77 AND name = 'it''s' LIMIT 3";
        assert_eq!(cached(&cache, second), Some(parse(second)));
        assert_eq!(cache.stats().hits, 1);
        assert_eq!(cache.stats().misses, 1);
    }

    #[test]
    fn shapes_whose_literals_do_not_line_up_are_not_kept() {
        let cache = ParseCache::new(10, false);
        // sqlparser joins adjacent strings into one value.
        assert!(cached(&cache, "SELECT 'a' 'b'").is_none());
        assert!(cached(&cache, "SELECT 'c' 'd'").is_none());
        assert_eq!(cache.stats().size, 0);
    }

    #[test]
    fn a_string_where_a_number_was_is_a_miss() {
        let cache = ParseCache::new(10, false);
        assert!(cached(&cache, "SELECT * FROM t WHERE id = 5").is_none());
        assert!(cached(&cache, "SELECT * FROM t WHERE id = '5'").is_none());
        assert_eq!(
            cached(&cache, "SELECT * FROM t WHERE id = 6"),
            Some(parse("SELECT * FROM t WHERE id = 6"))
        );
    }

    #[test]
    fn a_hex_number_never_goes_where_a_decimal_was() {
        let cache = ParseCache::new(10, false);
        assert!(cached(&cache, "SELECT * FROM t WHERE id = 5").is_none());
        // Same shape, another node: parsed, never put into the decimal's tree.
        assert!(cached(&cache, "SELECT * FROM t WHERE id = 0x1F").is_none());
        let sql = "SELECT * FROM t WHERE id = 6";
        assert_eq!(cached(&cache, sql), Some(parse(sql)));
    }

    #[test]
    fn hex_numbers_and_hex_strings_keep_their_kinds() {
        let cache = ParseCache::new(10, false);
        assert!(cached(&cache, "SELECT 0x41, X'42', -1.5e3").is_none());
        let sql = "SELECT 0x4A, X'4B', -2.5e3";
        assert_eq!(cached(&cache, sql), Some(parse(sql)));
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = ParseCache::new(2, false);
        for t in ["a", "b", "c", "d"] {
            cached(&cache, &format!("SELECT x FROM {t} WHERE id = 1"));
        }
        assert_eq!(cache.stats().size, 2);
        assert_eq!(cache.stats().evictions, 2);
    }

    const TEMPLATES: &[&str] = &[
        "SELECT c FROM t WHERE id = {n} AND name = {s}",
        "SELECT a, b FROM t WHERE id IN ({n}, {n}, {n}) ORDER BY a LIMIT {u}",
        "INSERT INTO t (id, name, price) VALUES ({n}, {s}, {f}), ({n}, {s}, {f})",
        "UPDATE t SET name = CONCAT(name, {s}) WHERE id BETWEEN {n} AND {n}",
        "SELECT COUNT(*), SUM(x) FROM t WHERE name LIKE {s} GROUP BY y HAVING SUM(x) > {f}",
        "DELETE FROM t WHERE id = {n} AND flag = {u}",
        "SELECT _binary {s}, N{s}, X'4142', 0x{u} FROM t WHERE d = DATE {s}",
    ];

    fn fill(template: &str, n: i64, s: &str, f: f64, u: u32) -> String {
        let quoted = crate::text::quote(s.as_bytes(), "_binary");
        template
            .replace("{n}", &n.to_string())
            .replace("{s}", &quoted)
            .replace("{f}", &format!("{f:?}"))
            .replace("{u}", &u.to_string())
    }

    proptest::proptest! {
        /// Whatever the values, a statement planned from a kept parse has exactly the tree a
        /// fresh parse gives.
        #[test]
        fn kept_parses_with_new_values_equal_fresh_parses(
            n in proptest::prelude::any::<i64>(),
            s in "[a-zA-Z0-9 '\"\\\\%_`;\\x00\\x1aé乗😀-]{0,16}",
            f in -1.0e9f64..1.0e9,
            u in 0u32..100_000,
        ) {
            let cache = ParseCache::new(100, false);
            for t in TEMPLATES {
                // The first statement of the shape is parsed and kept; the next one is not.
                let _ = cached(&cache, &fill(t, 1, "seed", 0.5, 7));
                let sql = fill(t, n, &s, f, u);
                let Ok(mut fresh) = crate::parse::parse(&sql) else { continue };
                let fresh = fresh.remove(0);
                if let Some((shape, lits)) = literal_shape(&sql) {
                    if let Some(kept) = cache.get(&shape, &lits) {
                        proptest::prop_assert_eq!(kept, fresh, "{}", sql);
                    }
                }
            }
            // The last template has no sign to change its shape: it always hits.
            proptest::prop_assert!(cache.stats().hits > 0);
        }
    }
}
