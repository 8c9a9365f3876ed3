//! The parts of the `myshard` binary that benchmarks and tools use as a library: the MySQL
//! protocol codecs.

pub mod protocol;
