//! kiln image.
