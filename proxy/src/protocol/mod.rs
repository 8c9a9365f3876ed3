//! The MySQL server protocol, one file per packet family, on top of `mysql_common`'s codecs.
//!
//! - [`stream`]: the client socket, plain or TLS, framed into packets (16 MiB splitting and
//!   sequence ids by `mysql_common`'s `PacketCodec`).
//! - [`handshake`]: the initial handshake, the client's response and the TLS upgrade.
//! - [`auth`]: `mysql_native_password` and `caching_sha2_password` verification.
//! - [`response`]: OK, ERR and EOF packets.
//! - [`resultset`]: column definitions and text rows.
//! - [`binary`]: prepared statements' parameters and binary rows.
//! - [`command`]: the command phase's `Command` enum.

pub mod auth;
pub mod binary;
pub mod command;
pub mod handshake;
pub mod response;
pub mod resultset;
pub mod stream;

pub use command::Command;
pub use stream::PacketStream;
