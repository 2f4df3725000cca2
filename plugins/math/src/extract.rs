//! Finding the final answer in a Student's text: the last `\boxed{}`/`\fbox{}` (brace matched),
//! then "final answer is", "the answer is", "the correct option is", GSM8K's `#### N`,
//! "answer:", then the result the last sentence states ("… the area is $3\pi$ square units",
//! "the solutions are 376 and 625", or its last inline formula's right-hand side), then a bare
//! multiple-choice letter, then the last number. A stated result wins over earlier
//! intermediate values. Gold answers are read the same way (GSM8K solutions end in `#### N`,
//! MATH in `\boxed{}`).

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
    Some(result_of(v).to_string())
}

/// "5 + 3 = 8" is 8: the value after the last equals sign when what precedes it is arithmetic
/// (digits and operators, no letters: `x = -2 and x = 5` stays whole).
fn result_of(v: &str) -> &str {
    match v.rsplit_once('=') {
        Some((lhs, rhs)) if !rhs.trim().is_empty() && lhs.chars().any(|c| c.is_ascii_digit()) && !lhs.chars().any(|c| c.is_alphabetic()) => rhs.trim(),
        _ => v,
    }
}

/// The last sentence of `text` that holds a digit or a formula.
fn last_sentence(text: &str) -> Option<&str> {
    let mut end = text.len();
    loop {
        let head = &text[..end];
        // A sentence ends at a newline or at ". ", "! ", "? " (not at the point of 3.5).
        let start =
            head.char_indices().rev().find(|&(i, c)| c == '\n' || (matches!(c, '.' | '!' | '?') && head[i + 1..].starts_with(' ') && i + 1 < head.len())).map_or(0, |(i, _)| i + 1);
        let s = head[start..].trim();
        if s.chars().any(|c| c.is_ascii_digit()) || s.contains('$') || s.contains("\\(") {
            return Some(s);
        }
        if start == 0 {
            return None;
        }
        end = start - 1;
    }
}

/// Inline formulas `$...$` / `\(...\)` of a sentence, in order.
fn inline_math(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        let (open, close) = match (rest.find('$'), rest.find("\\(")) {
            (Some(a), Some(b)) if b < a => (b, "\\)"),
            (Some(a), _) => (a, "$"),
            (None, Some(b)) => (b, "\\)"),
            (None, None) => return out,
        };
        let skip = if close == "$" { 1 } else { 2 };
        let after = &rest[open + skip..];
        let Some(len) = after.find(close) else { return out };
        out.push(after[..len].trim());
        rest = &after[len + close.len()..];
    }
}

/// The result the last sentence states: after its last "is"/"are"/"equals"/"=" when that reads
/// as mathematics (units and currency aside), else its last formula's right-hand side.
fn stated_result(text: &str) -> Option<String> {
    let s = last_sentence(text)?.trim_end_matches(['.', '!', '?']);
    let verb = [" is ", " are ", " equals ", " equal to ", " was ", " were ", " be ", " becomes ", " gives "].iter().filter_map(|v| s.rfind(v).map(|i| i + v.len())).max();
    if let Some(at) = verb {
        let tail = s[at..].trim().trim_end_matches([',', ';', ':']);
        let candidate = result_of(tail);
        if crate::answer::reads_as_math(candidate) {
            return Some(candidate.to_string());
        }
    }
    let math = inline_math(s);
    let last = math.last()?;
    let rhs = match crate::answer::parse(last).0 {
        crate::answer::Answer::Equation(..) => last.rsplit_once('=').map_or(*last, |(_, r)| r.trim()),
        _ => result_of(last),
    };
    crate::answer::reads_as_math(rhs).then(|| rhs.to_string())
}

/// A whole text that is just a multiple-choice letter: `**(B)**`, `(C).`, `D`.
fn bare_choice(text: &str) -> Option<String> {
    let t = text.trim().trim_matches('*').trim().trim_end_matches('.').trim().trim_matches('*').trim();
    let inner = t.strip_prefix('(').and_then(|x| x.strip_suffix(')')).unwrap_or(t);
    (inner.len() == 1 && inner.chars().all(|c| ('A'..='E').contains(&c))).then(|| inner.to_string())
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
            while j < c.len() && (c[j].is_ascii_digit() || ((c[j] == ',' || c[j] == '.' || c[j] == '/') && j + 1 < c.len() && c[j + 1].is_ascii_digit())) {
                j += 1;
            }
            // A percent sign belongs to the number ("12.5%").
            if j < c.len() && c[j] == '%' {
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
    for anchor in ["final answer is", "final answer:", "the answer is", "answer is", "correct option is", "correct choice is", "the option is"] {
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
    if let Some(v) = stated_result(text) {
        return Some(v);
    }
    if let Some(c) = bare_choice(text) {
        return Some(c);
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
