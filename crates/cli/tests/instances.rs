//! End-to-end tests of the control plane through the `kiln` binary: a real `kiln daemon`
//! running instances under the real runc. They need root, runc, nsenter and busybox; a
//! missing one fails the test with what to install.

#![allow(clippy::unwrap_used)]

#[path = "support/host.rs"]
mod host;
#[path = "support/world.rs"]
mod world;

mod instances {
    mod changes;
    pub mod harness;
    mod healing;
    mod images;
    mod recovery;
    mod serve;
}
