//! One module per subcommand.

pub mod config;
pub mod schema;
pub mod score;
