//! Integration tests of kiln-state against real database files (one test binary).
#![allow(clippy::unwrap_used)]

mod state {
    mod crash;
    mod desired;
    mod events;
    mod instances;
    mod open;
    mod rollouts;
    pub mod support;
}
