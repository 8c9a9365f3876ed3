//! myshard's router: it reads each statement, classifies it, and decides which shard(s) and
//! which role must run it. Pure functions over the configuration; no I/O.
//!
//! - [`lexer`]: a small MySQL tokenizer used for classification before (or instead of) a full
//!   parse; it understands comments, `/*! … */` executable comments and quoting.
//! - [`session`]: statements that change or read session state, which the proxy handles.
//! - [`parse`]: the full parse with sqlparser's MySQL dialect and a recursion limit.
//! - [`plan`]: [`RoutePlan`], the router's output.
//! - [`route`]: [`Router`], which turns a statement into a plan.

pub mod cache;
pub mod catalog;
pub mod columns;
pub mod hash;
pub mod keys;
pub mod lexer;
pub mod lock;
pub mod parse;
pub mod placement;
pub mod plan;
pub mod policy;
pub mod route;
pub mod session;
pub mod text;

pub use placement::Target;
pub use plan::{Combine, GeneratedIds, Placed, Rewrite};
pub use plan::{Role, RoutePlan, StatementKind};
pub use route::{CountingIds, IdSource, RouteError, Router};
pub use session::{SessionStatement, SetTarget};
