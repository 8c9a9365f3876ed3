//! End-to-end tests against real MariaDB servers started by the project's harness, through
//! the real `myshard` binary, with real clients.

mod admin;
mod cli;
mod demo;
mod drivers;
mod dump;
mod env;
mod limits;
mod literals;
mod locks;
mod metrics;
mod prepared;
mod protection;
mod protocol;
mod replicas;
mod safety;
mod scaleout;
mod sessions;
mod sharding;
mod sysbench;
mod transactions;
