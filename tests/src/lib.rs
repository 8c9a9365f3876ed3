//! myshard's end-to-end test support: [`cluster`] starts real MariaDB shards (a primary and
//! replicas with GTID replication each) on 127.0.0.1, and [`proxy`] runs the `myshard` binary
//! against them. The demo, the tests and the benches all use these.

pub mod cluster;
pub mod differential;
pub mod proxy;
pub mod relay;

pub use cluster::{Cluster, ClusterSpec};
pub use proxy::Proxy;
pub use relay::Relay;
