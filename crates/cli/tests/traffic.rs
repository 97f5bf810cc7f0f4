//! End-to-end tests of kiln's traffic layer: a real `kiln daemon` with its `kiln proxy`,
//! instances under the real runc, and HTTP load on loopback through the route while
//! services change version (blue/green, canary, plain replacement). They need root,
//! runc, nsenter and busybox; a missing one fails the test with what to install.
//!
//! Run them one at a time (`-- --test-threads=1`): each puts load on the machine.

#![allow(clippy::unwrap_used)]

#[path = "support/host.rs"]
mod host;
#[path = "support/world.rs"]
mod world;

mod traffic {
    mod analysis;
    mod bluegreen;
    mod canary;
    mod draining;
    pub mod harness;
    pub mod load;
    mod recovery;
    mod rolling;
    mod tls;
    mod undo;
}
