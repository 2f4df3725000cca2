//! Writes a config as TOML with every field's documentation as a comment above it, taken from
//! the JSON Schema, so `wst config init` never drifts from the code.

use serde_json::{Map, Value};

/// `value` (a config serialised to JSON) as commented TOML, documented from `schema`.
/// Unset optional fields are listed as comments so users see that they exist.
pub fn commented_toml(schema: &Value, value: &Value, header: &str) -> String {
    let mut out = String::new();
    for line in header.lines() {
        out.push_str(&format!("# {line}\n"));
    }
    let empty = Map::new();
    emit_table(&mut out, &[], schema, schema, value.as_object().unwrap_or(&empty));
    out
}

/// Follows `$ref` and unwraps `Option<T>` (`anyOf: [T, null]`) to the schema that matters.
fn resolve<'a>(root: &'a Value, mut s: &'a Value) -> &'a Value {
    for _ in 0..8 {
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            let name = r.rsplit('/').next().unwrap_or_default();
            match root.get("$defs").and_then(|d| d.get(name)) {
                Some(t) => s = t,
                None => return s,
            }
        } else if let Some(any) = s.get("anyOf").and_then(Value::as_array) {
            match any.iter().find(|v| v.get("type").and_then(Value::as_str) != Some("null")) {
                Some(t) => s = t,
                None => return s,
            }
        } else {
            return s;
        }
    }
    s
}

fn description(root: &Value, prop: &Value) -> Option<String> {
    let mut d = prop.get("description").and_then(Value::as_str).map(str::to_string);
    let resolved = resolve(root, prop);
    if d.is_none() {
        d = resolved.get("description").and_then(Value::as_str).map(str::to_string);
    }
    let choices: Vec<String> = if let Some(e) = resolved.get("enum").and_then(Value::as_array) {
        e.iter().filter_map(Value::as_str).map(str::to_string).collect()
    } else if let Some(one) = resolved.get("oneOf").and_then(Value::as_array) {
        one.iter().filter_map(|v| v.get("const").and_then(Value::as_str).map(str::to_string)).collect()
    } else {
        Vec::new()
    };
    let listed = d.as_deref().is_some_and(|d| choices.iter().all(|c| d.contains(c.as_str())));
    if !choices.is_empty() && !listed {
        let c = format!("One of: {}.", choices.join(" | "));
        d = Some(match d {
            Some(d) => format!("{d}\n{c}"),
            None => c,
        });
    }
    d
}

fn comment(out: &mut String, text: &str) {
    for line in text.lines() {
        out.push_str(&format!("# {line}\n"));
    }
}

fn key(k: &str) -> String {
    if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') { k.to_string() } else { Value::String(k.to_string()).to_string() }
}

fn is_table(v: &Value) -> bool {
    matches!(v, Value::Object(m) if !m.is_empty())
}

fn is_table_array(v: &Value) -> bool {
    matches!(v, Value::Array(a) if !a.is_empty() && a.iter().all(is_table))
}

fn inline(v: &Value) -> String {
    match toml::Value::try_from(v) {
        Ok(t) => t.to_string(),
        Err(_) => v.to_string(),
    }
}

fn emit_table(out: &mut String, path: &[String], root: &Value, schema: &Value, value: &Map<String, Value>) {
    let schema = resolve(root, schema);
    let props = schema.get("properties").and_then(Value::as_object);
    // Declared order from the schema first (it follows the struct), then any map keys.
    let mut keys: Vec<String> = props.map(|p| p.keys().cloned().collect()).unwrap_or_default();
    for k in value.keys() {
        if !keys.contains(k) {
            keys.push(k.clone());
        }
    }
    let prop_schema = |k: &str| -> Value { props.and_then(|p| p.get(k).cloned()).or_else(|| schema.get("additionalProperties").cloned()).unwrap_or(Value::Bool(true)) };
    // Plain values must come before sub-tables in TOML.
    for k in &keys {
        let ps = prop_schema(k);
        match value.get(k) {
            None | Some(Value::Null) => {
                if let Some(d) = description(root, &ps) {
                    out.push('\n');
                    comment(out, &d);
                }
                out.push_str(&format!("# {} = (unset)\n", key(k)));
            }
            Some(v) if !is_table(v) && !is_table_array(v) => {
                if let Some(d) = description(root, &ps) {
                    out.push('\n');
                    comment(out, &d);
                }
                out.push_str(&format!("{} = {}\n", key(k), inline(v)));
            }
            _ => {}
        }
    }
    for k in &keys {
        let ps = prop_schema(k);
        let mut sub = path.to_vec();
        sub.push(key(k));
        match value.get(k) {
            Some(v @ Value::Object(m)) if is_table(v) => {
                out.push('\n');
                if let Some(d) = description(root, &ps) {
                    comment(out, &d);
                }
                out.push_str(&format!("[{}]\n", sub.join(".")));
                emit_table(out, &sub, root, &ps, m);
            }
            Some(v @ Value::Array(items)) if is_table_array(v) => {
                let item_schema = resolve(root, &ps).get("items").cloned().unwrap_or(Value::Bool(true));
                if let Some(d) = description(root, &ps) {
                    out.push('\n');
                    comment(out, &d);
                }
                for item in items {
                    out.push_str(&format!("\n[[{}]]\n", sub.join(".")));
                    if let Value::Object(m) = item {
                        emit_table(out, &sub, root, &item_schema, m);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WstConfig;

    #[test]
    fn commented_default_parses_back_to_the_default() {
        let c = WstConfig::default();
        let text = commented_toml(&WstConfig::json_schema(), &serde_json::to_value(&c).unwrap(), "header");
        assert!(text.contains("# Instructions sampled per query"), "{text}");
        assert!(text.contains("# One of: keep | skip | resample.") || text.contains("keep | skip | resample"), "{text}");
        assert!(text.contains("# One of: auto | jsonl | json | parquet."), "{text}");
        assert!(text.contains("# epsilon_high = (unset)"), "{text}");
        let back = WstConfig::from_toml_str(&text, "init.toml").unwrap();
        assert_eq!(back, c);
    }
}
