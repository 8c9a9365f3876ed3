//! The myshard configuration: the server section, users, backend defaults and the shard map
//! (shards and logical schemas). Loading is strict (`deny_unknown_fields`) and
//! [`Config::validate`] reports every problem with the key path it concerns, so a DBA sees all
//! mistakes at once.

pub mod keyspace;
mod model;
mod validate;

pub use model::{
    Access, AdminConfig, AuthPlugin, BackendDefaults, Config, NonCore, ProtectionConfig, RateLimit,
    ReadConsistency, RuleConfig, RuleKind, SchemaConfig, ServerConfig, ShardConfig, TableConfig,
    TransactionMode, TransactionsConfig, UserConfig,
};
pub use validate::{ConfigError, Problem};

use std::path::Path;

impl Config {
    /// Parses TOML text and validates it.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let mut config = Config::from_toml_str(&text)?;
        config.resolve_relative_paths(path.parent().unwrap_or(Path::new(".")));
        Ok(config)
    }
}
