//! The plan cache: plan once per statement shape.
//!
//! Applications send the same few statement shapes with different values. [`PlanCache`]
//! keeps the plan of a shape (its text with literals as parameters,
//! [`myshard_router::text::literal_shape`]) under the session facts it was planned with; a
//! statement of a known shape gets that plan without sqlparser, routing or rewriting. The
//! router says what a plan's target depends on ([`Placed`]), and only two kinds are kept:
//!
//! - `Fixed`: no sharded table is involved; every statement of the shape has the plan.
//! - `Key`: one literal is the sharding key of the one table; a hit places *its own* value
//!   of that literal by the rule. Sharding-key values are never part of the cache key.
//!
//! Both are plans of one target that runs the client's text verbatim, so binding a hit is
//! putting in the statement's own text (its literals exactly as the client wrote them) and,
//! for `Key`, its target. A plan is kept only after binding the statement it was planned
//! for gives that very plan back. With `verify` on (the test suite), every hit is planned
//! again and compared; a difference refuses the statement.
//!
//! Bounded: when full, the least recently used of a few sampled shapes is dropped (sampled
//! LRU). A shard-map reload builds a new cache with the new router.

use crate::planner::PlanError;
use crate::staged::{plan_tree, Facts, Plan};
use crate::ExecPlan;
use dashmap::DashMap;
use myshard_config::RuleConfig;
use myshard_router::cache::{CacheStats, MAX_LITERALS, MAX_TEXT};
use myshard_router::text::Literal;
use myshard_router::{Combine, IdSource, Placed, Rewrite, RouteError, RoutePlan, Router};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Shapes looked at to choose one to drop.
const EVICTION_SAMPLE: usize = 8;

/// One kept plan.
#[derive(Debug)]
struct Kept {
    route: RoutePlan,
    exec: ExecPlan,
    /// For a `Key` plan: the rule, and the index of the key's literal.
    key: Option<(RuleConfig, usize)>,
    /// When it was last used, on the cache's clock.
    used: AtomicU64,
}

impl Kept {
    /// The plan of a statement of this shape with `sql`'s own text and literals; `None` when
    /// its key does not place it on exactly one shard (the planner says what then).
    fn bind(&self, sql: &str, literals: &[Literal]) -> Option<(RoutePlan, ExecPlan)> {
        let mut route = self.route.clone();
        let mut exec = self.exec.clone();
        let query = exec.queries.first_mut()?;
        if let Some((rule, slot)) = &self.key {
            let key = myshard_router::keys::literal_key(literals.get(*slot)?)?;
            let target = myshard_router::placement::place_one(rule, &key)?;
            if target.table.is_some() {
                return None;
            }
            query.shard.clone_from(&target.shard);
            *route.targets.first_mut()? = target;
        }
        query.sql = sql.to_string();
        Some((route, exec))
    }
}

/// Kept plans of statement shapes, for one shard-map version. Concurrent without a global
/// lock.
#[derive(Debug)]
pub struct PlanCache {
    plans: DashMap<String, Arc<Kept>>,
    capacity: usize,
    verify: bool,
    clock: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

impl PlanCache {
    /// A cache of at most `capacity` shapes (0: off); `verify` plans every hit again.
    pub fn new(capacity: usize, verify: bool) -> Self {
        PlanCache {
            plans: DashMap::new(),
            capacity,
            verify,
            clock: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            size: self.plans.len() as u64,
        }
    }

    fn get(&self, key: &str, sql: &str, literals: &[Literal]) -> Option<(RoutePlan, ExecPlan)> {
        let kept = self.plans.get(key)?.value().clone();
        let bound = kept.bind(sql, literals)?;
        kept.used.store(
            self.clock.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        Some(bound)
    }

    /// Keeps `planned`, the plan of `sql`, when the router says how statements of its shape
    /// are placed and binding `sql` gives `planned` back.
    fn insert(
        &self,
        key: String,
        router: &Router,
        sql: &str,
        literals: &[Literal],
        planned: &(RoutePlan, ExecPlan),
    ) {
        let (route, exec) = planned;
        let one_verbatim = route.rewrite == Rewrite::Verbatim
            && route.combine == Combine::Single
            && route.targets.len() == 1
            && route.generated.is_none()
            && route.ast.is_none()
            && exec.queries.len() == 1
            && exec.last_insert_id.is_none()
            && !exec.union
            && exec.result_renames.is_empty()
            && exec
                .queries
                .iter()
                .all(|q| q.sql == sql && q.table.is_none());
        if !one_verbatim {
            return;
        }
        let key_rule = match &route.placed_by {
            Placed::Unknown => return,
            Placed::Fixed => None,
            Placed::Key { schema, rule, slot } => {
                let Some(rule) = router
                    .config()
                    .schema(schema)
                    .and_then(|s| s.rules.iter().find(|r| r.name == *rule))
                else {
                    return;
                };
                Some((rule.clone(), *slot))
            }
        };
        let kept = Kept {
            route: route.clone(),
            exec: exec.clone(),
            key: key_rule,
            used: AtomicU64::new(self.clock.fetch_add(1, Ordering::Relaxed)),
        };
        if kept.bind(sql, literals).as_ref() != Some(planned) {
            return;
        }
        if self.plans.len() >= self.capacity {
            self.evict_one();
        }
        self.plans.insert(key, Arc::new(kept));
    }

    /// Drops the least recently used of a few shapes.
    fn evict_one(&self) {
        let victim = self
            .plans
            .iter()
            .take(EVICTION_SAMPLE)
            .min_by_key(|e| e.value().used.load(Ordering::Relaxed))
            .map(|e| e.key().clone());
        if let Some(k) = victim {
            if self.plans.remove(&k).is_some() {
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The cache key of a shape under `facts`: every fact the plan depends on, each with its
/// length, so that no two keys run together.
fn cache_key(facts: &Facts, shape: &str) -> String {
    fn push_len(k: &mut String, n: usize) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut n = n;
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        k.extend(digits[i..].iter().map(|&d| d as char));
        k.push(':');
    }
    let mut k = String::with_capacity(shape.len() + 32);
    let schema = facts.schema.unwrap_or("");
    push_len(&mut k, schema.len());
    k.push_str(schema);
    match facts.allowed {
        None => k.push('*'),
        Some(a) => {
            push_len(&mut k, a.len());
            for s in a {
                push_len(&mut k, s.len());
                k.push_str(s);
            }
        }
    }
    k.push(if facts.mode.in_copy { 'c' } else { '-' });
    k.push(if facts.mode.on_primary { 'p' } else { '-' });
    k.push_str(shape);
    k
}

/// The plan of a statement of canonical text, as [`plan_tree`] makes it: from `cache` when
/// a plan of its shape is kept there, otherwise from the planner (and kept when it can be).
pub fn plan_cached(
    cache: &PlanCache,
    router: &Router,
    facts: &Facts,
    sql: &str,
    ids: &mut dyn IdSource,
) -> Plan {
    if cache.capacity == 0 || sql.len() > MAX_TEXT {
        return plan_tree(router, facts, sql, ids);
    }
    let Some((shape, literals)) = myshard_router::text::literal_shape(sql)
        .filter(|(_, literals)| literals.len() <= MAX_LITERALS)
    else {
        return plan_tree(router, facts, sql, ids);
    };
    let key = cache_key(facts, &shape);
    if let Some(hit) = cache.get(&key, sql, &literals) {
        cache.hits.fetch_add(1, Ordering::Relaxed);
        if cache.verify {
            let fresh = plan_tree(router, facts, sql, ids);
            if !matches!(&fresh, Plan::Run(p) if **p == hit) {
                return Plan::Refuse(PlanError::Route(RouteError::Unsupported(format!(
                    "invariant: the plan cache's plan differs from a fresh plan of {sql}"
                ))));
            }
        }
        return Plan::Run(Box::new(hit));
    }
    cache.misses.fetch_add(1, Ordering::Relaxed);
    let plan = plan_tree(router, facts, sql, ids);
    if let Plan::Run(p) = &plan {
        cache.insert(key, router, sql, &literals, p);
    }
    plan
}
