//! Structured answers (numbers and expressions, tuples, intervals, sets, unions, equations,
//! multiple-choice letters) and the equivalence between a prediction and a gold answer.

use crate::expr::{self, Expr};
use crate::normalize::{Normalized, normalize};
use crate::number::Num;

/// A parsed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A number or expression.
    Expr(Expr),
    /// An ordered tuple `(a, b)` or a matrix row list.
    Tuple(Vec<Answer>),
    /// An interval with its closedness: `[a, b)` is (true, a, b, false).
    Interval(bool, Expr, Expr, bool),
    /// An unordered collection: `\{a, b\}` or a bare list `a, b`.
    Set(Vec<Answer>),
    /// A union of intervals or sets.
    Union(Vec<Answer>),
    /// An equation `lhs = rhs` that is not a plain `x = value`.
    Equation(Expr, Expr),
    /// A multiple-choice letter.
    Choice(char),
    /// Anything else, compared as normalised text.
    Text(String),
}

/// Splits on `sep` at bracket depth 0.
fn split_top(s: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    let mut prev = ' ';
    for c in s.chars() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
        // `\{` counts as a bracket too; the `{` above already did.
        if c == sep && depth == 0 && prev != '\\' {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
        prev = c;
    }
    parts.push(cur);
    parts.into_iter().map(|p| p.trim().to_string()).collect()
}

/// Whether the outer brackets of `s` enclose all of it (`(a)(b)` does not).
fn wrapped(s: &str, open: char, close: char) -> bool {
    if !(s.starts_with(open) && s.ends_with(close)) || s.len() < 2 {
        return false;
    }
    let mut depth = 0i32;
    let n = s.chars().count();
    for (i, c) in s.chars().enumerate() {
        if "([{".contains(c) {
            depth += 1;
        } else if ")]}".contains(c) {
            depth -= 1;
            if depth == 0 && i + 1 < n {
                return false;
            }
        }
    }
    true
}

fn choice_letter(s: &str) -> Option<char> {
    let t = s.trim().trim_start_matches('(').trim_end_matches([')', '.', ':']).trim();
    let mut chars = t.chars();
    let c = chars.next()?;
    (chars.next().is_none() && c.is_ascii_uppercase() && ('A'..='E').contains(&c)).then_some(c)
}

fn matrix_rows(s: &str) -> Option<Answer> {
    let begin = ["pmatrix", "bmatrix", "matrix", "vmatrix"].iter().find(|m| s.starts_with(&format!("\\begin{{{m}}}")))?;
    let inner = s.strip_prefix(&format!("\\begin{{{begin}}}"))?.strip_suffix(&format!("\\end{{{begin}}}"))?;
    let rows: Vec<Answer> = inner
        .split("\\\\")
        .filter(|r| !r.trim().is_empty())
        .map(|r| Answer::Tuple(r.split('&').map(|x| parse_norm(x.trim())).collect()))
        .collect();
    Some(if rows.len() == 1 { rows.into_iter().next()? } else { Answer::Tuple(rows) })
}

/// Parses an already normalised answer.
fn parse_norm(s: &str) -> Answer {
    let s = s.trim();
    if let Some(m) = matrix_rows(s) {
        return m;
    }
    if s.contains("\\cup") {
        return Answer::Union(s.split("\\cup").map(|p| parse_norm(p.trim())).collect());
    }
    if s.starts_with("\\{") && s.ends_with("\\}") {
        let inner = &s[2..s.len() - 2];
        return Answer::Set(split_top(inner, ',').iter().filter(|p| !p.is_empty()).map(|p| parse_norm(p)).collect());
    }
    // "x \in [1, 2]": keep the set.
    if let Some(i) = s.find("\\in")
        && !s[i + 3..].starts_with(|c: char| c.is_ascii_alphabetic())
        && s[..i].trim().chars().count() <= 2
    {
        return parse_norm(&s[i + 3..]);
    }
    for (open, close) in [('(', ')'), ('[', ']'), ('(', ']'), ('[', ')')] {
        if s.starts_with(open) && s.ends_with(close) && (wrapped(s, open, close) || open != close) {
            let inner = &s[1..s.len() - 1];
            let parts = split_top(inner, ',');
            if parts.len() >= 2 {
                if open == '(' && close == ')' {
                    return Answer::Tuple(parts.iter().map(|p| parse_norm(p)).collect());
                }
                if parts.len() == 2
                    && let (Some(a), Some(b)) = (expr::parse(&parts[0]), expr::parse(&parts[1]))
                {
                    return Answer::Interval(open == '[', a, b, close == ']');
                }
                if open == '[' && close == ']' {
                    return Answer::Tuple(parts.iter().map(|p| parse_norm(p)).collect());
                }
            }
        }
    }
    let parts = split_top(s, ',');
    if parts.len() >= 2 && parts.iter().all(|p| !p.is_empty()) {
        return Answer::Set(parts.iter().map(|p| parse_norm(p)).collect());
    }
    if let Some(c) = choice_letter(s) {
        return Answer::Choice(c);
    }
    let sides = split_top(s, '=');
    if sides.len() == 2 {
        let lhs = sides[0].trim();
        // "x = 3", "y=2x+1" and "f(x) = ..." all mean the right-hand side.
        let starts_var = lhs.starts_with(|c: char| c.is_alphabetic() || c == '\\');
        let simple_lhs = starts_var && lhs.chars().count() <= 2
            || (starts_var && lhs.split('_').next().is_some_and(|v| v.chars().count() == 1))
            || (lhs.ends_with(')') && lhs.chars().take_while(|c| c.is_alphabetic()).count() == 1);
        if simple_lhs {
            return parse_norm(&sides[1]);
        }
        if let (Some(a), Some(b)) = (expr::parse(lhs), expr::parse(&sides[1])) {
            return Answer::Equation(a, b);
        }
    }
    match expr::parse(s) {
        Some(e) => Answer::Expr(e),
        None => Answer::Text(s.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_lowercase()),
    }
}

/// Parses a raw answer: normalisation, then structure.
pub fn parse(raw: &str) -> (Answer, bool) {
    let Normalized { text, percent } = normalize(raw);
    (parse_norm(&text), percent)
}

fn scaled(e: &Expr, factor: Num) -> Expr {
    Expr::Mul(Box::new(e.clone()), Box::new(Expr::Num(factor)))
}

/// Whether `pred` answers `gold`. `percent` allows the ×100 / ÷100 readings of a percentage.
fn equiv(pred: &Answer, gold: &Answer, percent: bool) -> bool {
    use Answer::*;
    match (pred, gold) {
        (Expr(a), Expr(b)) => {
            expr::equivalent(a, b)
                || (percent
                    && (expr::equivalent(&scaled(a, Num::rat(1, 100).unwrap_or(Num::int(0))), b)
                        || expr::equivalent(a, &scaled(b, Num::rat(1, 100).unwrap_or(Num::int(0))))))
        }
        (Tuple(a), Tuple(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| equiv(x, y, percent)),
        (Interval(l1, a1, b1, r1), Interval(l2, a2, b2, r2)) => {
            l1 == l2 && r1 == r2 && expr::equivalent(a1, a2) && expr::equivalent(b1, b2)
        }
        // An open interval and a pair are written the same way.
        (Tuple(t), Interval(false, a, b, false)) | (Interval(false, a, b, false), Tuple(t)) => {
            t.len() == 2 && equiv(&t[0], &Expr(a.clone()), false) && equiv(&t[1], &Expr(b.clone()), false)
        }
        (Set(a), Set(b)) | (Union(a), Union(b)) => unordered_equal(a, b, percent),
        // A bare list and a single value: only equal when the list has one element.
        (Set(a), other) | (other, Set(a)) if a.len() == 1 => equiv(&a[0], other, percent),
        (Equation(l1, r1), Equation(l2, r2)) => {
            let d1 = crate::expr::Expr::Sub(Box::new(l1.clone()), Box::new(r1.clone()));
            let d2 = crate::expr::Expr::Sub(Box::new(l2.clone()), Box::new(r2.clone()));
            let d2n = crate::expr::Expr::Neg(Box::new(d2.clone()));
            expr::equivalent(&d1, &d2) || expr::equivalent(&d1, &d2n)
        }
        (Choice(a), Choice(b)) => a == b,
        (Expr(crate::expr::Expr::Var(v)), Choice(c)) | (Choice(c), Expr(crate::expr::Expr::Var(v))) => {
            v.len() == 1 && v.starts_with(*c)
        }
        (Text(a), Text(b)) => a == b,
        _ => false,
    }
}

fn unordered_equal(a: &[Answer], b: &[Answer], percent: bool) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut used = vec![false; b.len()];
    a.iter().all(|x| {
        for (j, y) in b.iter().enumerate() {
            if !used[j] && equiv(x, y, percent) {
                used[j] = true;
                return true;
            }
        }
        false
    })
}

/// Whether the already-extracted `pred` is equivalent to the already-extracted `gold`.
pub fn is_equiv(pred: &str, gold: &str) -> bool {
    let (g, gp) = parse(gold);
    // A gold multiple-choice letter: find the letter in the prediction ("(B) 12", "B.").
    if let Answer::Choice(c) = g {
        let norm = normalize(pred).text;
        let t = norm.trim().trim_start_matches('(');
        return t.chars().next() == Some(c) && t.chars().nth(1).is_none_or(|n| !n.is_ascii_alphanumeric());
    }
    let (p, pp) = parse(pred);
    if equiv(&p, &g, pp || gp) {
        return true;
    }
    // Last resort: identical normalised text.
    let (a, b) = (normalize(pred).text, normalize(gold).text);
    let squash = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_lowercase();
    !a.is_empty() && squash(&a) == squash(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structures() {
        assert!(matches!(parse("[1, 2)").0, Answer::Interval(true, _, _, false)));
        assert!(matches!(parse("\\{1, 2\\}").0, Answer::Set(_)));
        assert!(matches!(parse("(1, 2)").0, Answer::Tuple(_)));
        assert!(matches!(parse("2x+3y=6").0, Answer::Equation(_, _)));
        assert!(matches!(parse("x = 3").0, Answer::Expr(_)));
        assert!(matches!(parse("(B)").0, Answer::Choice('B')));
        assert!(!is_equiv("-\\infty", "\\infty"));
    }
}
