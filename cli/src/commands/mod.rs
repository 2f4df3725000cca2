//! One module per subcommand.

pub mod config;
pub mod instruct;
pub mod schema;
pub mod score;
