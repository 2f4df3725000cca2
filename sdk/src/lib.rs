//! # wst-sdk: Weak-to-Strong Transfer
//!
//! A small **Teacher** model writes per-query instructions that make a much larger **Student**
//! answer better; the Teacher is trained with GRPO on the Student's outcomes (Ge, Li and Huang,
//! 2025). This crate holds the domain types, the traits that join the parts ([`Teacher`],
//! [`Student`], [`Reward`]), the GRPO maths, the configuration tree, dataset loaders, the reward
//! plugin host and the [`Pipeline`]. Student backends and reward plugins live in their own crates.
//!
//! ```no_run
//! # async fn run(student: impl wst_sdk::Student + 'static) -> wst_sdk::Result<()> {
//! use wst_sdk::{Pipeline, Query};
//! let pipeline = Pipeline::builder().student(student).build()?;
//! let answers = pipeline.answer(&Query::new("q1", "What is 2 + 3?"), None, 2).await?;
//! println!("{}", answers[0].text);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

#[cfg(feature = "mimalloc")]
pub mod alloc;
pub mod backend;
pub mod chat_template;
pub mod config;
pub mod dataset;
mod error;
pub mod eval;
pub mod grpo;
mod instruction;
pub mod models;
mod pipeline;
mod query;
pub mod reward;
mod score;
pub mod student;
pub mod teacher;
pub mod template;
pub mod train;
pub mod types;

pub use error::{Error, Result, TensorError};
pub use instruction::Instruction;
pub use pipeline::{Pipeline, PipelineBuilder, PipelineParts, respond, rewards_from_config};
pub use query::Query;
pub use reward::{Reward, RewardInput};
pub use score::{Score, Weights, mean_by_name};
pub use student::{ChatMessage, SamplingParams, Student, StudentRequest, StudentSample};
pub use teacher::{Teacher, TeacherSample, TeacherSampling};
pub use train::{TrainOptions, TrainSummary};

/// The README's examples, compiled as doc tests so they cannot rot.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
