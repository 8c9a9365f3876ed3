//! The router: statement in, [`RoutePlan`] out.

use crate::lexer::{tokenize, Token};
use crate::plan::{Role, RoutePlan, StatementKind};
use myshard_config::Config;
use std::sync::Arc;

/// Why a statement cannot be routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// No schema selected and the statement needs one.
    #[error("No database selected")]
    NoDatabase,
    /// The schema is not in the shard map.
    #[error("Unknown database '{0}'")]
    UnknownDatabase(String),
    /// A statement myshard cannot route correctly.
    #[error("{0}")]
    Unsupported(String),
}

/// Routes statements using one version of the shard map.
#[derive(Debug, Clone)]
pub struct Router {
    config: Arc<Config>,
}

impl Router {
    /// A router over this configuration.
    pub fn new(config: Arc<Config>) -> Self {
        Router { config }
    }

    /// The configuration this router uses.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// Decides where `sql` runs for a session whose current schema is `schema`.
    ///
    /// Every logical schema lives on its default shard until table rules exist, so the
    /// statement passes through unchanged; statements without a schema run on the first shard
    /// (they can only name schemas explicitly, which the shard resolves).
    pub fn route(&self, schema: Option<&str>, sql: &str) -> Result<RoutePlan, RouteError> {
        let tokens = tokenize(sql);
        let kind = tokens
            .iter()
            .find_map(|t| match t {
                Token::Word(w) => Some(StatementKind::from_first_word(w)),
                Token::Sym(s) if s == "(" => Some(StatementKind::Read),
                _ => None,
            })
            .unwrap_or(StatementKind::Other);
        let role = Role::Primary;
        match schema {
            Some(name) => {
                let schema = self
                    .config
                    .schema(name)
                    .ok_or_else(|| RouteError::UnknownDatabase(name.to_string()))?;
                Ok(RoutePlan::single(
                    kind,
                    role,
                    &schema.default_shard,
                    Some(schema.physical_database()),
                ))
            }
            None => {
                let shard =
                    self.config.shards.first().ok_or_else(|| {
                        RouteError::Unsupported("no shards are configured".into())
                    })?;
                Ok(RoutePlan::single(kind, role, &shard.name, None))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        let config = Config::from_toml_str(
            r#"
            [[shards]]
            name = "s0"
            primary = "127.0.0.1:1"
            [[shards]]
            name = "s1"
            primary = "127.0.0.1:2"
            [[schemas]]
            name = "shop"
            default_shard = "s1"
            database = "shop_db"
            "#,
        )
        .expect("valid config");
        Router::new(Arc::new(config))
    }

    #[test]
    fn unsharded_schema_goes_to_its_default_shard_and_database() {
        let plan = router()
            .route(Some("shop"), "SELECT * FROM t")
            .expect("routes");
        assert_eq!(plan.shards, vec!["s1"]);
        assert_eq!(plan.database.as_deref(), Some("shop_db"));
        assert_eq!(plan.kind, StatementKind::Read);
    }

    #[test]
    fn writes_are_classified() {
        let plan = router()
            .route(Some("shop"), "/* c */ insert into t values (1)")
            .expect("routes");
        assert_eq!(plan.kind, StatementKind::Write);
        assert_eq!(plan.role, Role::Primary);
    }

    #[test]
    fn unknown_schema_is_an_error() {
        assert_eq!(
            router().route(Some("nope"), "SELECT 1"),
            Err(RouteError::UnknownDatabase("nope".into()))
        );
    }
}
