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
pub mod train;
