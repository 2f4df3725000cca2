//! # wst-serve: a trained Teacher behind an OpenAI-compatible endpoint
//!
//! Apps that speak OpenAI's Chat Completions API use a trained Teacher by changing one base URL.
//! For each request the Teacher writes an instruction for the last user turn (requests that
//! arrive together share one Teacher batch), and the Student answers the conversation with the
//! instruction placed as in training, through [`wst_sdk::Pipeline::respond_with`], the same call
//! a Rust app makes. Answers come whole or streamed as server-sent events, in OpenAI's format.
//!
//! ```no_run
//! # async fn run(pipeline: wst_sdk::Pipeline) -> std::io::Result<()> {
//! use std::sync::Arc;
//! use wst_serve::{ServeOptions, ServedModel, Server};
//! let server = Server::new(ServeOptions::default());
//! server.set_models(vec![ServedModel { name: "gsm8k".into(), pipeline: Arc::new(pipeline) }]).expect("distinct names");
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! server.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

#![warn(missing_docs)]

mod batcher;
mod body;
mod chat;
mod error;
mod limits;
pub mod metrics;
pub mod schema;
mod server;

pub use chat::{INSTRUCTION_HEADER, percent_encode};
pub use error::ApiError;
pub use server::{ServeOptions, ServedModel, Server};
