//! Typed errors, each carrying where in the spec (or which template) it comes from.

use std::fmt;
use std::path::PathBuf;

/// A position in a spec file (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file, as the user would open it.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// Everything that can go wrong turning specs into code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec is invalid at a known position.
    #[error("{location}: {message}")]
    Spec {
        /// Where.
        location: Location,
        /// What is wrong.
        message: String,
    },
    /// The spec is invalid, and the problem has no single position (a missing file, say).
    #[error("{file}: {message}")]
    SpecFile {
        /// The file the problem is about.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A template produced code that does not parse: a bug in switchboard, named by template.
    #[error("template `{template}` rendered invalid Rust for {subject}: {message}")]
    Render {
        /// The template file under `templates/`.
        template: &'static str,
        /// What was being rendered (a service or package name).
        subject: String,
        /// The parser's complaint.
        message: String,
    },
    /// prost-build could not generate message types.
    #[error("generating message types: {0}")]
    Messages(String),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The configuration is incomplete (e.g. no output directory outside a build script).
    #[error("{0}")]
    Config(String),
}
