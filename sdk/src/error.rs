//! The SDK's one error type. Every variant says what was expected, what was found and where
//! (file, line, field), so a user can fix their input without reading our code.

use std::path::PathBuf;

/// Everything that can go wrong in `wst-sdk`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A configuration file or value is invalid.
    #[error("config {location}: {message}")]
    Config {
        /// File (and line, when known) or field path.
        location: String,
        /// What was expected and what was found.
        message: String,
    },
    /// A dataset row is invalid.
    #[error("{}:{line}: field `{field}`: {message}", path.display())]
    Dataset {
        /// The dataset file.
        path: PathBuf,
        /// 1-based line of the row (for JSON arrays, the line where the element starts).
        line: usize,
        /// The field that is missing or malformed (`<row>` when the row itself is bad).
        field: String,
        /// What was expected and what was found.
        message: String,
    },
    /// A reward plugin failed to load or to score.
    #[error("reward plugin {}: {message}", path.display())]
    Plugin {
        /// The plugin's `.so` file.
        path: PathBuf,
        /// What went wrong, including the plugin's own error text.
        message: String,
    },
    /// A reward could not score a batch.
    #[error("reward `{reward}`: {message}")]
    Reward {
        /// The reward's name.
        reward: String,
        /// What went wrong.
        message: String,
    },
    /// A Student backend failed.
    #[error("student `{student}`: {message}")]
    Student {
        /// The Student's name.
        student: String,
        /// What went wrong, including the server's message where there is one.
        message: String,
    },
    /// An HTTP Student's request failed, with what an app branches on: the status (`401` a bad
    /// key, `429` a rate limit that outlasted the retries, `400` a bad parameter; `None` when no
    /// answer came: a timeout, a refused connection), the server's error code, whether the
    /// failure was worth retrying, and how many attempts were made.
    #[error("student `{student}`: {message}")]
    Http {
        /// The Student's name.
        student: String,
        /// The last HTTP status, if the server answered.
        status: Option<u16>,
        /// The server's error code (`invalid_api_key`, `insufficient_quota`, ...), if it gave one.
        code: Option<String>,
        /// Whether the failure was transient (retried until the retries ran out).
        retryable: bool,
        /// Attempts made.
        attempts: u32,
        /// What went wrong, with the server's message.
        message: String,
    },
    /// The Teacher model failed to load, sample or train.
    #[error("teacher: {0}")]
    Teacher(String),
    /// A model checkpoint (config, weights or tokenizer) is invalid.
    #[error("model {}: {message}", path.display())]
    Model {
        /// The file or folder involved.
        path: PathBuf,
        /// What was expected and what was found.
        message: String,
    },
    /// A tensor operation failed (shape mismatch, device error, ...). Opaque: the tensor
    /// library's own error type is not part of wst's API.
    #[error("tensor: {0}")]
    Candle(TensorError),
    /// A caller passed an argument outside its documented range.
    #[error("invalid argument `{name}`: {message}")]
    InvalidArgument {
        /// The argument's name.
        name: &'static str,
        /// What was expected and what was found.
        message: String,
    },
    /// Too many queries of a training step failed (Student or reward errors that outlived the
    /// backend's retries); the run wrote a checkpoint of its last completed step and stopped.
    #[error(
        "training step {step}: {failed} of the last {total} queries failed, more than wst.max_failed_fraction = {limit} allows; a checkpoint of the last completed step was written. First error: {first}"
    )]
    StepFailed {
        /// The step (1-based) that failed.
        step: usize,
        /// Queries that failed among the most recent ones.
        failed: usize,
        /// How many recent queries the share is taken over.
        total: usize,
        /// The configured limit.
        limit: f64,
        /// The first failure's message.
        first: String,
    },
    /// A value could not be written as JSON or TOML (nothing is written in its place).
    #[error("cannot serialise {what}: {message}")]
    Serialize {
        /// What was being written (a file name or a record).
        what: String,
        /// The serialiser's message.
        message: String,
    },
    /// A run was interrupted (Ctrl-C) after saving its state.
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(name: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidArgument { name, message: message.into() }
    }

    /// A [`Error::Config`] located in `origin` (a file path): `origin: location`; other errors
    /// are returned as they are.
    pub fn in_file(self, origin: &str) -> Self {
        match self {
            Error::Config { location, message } => Error::Config { location: format!("{origin}: {location}"), message },
            other => other,
        }
    }

    /// Shorthand for [`Error::Serialize`].
    pub fn serialize(what: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Error::Serialize { what: what.into(), message: message.to_string() }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

/// `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A tensor library error, kept opaque so that wst can change its tensor library's version
/// without changing its API; its message and `source()` chain are the library's.
#[derive(Debug)]
pub struct TensorError(Box<candle_core::Error>);

impl std::fmt::Display for TensorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for TensorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

#[doc(hidden)]
impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Candle(TensorError(Box::new(e)))
    }
}
