//! kiln state: the control plane's SQLite database.
//!
//! One [`State`] owns one connection to the database file. Every mutating method runs
//! in one `BEGIN IMMEDIATE` transaction, so a crash leaves either all of an operation
//! or none of it. Times are unix milliseconds supplied by the caller: the crate reads
//! no clock.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod db;
mod desired;
mod error;
mod events;
mod instances;
mod meta;
mod rollouts;
mod routes;
mod schema;

pub use db::{Pragmas, State};
pub use desired::DesiredService;
pub use error::{InvalidInstanceState, StateError};
pub use events::{Event, EventFilter, NewEvent};
pub use instances::{InstanceRow, InstanceState};
