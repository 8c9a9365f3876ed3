//! The configuration as plain serde structs. Every struct denies unknown keys so that a typo is
//! an error instead of a silently ignored setting.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The whole configuration file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Client-facing server settings.
    #[serde(default)]
    pub server: ServerConfig,
    /// Users allowed to connect to myshard.
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// Defaults for connections from myshard to the shards.
    #[serde(default)]
    pub backend: BackendDefaults,
    /// The shards: one primary each, with optional replicas.
    #[serde(default)]
    pub shards: Vec<ShardConfig>,
    /// Logical schemas that clients see.
    #[serde(default)]
    pub schemas: Vec<SchemaConfig>,
    /// The admin interface (a MySQL-protocol port of its own for DBAs).
    pub admin: Option<AdminConfig>,
    /// Self-protection under load.
    #[serde(default)]
    pub protection: ProtectionConfig,
    /// Transactions that touch several shards.
    #[serde(default)]
    pub transactions: TransactionsConfig,
}

/// How a transaction that touches several shards commits.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TransactionMode {
    /// Every shard a writing transaction touches runs an XA branch; a transaction that wrote
    /// on several shards commits in two phases, with the decision logged durably first.
    #[default]
    Xa,
    /// A transaction may touch one shard only; reaching a second one fails with an error.
    SingleShard,
}

/// Transactions over several shards.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TransactionsConfig {
    /// `xa` (default) or `single_shard`.
    #[serde(default)]
    pub mode: TransactionMode,
    /// The XA decision log: a commit decision is appended and synced here before any shard
    /// commits, and read at start-up to finish or undo in-doubt branches. Relative paths are
    /// relative to the configuration file.
    #[serde(default = "default_decision_log")]
    pub decision_log: PathBuf,
    /// How often in-doubt XA branches are looked for and resolved, in milliseconds.
    #[serde(default = "default_recovery_interval_ms")]
    pub recovery_interval_ms: u64,
    /// Longest lock wait, in seconds, of a statement inside a transaction that spans several
    /// shards (0: the shards' own `innodb_lock_wait_timeout`). A lock cycle across shards
    /// (a distributed deadlock) is invisible to every single InnoDB; when a wait exceeds this
    /// bound the whole transaction is rolled back on every shard and the client gets 1213, as
    /// for a deadlock one server detects.
    #[serde(default = "default_lock_wait_timeout_s")]
    pub lock_wait_timeout_s: u64,
    /// In `xa` mode, a statement outside a transaction that writes on several shards (a
    /// scatter `UPDATE`, a write to a broadcast table) runs as one XA transaction, so it
    /// takes effect on every shard or on none, as one server's statement would. `false`
    /// commits each shard's part on its own (faster, not atomic).
    #[serde(default = "default_true")]
    pub atomic_autocommit_writes: bool,
}

fn default_true() -> bool {
    true
}

fn default_decision_log() -> PathBuf {
    PathBuf::from("myshard-xa.log")
}

fn default_recovery_interval_ms() -> u64 {
    5_000
}

fn default_lock_wait_timeout_s() -> u64 {
    5
}

impl Default for TransactionsConfig {
    fn default() -> Self {
        TransactionsConfig {
            mode: TransactionMode::Xa,
            decision_log: default_decision_log(),
            recovery_interval_ms: default_recovery_interval_ms(),
            lock_wait_timeout_s: default_lock_wait_timeout_s(),
            atomic_autocommit_writes: true,
        }
    }
}

/// Self-protection: statement timeouts, connection caps and rate limits.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProtectionConfig {
    /// A statement running longer is stopped on its shards (`KILL QUERY`) and fails with
    /// ERR 3024; 0 turns it off.
    #[serde(default)]
    pub statement_timeout_ms: u64,
    /// Most client connections per user name.
    #[serde(default)]
    pub max_connections_per_user: BTreeMap<String, usize>,
    /// Token-bucket rate limits.
    #[serde(default)]
    pub rate_limits: Vec<RateLimit>,
    /// Query classes that are not core to the application: shed (refused) while shedding is
    /// on — switched by the admin command `SET SHEDDING ON|OFF`, or automatically while more
    /// than `shed_when_concurrent_over` statements run at once.
    #[serde(default)]
    pub noncore: Vec<NonCore>,
    /// Shed non-core statements automatically while more statements than this run at once;
    /// 0 = only by the admin switch.
    #[serde(default)]
    pub shed_when_concurrent_over: usize,
}

/// A non-core query class: statements naming `table`, or whose digest contains `pattern`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NonCore {
    /// The class's name, reported in its error.
    pub name: String,
    /// A table the statement names.
    pub table: Option<String>,
    /// A fragment of the statement's digest (upper case, literals as `?`).
    pub pattern: Option<String>,
}

/// A token bucket: statements of `user` (any user when unset) whose digest is `digest` (any
/// statement when unset) may run at `qps` per second, with bursts of `burst`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// The limit's name, reported in its error.
    pub name: String,
    /// Only this user's statements.
    pub user: Option<String>,
    /// Only statements with this digest (as SHOW QUERY DIGESTS prints it).
    pub digest: Option<String>,
    /// Sustained statements per second.
    pub qps: f64,
    /// Burst size (defaults to `qps`).
    pub burst: Option<f64>,
}

/// The admin interface.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address to listen on, `host:port`.
    pub listen: String,
    /// Admin user name.
    pub user: String,
    /// Admin password.
    pub password: String,
}

/// Client-facing server settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on, `host:port`.
    pub listen: String,
    /// Maximum concurrent client connections; one more gets ERR 1040.
    pub max_connections: usize,
    /// Version string announced in the handshake. Clients and ORMs branch on it, so it must
    /// look like MySQL 8.
    pub version: String,
    /// A client must finish the handshake within this many milliseconds.
    pub handshake_timeout_ms: u64,
    /// An idle client connection is closed after this many seconds (MySQL's `wait_timeout`).
    pub idle_timeout_s: u64,
    /// On SIGTERM/SIGINT, running statements get this long to finish.
    pub shutdown_grace_ms: u64,
    /// PEM certificate chain for TLS; TLS is offered only when both cert and key are set.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    pub tls_key: Option<PathBuf>,
    /// PEM RSA private key for `caching_sha2_password` full authentication without TLS.
    /// When unset, a fresh 2048-bit key is generated at start-up.
    pub rsa_private_key: Option<PathBuf>,
    /// Largest packet (statement) accepted from a client, in bytes (`max_allowed_packet`).
    pub max_allowed_packet: usize,
    /// This instance's worker id (0–1023) in generated ids; give every instance sharing a
    /// shard map its own. Random when unset.
    pub worker_id: Option<u16>,
    /// Most bytes of rows one cross-shard merge (GROUP BY, ORDER BY, DISTINCT) may hold.
    pub merge_memory_limit: usize,
    /// A read myshard cannot split across shards runs on one server over a copy of its
    /// tables' rows (at most 100,000 per table); `false` refuses it instead.
    pub copy_fallback: bool,
    /// Address of the Prometheus `/metrics` endpoint (`host:port`); off when unset.
    pub metrics_listen: Option<String>,
    /// Statements slower than this many milliseconds go to the slow-query log.
    pub slow_query_ms: u64,
    /// File the slow-query log is appended to (JSON lines); in memory only when unset.
    pub slow_query_log: Option<PathBuf>,
    /// Statement shapes (text with literals as parameters) whose parse is kept, so that a
    /// statement of a known shape is not parsed again; 0 turns the cache off.
    pub plan_cache_size: usize,
    /// Testing aid: every cache hit is parsed again and compared, and a difference refuses the
    /// statement (ERR 1235) instead of running it.
    pub plan_cache_verify: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:3307".into(),
            max_connections: 2000,
            version: "8.0.36-myshard".into(),
            handshake_timeout_ms: 10_000,
            idle_timeout_s: 28_800,
            shutdown_grace_ms: 10_000,
            tls_cert: None,
            tls_key: None,
            rsa_private_key: None,
            max_allowed_packet: 64 * 1024 * 1024,
            worker_id: None,
            merge_memory_limit: 256 * 1024 * 1024,
            copy_fallback: true,
            metrics_listen: None,
            slow_query_ms: 1_000,
            slow_query_log: None,
            plan_cache_size: 10_000,
            plan_cache_verify: false,
        }
    }
}

/// Authentication plugin a user is announced with.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum AuthPlugin {
    /// SHA-1 challenge/response.
    MysqlNativePassword,
    /// MySQL 8's default: SHA-256 fast path, full authentication over TLS or RSA.
    #[default]
    CachingSha2Password,
}

impl AuthPlugin {
    /// The plugin's wire name.
    pub fn name(self) -> &'static str {
        match self {
            AuthPlugin::MysqlNativePassword => "mysql_native_password",
            AuthPlugin::CachingSha2Password => "caching_sha2_password",
        }
    }
}

/// A user allowed to connect to myshard.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// User name.
    pub name: String,
    /// Plain-text password (needed to verify both plugins' scrambles).
    #[serde(default)]
    pub password: String,
    /// The authentication plugin this user is stored with.
    #[serde(default)]
    pub auth_plugin: AuthPlugin,
    /// Logical schemas this user may use.
    #[serde(default)]
    pub schemas: Vec<String>,
    /// Whether the user may force a shard with a `/* myshard:shard=NAME */` comment.
    #[serde(default)]
    pub allow_hints: bool,
    /// What the user may do in its schemas: `read_only`, `read_write` or `ddl` (default).
    #[serde(default)]
    pub access: Access,
    /// Per-schema exceptions to `access`, e.g. `{ reports = "read_only" }`.
    #[serde(default)]
    pub schema_access: std::collections::BTreeMap<String, Access>,
    /// What this user's reads see of its own writes; `backend.read_consistency` when unset.
    #[serde(default)]
    pub read_consistency: Option<ReadConsistency>,
}

/// What a session's reads see of the session's own writes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ReadConsistency {
    /// Reads go to any usable replica, however far behind the session's writes it is.
    Eventual,
    /// After a session's write to a shard, its reads of that shard go to a replica that has
    /// applied the write (by the GTID the primary reported), or to the primary.
    #[default]
    ReadYourWrites,
    /// Every read goes to the primary.
    Primary,
}

impl ReadConsistency {
    /// The name as written in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            ReadConsistency::Eventual => "eventual",
            ReadConsistency::ReadYourWrites => "read_your_writes",
            ReadConsistency::Primary => "primary",
        }
    }
}

/// A user's rights in one logical schema, each including the ones before it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Default)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// SELECT, SHOW, DESCRIBE, EXPLAIN.
    ReadOnly,
    /// Also INSERT, UPDATE, DELETE, REPLACE, CALL, LOCK TABLES.
    ReadWrite,
    /// Also CREATE, ALTER, DROP, TRUNCATE, RENAME.
    #[default]
    Ddl,
}

impl Access {
    /// The configuration's name of this level.
    pub fn name(self) -> &'static str {
        match self {
            Access::ReadOnly => "read_only",
            Access::ReadWrite => "read_write",
            Access::Ddl => "ddl",
        }
    }
}

impl UserConfig {
    /// The user's rights in `schema`.
    pub fn access_to(&self, schema: &str) -> Access {
        self.schema_access
            .get(schema)
            .copied()
            .unwrap_or(self.access)
    }
}

/// Defaults for backend connections; each shard may override credentials.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BackendDefaults {
    /// Backend user name.
    pub user: String,
    /// Backend password.
    pub password: String,
    /// Maximum pooled connections per backend server.
    pub pool_max: usize,
    /// Connecting to a backend gives up after this many milliseconds.
    pub connect_timeout_ms: u64,
    /// Idle pooled connections are closed after this many seconds.
    pub idle_timeout_s: u64,
    /// A pooled connection idle for longer than this is pinged before use.
    pub ping_after_idle_ms: u64,
    /// Waiting for a free pooled connection gives up after this many milliseconds.
    pub checkout_timeout_ms: u64,
    /// Every server's health is checked this often.
    pub health_interval_ms: u64,
    /// A replica further behind its primary than this leaves read rotation.
    pub max_replica_lag_s: u64,
    /// How reads pick among replicas: `round_robin` or `least_connections`.
    pub replica_policy: String,
    /// When no replica of a shard is usable, reads go to its primary.
    pub fallback_to_primary: bool,
    /// After a session writes to a shard, its reads of that shard go to the primary for this
    /// many milliseconds (read-your-writes); 0 turns it off.
    pub read_your_writes_ms: u64,
    /// What reads see of their session's own writes (per user: `users.read_consistency`).
    pub read_consistency: ReadConsistency,
    /// Under `read_your_writes`, how long a replica may take to apply a session's last write
    /// before the read goes to the primary instead.
    pub read_your_writes_wait_ms: u64,
}

impl Default for BackendDefaults {
    fn default() -> Self {
        BackendDefaults {
            user: "root".into(),
            password: String::new(),
            pool_max: 64,
            connect_timeout_ms: 3_000,
            idle_timeout_s: 300,
            ping_after_idle_ms: 5_000,
            checkout_timeout_ms: 10_000,
            health_interval_ms: 1_000,
            max_replica_lag_s: 5,
            replica_policy: "round_robin".into(),
            fallback_to_primary: true,
            read_your_writes_ms: 0,
            read_consistency: ReadConsistency::ReadYourWrites,
            read_your_writes_wait_ms: 100,
        }
    }
}

/// One shard: a primary and optional replicas.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShardConfig {
    /// The shard's name, used by schemas and rules.
    pub name: String,
    /// Primary address, `host:port`.
    pub primary: String,
    /// Replica addresses.
    #[serde(default)]
    pub replicas: Vec<String>,
    /// Relative read weights of the replicas (parallel to `replicas`; default 1 each), used
    /// by the `round_robin` policy.
    #[serde(default)]
    pub replica_weights: Vec<u32>,
    /// Backend user, overriding `[backend].user`.
    pub user: Option<String>,
    /// Backend password, overriding `[backend].password`.
    pub password: Option<String>,
    /// Pool size, overriding `[backend].pool_max`.
    pub pool_max: Option<usize>,
}

/// A logical schema as clients see it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SchemaConfig {
    /// Logical schema name.
    pub name: String,
    /// The shard holding the schema's unsharded tables.
    pub default_shard: String,
    /// Database name on the shards; defaults to the logical name.
    pub database: Option<String>,
    /// Sharding rules, referenced by tables. Tables with the same rule are co-located: rows
    /// with the same key value live on the same shard, so joins on the key stay inside it.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Tables placed by a rule; any other table lives on `default_shard`.
    #[serde(default)]
    pub tables: Vec<TableConfig>,
}

impl SchemaConfig {
    /// The placement of a logical table, by name (case-insensitive, as table names on most
    /// installations are compared).
    pub fn table(&self, name: &str) -> Option<&TableConfig> {
        self.tables
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
    }

    /// A rule by name.
    pub fn rule(&self, name: &str) -> Option<&RuleConfig> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// Whether every table of the schema lives on its default shard.
    pub fn is_unsharded(&self) -> bool {
        self.tables.is_empty()
    }

    /// The database name used on the shards.
    pub fn physical_database(&self) -> &str {
        self.database.as_deref().unwrap_or(&self.name)
    }
}

impl Config {
    /// Makes file paths relative to the configuration file's folder.
    pub(crate) fn resolve_relative_paths(&mut self, base: &Path) {
        for p in [
            &mut self.server.tls_cert,
            &mut self.server.tls_key,
            &mut self.server.rsa_private_key,
            &mut self.server.slow_query_log,
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if self.transactions.decision_log.is_relative() {
            self.transactions.decision_log = base.join(&self.transactions.decision_log);
        }
    }

    /// Finds a shard by name.
    pub fn shard(&self, name: &str) -> Option<&ShardConfig> {
        self.shards.iter().find(|s| s.name == name)
    }

    /// Finds a logical schema by name (case-sensitive, as MySQL on Linux).
    pub fn schema(&self, name: &str) -> Option<&SchemaConfig> {
        self.schemas.iter().find(|s| s.name == name)
    }

    /// Finds a user by name.
    pub fn user(&self, name: &str) -> Option<&UserConfig> {
        self.users.iter().find(|u| u.name == name)
    }
}

/// How a rule maps a key to a shard.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// A stable hash of the key gives a 64-bit keyspace id; each shard owns a range of ids.
    Hash,
    /// Integer key ranges: `bounds` split the key space between `shards` in order.
    Range,
    /// Key values listed one by one (for example a region code), with an optional default.
    List,
    /// An explicit key → shard map (for example tenant ids), with a fallback for other keys.
    Lookup,
    /// No key: the table is copied to every shard of the rule.
    Broadcast,
}

/// A sharding rule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Rule name, referenced by tables.
    pub name: String,
    /// How keys map to shards.
    pub kind: RuleKind,
    /// Shards the rule spreads rows over, in order.
    pub shards: Vec<String>,
    /// `hash`: keyspace-id range each shard owns, parallel to `shards`, as hex bounds
    /// (`"-40"`, `"40-80"`, `"80-"`). Default: equal ranges in shard order.
    #[serde(default)]
    pub ranges: Vec<String>,
    /// `range`: ascending upper bounds (exclusive); `shards` has one more entry than `bounds`.
    #[serde(default)]
    pub bounds: Vec<i64>,
    /// `list`: key value → shard.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    /// `list`: shard for values not listed; without it such values are refused.
    pub default: Option<String>,
    /// `lookup`: key → shard.
    #[serde(default)]
    pub map: BTreeMap<String, String>,
    /// `lookup`: for keys not in `map`, `"hash"` (hash over `shards`) or a shard name.
    pub fallback: Option<String>,
    /// Physical tables per shard: `name_0 … name_{N-1}` behind each logical table.
    #[serde(default = "one")]
    pub tables_per_shard: u32,
    /// Collation of string keys: names ending in `_ci` compare case-insensitively.
    #[serde(default = "default_collation")]
    pub collation: String,
}

fn one() -> u32 {
    1
}

fn default_collation() -> String {
    "utf8mb4_general_ci".into()
}

/// A logical table placed by a rule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// Logical table name.
    pub name: String,
    /// The rule that places its rows.
    pub rule: String,
    /// The sharding key column (not used by `broadcast` rules).
    pub column: Option<String>,
    /// An auto-increment column whose values myshard generates (globally unique ids) when an
    /// INSERT omits them.
    pub auto_increment: Option<String>,
}
