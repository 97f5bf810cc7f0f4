//! kiln spec.
