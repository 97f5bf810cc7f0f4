//! Integration tests of the image store: layers, blobs, tags, gc, and external tools.

#![allow(clippy::unwrap_used)]

mod blobs;
mod gc;
mod layers;
mod support;
mod tags;
mod tools;
