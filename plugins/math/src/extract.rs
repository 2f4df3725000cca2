//! Finding the final answer in a Student's text: the last `\boxed{}`/`\fbox{}` (brace matched),
//! then "final answer is", "the answer is", GSM8K's `#### N`, "answer:", then the last number.
//! Gold answers are read the same way (GSM8K solutions end in `#### N`, MATH in `\boxed{}`).

use crate::normalize::matching_brace;

/// The content of the last `\boxed{...}` or `\fbox{...}` (also `\boxed 5`).
pub fn last_boxed(text: &str) -> Option<String> {
    let idx = ["\\boxed", "\\fbox"].iter().filter_map(|p| text.rfind(p).map(|i| (i, p.len()))).max_by_key(|(i, _)| *i)?;
    let after = idx.0 + idx.1;
    let rest = &text[after..];
    if rest.starts_with('{') {
        let close = matching_brace(text, after)?;
        return Some(text[after + 1..close].to_string());
    }
    if let Some(r) = rest.strip_prefix(' ') {
        let end = r.find(['$', '\n']).unwrap_or(r.len());
        let v = r[..end].trim();
        return (!v.is_empty()).then(|| v.to_string());
    }
    None
}

/// Text after the last case-insensitive `anchor`, up to the end of its sentence or line.
fn after_anchor(text: &str, anchor: &str) -> Option<String> {
    let lower = text.to_lowercase();
    // to_lowercase can change byte lengths for non-ASCII text; fall back to ASCII lowering then.
    let hay = if lower.len() == text.len() { lower } else { text.to_ascii_lowercase() };
    let i = hay.rfind(anchor)?;
    let rest = text[i + anchor.len()..].trim_start_matches([':', ' ', '*', '\t']);
    let line = rest.split('\n').next().unwrap_or("");
    // Sentence end: a full stop followed by a space, or the end of the line.
    let mut end = line.len();
    let b = line.as_bytes();
    for (j, c) in b.iter().enumerate() {
        if *c == b'.' && (j + 1 == b.len() || b[j + 1] == b' ') && !(j > 0 && b[j - 1].is_ascii_digit() && j + 1 < b.len() && b[j + 1].is_ascii_digit()) {
            end = j;
            break;
        }
    }
    let v = line[..end].trim().trim_end_matches(['.', '*']).trim();
    if v.is_empty() {
        return None;
    }
    // "5 + 3 = 8": the value after the last equals sign.
    let v = match v.rsplit_once('=') {
        Some((lhs, rhs)) if !rhs.trim().is_empty() && lhs.chars().any(|c| c.is_ascii_digit()) => rhs.trim(),
        _ => v,
    };
    Some(v.to_string())
}

/// The last number in `text` (with sign, thousands separators, decimals or a `a/b` fraction).
pub fn last_number(text: &str) -> Option<String> {
    let c: Vec<char> = text.chars().collect();
    let mut found = None;
    let mut i = 0;
    while i < c.len() {
        if c[i].is_ascii_digit() {
            let mut start = i;
            if start > 0 && c[start - 1] == '-' {
                start -= 1;
            }
            let mut j = i;
            while j < c.len()
                && (c[j].is_ascii_digit()
                    || ((c[j] == ',' || c[j] == '.' || c[j] == '/') && j + 1 < c.len() && c[j + 1].is_ascii_digit()))
            {
                j += 1;
            }
            found = Some(c[start..j].iter().collect::<String>());
            i = j;
        } else {
            i += 1;
        }
    }
    found
}

/// The final answer of a Student's text, or None when it contains no answer at all.
pub fn extract_answer(text: &str) -> Option<String> {
    if let Some(b) = last_boxed(text) {
        return Some(b);
    }
    for anchor in ["final answer is", "final answer:", "the answer is", "answer is"] {
        if let Some(v) = after_anchor(text, anchor) {
            return Some(v);
        }
    }
    if let Some(i) = text.rfind("####") {
        let v = text[i + 4..].split('\n').next().unwrap_or("").trim();
        if !v.is_empty() {
            return Some(v.to_string());
        }
    }
    if let Some(v) = after_anchor(text, "answer:") {
        return Some(v);
    }
    last_number(text)
}

/// The gold answer: after GSM8K's `####`, else the last `\boxed{}`, else the text itself.
pub fn extract_gold(gold: &str) -> String {
    if let Some(i) = gold.rfind("####") {
        return gold[i + 4..].trim().to_string();
    }
    last_boxed(gold).unwrap_or_else(|| gold.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxed_with_nested_braces() {
        assert_eq!(last_boxed("a \\boxed{1} then \\boxed{\\frac{1}{2}} end").as_deref(), Some("\\frac{1}{2}"));
        assert_eq!(last_boxed("\\fbox{7}").as_deref(), Some("7"));
        assert_eq!(last_boxed("$\\boxed 5$").as_deref(), Some("5"));
    }

    #[test]
    fn anchors_and_fallbacks() {
        assert_eq!(extract_answer("So the final answer is 42. Done").as_deref(), Some("42"));
        assert_eq!(extract_answer("The answer is $3.50.").as_deref(), Some("$3.50"));
        assert_eq!(extract_answer("Work...\n#### 1,000").as_deref(), Some("1,000"));
        assert_eq!(extract_answer("I got 3 then 7 and finally 12.").as_deref(), Some("12"));
        assert_eq!(extract_answer("The answer is 5 + 3 = 8.").as_deref(), Some("8"));
        assert_eq!(extract_answer("no digits here"), None);
    }

    #[test]
    fn gold_formats() {
        assert_eq!(extract_gold("She pays 3*2=<<3*2=6>>6 dollars.\n#### 6"), "6");
        assert_eq!(extract_gold("so $\\boxed{\\frac{3}{4}}$"), "\\frac{3}{4}");
        assert_eq!(extract_gold("(1, 2)"), "(1, 2)");
    }
}
