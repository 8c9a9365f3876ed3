//! Running plans, one file per operator family. The plan itself comes from the planner
//! (`crate::planning`); these only run it.

mod dispatch;
mod lock;
mod read;
mod write;
