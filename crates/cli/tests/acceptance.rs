//! End-to-end tests through the `kiln` binary with the real runc, skopeo and umoci.
//! They need root and those tools; a missing one fails the test with what to install.

#![allow(clippy::unwrap_used)]

#[path = "support/host.rs"]
mod host;

mod acceptance {
    mod build;
    mod export;
    pub mod harness;
    mod malicious;
    mod repro;
    mod store;
}
