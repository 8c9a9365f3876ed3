//! Connections from myshard to the shards.
//!
//! - [`pool`]: a pool per backend server, whose connections remember the session state
//!   applied to them so that a client's state is replayed only when it differs.
//! - [`state`]: [`SessionState`], what a backend connection must carry for a client.

pub mod health;
pub mod pool;
pub mod state;

pub use pool::{BackendPool, Backends, PooledConn, UNKNOWN_STATE};
pub use state::SessionState;
