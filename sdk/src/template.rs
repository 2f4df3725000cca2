//! Jinja templates (minijinja with Python-compatible string methods), used for chat templates
//! from checkpoints and for the prompts wst builds around queries and instructions.

use minijinja::{Environment, UndefinedBehavior, Value};

use crate::error::{Error, Result};

/// A compiled Jinja template. Undefined variables are errors, so a typo in a user template is
/// reported instead of silently rendering as empty text.
#[derive(Debug)]
pub struct Template {
    env: Environment<'static>,
    source_name: String,
}

impl Template {
    /// Compiles `source`; `name` says where it came from (a file or config field) in errors.
    pub fn new(name: impl Into<String>, source: impl Into<String>) -> Result<Self> {
        Self::compile(Self::environment(), name.into(), source.into())
    }

    /// A chat template from a checkpoint: compiled with `trim_blocks` and `lstrip_blocks`, as
    /// transformers and TGI compile them (a newline after a block tag and indentation before
    /// one are not output).
    pub fn chat(name: impl Into<String>, source: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let mut env = Self::environment();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| Error::Config { location: name.clone(), message: format!("template syntax: {e}") })?;
        env.set_syntax(syntax);
        Self::compile(env, name, source.into())
    }

    fn environment() -> Environment<'static> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env
    }

    fn compile(mut env: Environment<'static>, name: String, source: String) -> Result<Self> {
        env.add_template_owned(name.clone(), source).map_err(|e| Error::Config { location: name.clone(), message: format!("invalid template: {e:#}") })?;
        Ok(Template { env, source_name: name })
    }

    /// Like [`Template::new`] but an undefined variable is an error when rendering.
    pub fn strict(name: impl Into<String>, source: impl Into<String>) -> Result<Self> {
        let mut t = Self::new(name, source)?;
        t.env.set_undefined_behavior(UndefinedBehavior::Strict);
        Ok(t)
    }

    /// Renders the template with `ctx` (usually `minijinja::context!`, or `Value::from(Serde(x))`).
    pub fn render(&self, ctx: impl Into<Value>) -> Result<String> {
        let tmpl = self.env.get_template(&self.source_name).map_err(|e| Error::Config { location: self.source_name.clone(), message: e.to_string() })?;
        tmpl.render(ctx).map_err(|e| Error::Config { location: self.source_name.clone(), message: format!("cannot render template: {e:#}") })
    }
}

fn raise_exception(msg: String) -> std::result::Result<String, minijinja::Error> {
    Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn renders_python_style_string_methods() {
        let t = Template::new("t", "{{ x.strip().upper() }}").unwrap();
        assert_eq!(t.render(context! { x => "  hi " }).unwrap(), "HI");
    }

    #[test]
    fn strict_templates_reject_undefined_variables() {
        let t = Template::strict("user_template", "{{ querry }}").unwrap();
        let err = t.render(context! { query => "q" }).unwrap_err().to_string();
        assert!(err.contains("user_template"), "{err}");
    }

    #[test]
    fn syntax_errors_name_the_template() {
        let err = Template::new("student.template", "{% if %}").unwrap_err().to_string();
        assert!(err.contains("student.template"), "{err}");
    }
}
