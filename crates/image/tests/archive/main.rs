//! Integration tests of import and export: round trips through every format, the
//! real tools (skopeo, umoci), and malicious archives.

#![allow(clippy::unwrap_used)]

mod malicious;
mod roundtrip;
mod support;
mod tools;
