//! How (query, instruction) becomes the Student's chat messages. The paper hands the Student
//! the query together with the Teacher's instructions; the wording is a user-editable template.

use minijinja::context;
use serde::{Deserialize, Serialize};

use super::ChatMessage;
use crate::error::Result;
use crate::instruction::Instruction;
use crate::query::Query;
use crate::template::Template;

/// The default user-message template: the query, then the instructions when there are any.
pub const DEFAULT_STUDENT_TEMPLATE: &str = "{{ query }}{% if instruction %}\n\nInstructions from a teacher to help you answer:\n{{ instruction }}{% endif %}";

/// Renders a query and an optional instruction into Student messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct StudentPrompt {
    /// Optional system message sent before the user message.
    pub system: Option<String>,
    /// Jinja template of the user message; variables: `query`, `instruction` (empty when none),
    /// `gold` is deliberately not available.
    pub template: String,
}

impl Default for StudentPrompt {
    fn default() -> Self {
        StudentPrompt { system: None, template: DEFAULT_STUDENT_TEMPLATE.to_string() }
    }
}

impl StudentPrompt {
    /// The messages for `query` with an optional instruction.
    pub fn render(&self, query: &Query, instruction: Option<&Instruction>) -> Result<Vec<ChatMessage>> {
        let t = Template::strict("student.prompt.template", self.template.clone())?;
        let user = t.render(context! {
            query => query.text.as_str(),
            instruction => instruction.map(|i| i.text.as_str()).unwrap_or(""),
        })?;
        let mut messages = Vec::with_capacity(2);
        if let Some(system) = &self.system {
            messages.push(ChatMessage::system(system.clone()));
        }
        messages.push(ChatMessage::user(user));
        Ok(messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_instruction_the_student_sees_only_the_query() {
        let m = StudentPrompt::default().render(&Query::new("1", "2+2?"), None).unwrap();
        assert_eq!(m, vec![ChatMessage::user("2+2?")]);
    }

    #[test]
    fn the_instruction_follows_the_query() {
        let p = StudentPrompt { system: Some("sys".into()), ..Default::default() };
        let m = p.render(&Query::new("1", "2+2?"), Some(&"Add.".into())).unwrap();
        assert_eq!(m[0], ChatMessage::system("sys"));
        assert!(m[1].content.starts_with("2+2?") && m[1].content.ends_with("Add."));
    }
}
