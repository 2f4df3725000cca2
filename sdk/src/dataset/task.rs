//! Per-task row conventions: GSM8K golds after `####`, MATH golds in the last `\boxed{}`,
//! HH-RLHF prompts cut from `"\n\nHuman: ... \n\nAssistant:"` dialogues.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How rows of a known benchmark are turned into queries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DataTask {
    /// Fields are used as they are.
    #[default]
    Generic,
    /// GSM8K: a gold written as a worked solution keeps only what follows the last `####`.
    Gsm8k,
    /// MATH / MATH-500: a gold written as a solution keeps only its last `\boxed{...}`.
    Math,
    /// HH-RLHF: the query is the dialogue up to its last `Assistant:` turn (the reply is cut).
    HhRlhf,
}

impl DataTask {
    /// The query text of a row under this task.
    pub fn query(self, text: &str) -> Result<String, String> {
        match self {
            DataTask::HhRlhf => hh_prompt(text),
            _ => Ok(text.to_string()),
        }
    }

    /// The gold answer of a row under this task.
    pub fn gold(self, gold: &str) -> Result<String, String> {
        match self {
            DataTask::Gsm8k => Ok(match gold.rfind("####") {
                Some(i) => gold[i + 4..].trim().replace(',', "").trim_start_matches('$').to_string(),
                None => gold.trim().to_string(),
            }),
            DataTask::Math => Ok(if gold.contains("\\boxed") { last_boxed(gold).ok_or_else(|| format!("unbalanced \\boxed{{}} in {gold:?}"))? } else { gold.trim().to_string() }),
            _ => Ok(gold.to_string()),
        }
    }
}

/// The content of the last `\boxed{...}` (or `\fbox{...}`), braces matched.
pub fn last_boxed(s: &str) -> Option<String> {
    let start = s.rfind("\\boxed").or_else(|| s.rfind("\\fbox"))?;
    let open = start + s[start..].find('{')?;
    let mut depth = 0usize;
    for (i, c) in s[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(s[open + 1..open + i].to_string());
                }
            }
            _ => {}
        }
    }
    None
}

/// The HH-RLHF prompt: everything up to and including the last `\n\nAssistant:`.
fn hh_prompt(dialogue: &str) -> Result<String, String> {
    const TAG: &str = "\n\nAssistant:";
    let at = dialogue.rfind(TAG).ok_or_else(|| "no \"\\n\\nAssistant:\" turn in the dialogue".to_string())?;
    if !dialogue[..at].contains("Human:") {
        return Err("no \"Human:\" turn before the last Assistant turn".into());
    }
    Ok(dialogue[..at + TAG.len()].trim_start().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm8k_gold_is_the_number_after_the_marks() {
        assert_eq!(DataTask::Gsm8k.gold("2+2=<<2+2=4>>4\n#### 1,234").unwrap(), "1234");
        assert_eq!(DataTask::Gsm8k.gold("18").unwrap(), "18");
    }

    #[test]
    fn math_gold_is_the_last_boxed_with_nested_braces() {
        assert_eq!(DataTask::Math.gold("so $\\boxed{1}$ then $\\boxed{\\frac{1}{2}}$.").unwrap(), "\\frac{1}{2}");
        assert_eq!(DataTask::Math.gold("\\frac{3}{4}").unwrap(), "\\frac{3}{4}");
        assert!(DataTask::Math.gold("\\boxed{\\frac{1}{2}").is_err());
    }

    #[test]
    fn hh_rlhf_prompt_stops_at_the_last_assistant_turn() {
        let d = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: How do I bake bread?\n\nAssistant: Mix flour...";
        assert_eq!(DataTask::HhRlhf.query(d).unwrap(), "Human: Hi\n\nAssistant: Hello!\n\nHuman: How do I bake bread?\n\nAssistant:");
        assert!(DataTask::HhRlhf.query("no dialogue").is_err());
    }
}
