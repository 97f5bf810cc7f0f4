//! Build steps of an image.

/// One `[[image.NAME.step]]`: exactly one action.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Step {
    Copy(CopyStep),
    Run(RunStep),
    CopyBinary(CopyBinaryStep),
}

/// Copy files from the build context or from another image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CopyStep {
    /// Without `from_image`: a normalized relative path or glob in the build
    /// context (no leading `./`, no `..`, no trailing `/`; `.` is the whole
    /// context). With `from_image`: a normalized absolute path in that image.
    pub src: String,
    /// Another image of the same spec to copy out of.
    pub from_image: Option<String>,
    /// Absolute destination in the image, as written.
    pub to: String,
    /// Permission bits, at most 0o7777.
    pub mode: Option<u32>,
    /// (uid, gid).
    pub owner: Option<(u32, u32)>,
}

/// Run a program inside the image being built.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunStep {
    /// Program and arguments (exec form, never a shell line); not empty.
    pub args: Vec<String>,
    /// Whether the program gets network access (default: no).
    pub network: bool,
}

/// Copy an ELF executable from the build context together with the shared
/// libraries it needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CopyBinaryStep {
    /// Normalized relative path in the build context (never a glob).
    pub src: String,
    /// Absolute destination in the image, as written.
    pub to: String,
    pub mode: Option<u32>,
    pub owner: Option<(u32, u32)>,
}
