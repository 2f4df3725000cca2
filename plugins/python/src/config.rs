//! The `python` reward's configuration, shared by the plugin and its Python-linked half.

use std::path::PathBuf;

/// Configuration of the `python` reward: which function of which file, and what it returns.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PythonConfig {
    /// The Python file that defines the reward function (relative to the working directory).
    pub file: PathBuf,
    /// The function, called as TRL calls one: `function(prompts=..., completions=..., **columns)`.
    pub function: String,
    /// Names of the values: one for a function that returns a list of floats, the keys for one
    /// that returns a dict of lists. Default: the function's name.
    #[serde(default)]
    pub values: Vec<String>,
    /// Pass prompts and completions as chat messages (TRL's conversational form, the default:
    /// wst's Students are chat models) or as plain text.
    #[serde(default = "yes")]
    pub conversational: bool,
    /// The interpreter whose environment the reward runs in. Default: `$VIRTUAL_ENV/bin/python`
    /// when a virtual environment is active, else `python3` on `PATH`.
    #[serde(default)]
    pub python: Option<PathBuf>,
}

fn yes() -> bool {
    true
}

impl PythonConfig {
    /// The value names the reward gives: `values`, or the function's name.
    pub fn value_names(&self) -> Vec<String> {
        if self.values.is_empty() { vec![self.function.clone()] } else { self.values.clone() }
    }
}

/// What the Python-linked half is created with: the user's config and the chosen interpreter's
/// `sys.path` (its virtual environment and `.pth` files included).
#[derive(Debug, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbedConfig {
    /// The user's configuration.
    pub reward: PythonConfig,
    /// `sys.path` as the chosen interpreter has it.
    pub sys_path: Vec<String>,
}
