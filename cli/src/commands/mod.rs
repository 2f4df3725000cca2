//! One module per subcommand.

pub mod config;
pub mod demo;
pub mod eval;
pub mod generate;
pub mod instruct;
pub mod models;
pub mod plot;
pub mod schema;
pub mod score;
pub mod serve;
pub mod train;

/// A command-line argument out of its range (exit status 2, like clap's own usage errors).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
