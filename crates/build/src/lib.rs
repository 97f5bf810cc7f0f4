//! kiln build.
