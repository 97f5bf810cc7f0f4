//! Builds the images of a kiln.toml into the store: bases, context copies, multi-stage
//! copies, `copy_binary` and RUN steps in a runc sandbox, all cached per step and
//! reproducible by construction.

mod builder;
mod cache;
mod config;
mod context;
pub mod elf;
mod error;
mod layers;
mod progress;
mod repro;
mod rootfs;
mod statcache;
mod tag;
mod walk;

pub use builder::{BuildOptions, Builder, BuiltImage};
pub use error::BuildError;
pub use progress::Progress;
pub use repro::{ReproReport, verify_repro};
pub use tag::default_tag;

/// SOURCE_DATE_EPOCH from the environment (0 when unset): every mtime is clamped to it
/// and `created` is set from it.
pub fn source_date_epoch() -> Result<u64, BuildError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Err(_) => Ok(0),
        Ok(v) if v.trim().is_empty() => Ok(0),
        Ok(v) => v.trim().parse().map_err(|_| {
            BuildError::Other(format!(
                "SOURCE_DATE_EPOCH must be whole seconds since 1970, not `{v}`"
            ))
        }),
    }
}
