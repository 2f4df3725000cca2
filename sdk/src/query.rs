//! A query q: the task the Student must answer, with its gold answer when the task has one.

use serde::{Deserialize, Serialize};

/// One task for the Student (a GSM8K problem, an HH-RLHF prompt, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Query {
    /// Stable identifier, used to cache the Student's baseline and to resume runs.
    pub id: String,
    /// The text shown to the Teacher and the Student.
    pub text: String,
    /// The reference answer, for rewards that need one (math accuracy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gold: Option<String>,
    /// Free per-query data handed to rewards unchanged (source, difficulty, ...).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl Query {
    /// A query with an id and a text, no gold answer and no metadata.
    pub fn new(id: impl Into<String>, text: impl Into<String>) -> Self {
        Query { id: id.into(), text: text.into(), gold: None, metadata: Default::default() }
    }

    /// The same query with a gold answer.
    pub fn with_gold(mut self, gold: impl Into<String>) -> Self {
        self.gold = Some(gold.into());
        self
    }
}
