//! Errors of a build, each naming the image, step or path that failed.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Spec(#[from] kiln_spec::SpecError),
    #[error(transparent)]
    Image(#[from] kiln_image::ImageError),
    #[error("image `{image}`, step {step} ({file}:{line}): {message}")]
    Step {
        image: String,
        file: String,
        step: usize,
        line: usize,
        message: String,
    },
    #[error("image `{image}`: {base}: {source}")]
    Base {
        image: String,
        base: String,
        #[source]
        source: Box<BuildError>,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Other(String),
}

impl BuildError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> BuildError {
        let path = path.into();
        move |source| BuildError::Io { path, source }
    }
}
