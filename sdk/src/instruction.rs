//! An instruction m1: the text the Teacher writes for one query to guide the Student.

use serde::{Deserialize, Serialize};

/// Instructions written by a Teacher (or any instruction writer) for one query.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Instruction {
    /// The instruction text handed to the Student next to the query.
    pub text: String,
}

impl Instruction {
    /// An instruction with the given text.
    pub fn new(text: impl Into<String>) -> Self {
        Instruction { text: text.into() }
    }
}

impl From<&str> for Instruction {
    fn from(text: &str) -> Self {
        Instruction::new(text)
    }
}

impl From<String> for Instruction {
    fn from(text: String) -> Self {
        Instruction { text }
    }
}
