//! Structured answers (numbers and expressions, mixed numbers, tuples, intervals and the
//! inequalities that describe them, sets and lists in symbols or words, `±`, named assignments
//! like `x = 6, y = 5`, unions, equations, multiple-choice letters) and the equivalence between
//! a prediction and a gold answer.

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
    /// Values named by distinct variables, in the order written: `x = 6, y = 5`,
    /// `(x, y) = (6, 5)`.
    Assignment(Vec<(String, Answer)>),
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

/// Whether the bracket `s` opens with closes only at its end, counting `(` `[` alike (so the
/// half-open `[a, b)` is enclosed and `(x, y) = (6, 5)` is not).
fn encloses(s: &str) -> bool {
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
    n >= 2 && depth == 0
}

fn choice_letter(s: &str) -> Option<char> {
    let t = s.trim().trim_matches('*').trim();
    let t = ["option ", "choice ", "Option ", "Choice "].iter().find_map(|p| t.strip_prefix(p)).unwrap_or(t);
    let t = t.trim().trim_start_matches('(').trim_end_matches([')', '.', ':']).trim();
    let mut chars = t.chars();
    let c = chars.next()?;
    (chars.next().is_none() && c.is_ascii_uppercase() && ('A'..='E').contains(&c)).then_some(c)
}

fn matrix_rows(s: &str) -> Option<Answer> {
    let begin = ["pmatrix", "bmatrix", "matrix", "vmatrix"].iter().find(|m| s.starts_with(&format!("\\begin{{{m}}}")))?;
    let inner = s.strip_prefix(&format!("\\begin{{{begin}}}"))?.strip_suffix(&format!("\\end{{{begin}}}"))?;
    let rows: Vec<Answer> = inner.split("\\\\").filter(|r| !r.trim().is_empty()).map(|r| Answer::Tuple(r.split('&').map(|x| parse_norm(x.trim())).collect())).collect();
    Some(if rows.len() == 1 { rows.into_iter().next()? } else { Answer::Tuple(rows) })
}

/// Splits on a word at bracket depth 0 (`" and "`, `" or "`).
fn split_word(s: &str, word: &str) -> Vec<String> {
    let pat = format!(" {word} ");
    let mut parts = Vec::new();
    let (mut depth, mut last, mut skip_to) = (0i32, 0usize, 0usize);
    for (i, c) in s.char_indices() {
        if i < skip_to {
            continue;
        }
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
        if depth == 0 && s[i..].starts_with(&pat) {
            parts.push(s[last..i].trim().to_string());
            skip_to = i + pat.len();
            last = skip_to;
        }
    }
    parts.push(s[last..].trim().to_string());
    parts
}

/// `var = value` with a lone variable on the left: (variable, value).
fn assignment(s: &str) -> Option<(String, String)> {
    let sides = split_top(s, '=');
    if sides.len() != 2 {
        return None;
    }
    let lhs = sides[0].trim();
    let var = match expr::parse(lhs)? {
        Expr::Var(v) => v,
        _ => return None,
    };
    Some((var, sides[1].trim().to_string()))
}

/// `2\frac{1}{2}` or `2 1/2` (a whole number and a proper fraction side by side): 5/2.
fn mixed_number(s: &str) -> Option<Expr> {
    let (neg, t) = match s.strip_prefix('-') {
        Some(t) => (true, t.trim_start()),
        None => (false, s),
    };
    let digits = t.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let (whole, rest) = t.split_at(digits);
    let rest = rest.trim_start();
    let (num, den) = if let Some(f) = rest.strip_prefix("\\frac") {
        let f = f.trim();
        let group = |x: &str| -> Option<(String, usize)> {
            if let Some(inner) = x.strip_prefix('{') {
                let close = inner.find('}')?;
                Some((inner[..close].trim().to_string(), close + 2))
            } else {
                x.chars().next().filter(char::is_ascii_digit).map(|c| (c.to_string(), 1))
            }
        };
        let (a, used) = group(f)?;
        let (b, used2) = group(&f[used..])?;
        if used + used2 != f.len() {
            return None;
        }
        (a, b)
    } else if rest.len() < t.len() - digits && !rest.is_empty() {
        // "2 1/2": a space, then a/b.
        let (a, b) = rest.split_once('/')?;
        (a.trim().to_string(), b.trim().to_string())
    } else {
        return None;
    };
    let (w, a, b): (i128, i128, i128) = (whole.parse().ok()?, num.parse().ok()?, den.parse().ok()?);
    if !(0 < a && a < b) {
        return None;
    }
    let v = Num::rat(w * b + a, b)?;
    Some(Expr::Num(if neg { v.neg() } else { v }))
}

/// An inequality in one variable as the interval it describes: `x \leq 3`, `x > 2`,
/// `3 \geq x`, `-1 < x \leq 4`.
fn inequality(s: &str) -> Option<Answer> {
    // Tokens: operands and the operators between them.
    let mut parts: Vec<String> = vec![String::new()];
    let mut ops: Vec<&'static str> = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let found = [("\\leq", "<="), ("\\geq", ">="), ("\\le", "<="), ("\\ge", ">="), ("<", "<"), (">", ">")].into_iter().find(|(p, _)| rest.starts_with(p));
        match found {
            Some((p, op)) if !(p == "\\le" || p == "\\ge") || !rest[p.len()..].starts_with(|c: char| c.is_ascii_alphabetic()) => {
                ops.push(op);
                parts.push(String::new());
                rest = &rest[p.len()..];
            }
            _ => {
                let c = rest.chars().next()?;
                parts.last_mut()?.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    if ops.is_empty() || ops.len() > 2 {
        return None;
    }
    let exprs: Vec<Expr> = parts.iter().map(|p| expr::parse(p.trim())).collect::<Option<_>>()?;
    let is_var = |e: &Expr| matches!(e, Expr::Var(_));
    let inf = Expr::Inf;
    let minus_inf = Expr::Neg(Box::new(Expr::Inf));
    let strict = |op: &str| op == "<" || op == ">";
    let less = |op: &str| op.starts_with('<');
    match (exprs.len(), ops.as_slice()) {
        (2, [op]) => {
            // x OP a, or a OP x (flip).
            let (v, a, op_less) = if is_var(&exprs[0]) && !is_var(&exprs[1]) {
                (&exprs[0], &exprs[1], less(op))
            } else if is_var(&exprs[1]) && !is_var(&exprs[0]) {
                (&exprs[1], &exprs[0], !less(op))
            } else {
                return None;
            };
            let _ = v;
            Some(if op_less { Answer::Interval(false, minus_inf, a.clone(), !strict(op)) } else { Answer::Interval(!strict(op), a.clone(), inf, false) })
        }
        (3, [o1, o2]) if is_var(&exprs[1]) && less(o1) == less(o2) => {
            let (lo, hi, lo_op, hi_op) = if less(o1) { (&exprs[0], &exprs[2], *o1, *o2) } else { (&exprs[2], &exprs[0], *o2, *o1) };
            Some(Answer::Interval(!strict(lo_op), lo.clone(), hi.clone(), !strict(hi_op)))
        }
        _ => None,
    }
}

/// Items of a list, in symbols or words: `a, b`, `a and b`, `a, b and c`, `a, b, and c`.
fn list_items(s: &str) -> Vec<String> {
    split_word(s, "and").iter().flat_map(|p| split_top(p, ',')).map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect()
}

/// A list whose items are `var = value`: an assignment when the variables differ, the values
/// (a set) when they are all the same (`x = 1, x = 2`); None when some item is not one.
fn assignments(items: &[String]) -> Option<Answer> {
    let pairs: Vec<(String, String)> = items.iter().map(|i| assignment(i)).collect::<Option<_>>()?;
    let distinct: std::collections::BTreeSet<&str> = pairs.iter().map(|(v, _)| v.as_str()).collect();
    if distinct.len() == pairs.len() {
        Some(Answer::Assignment(pairs.into_iter().map(|(v, x)| (v, parse_norm(&x))).collect()))
    } else if distinct.len() == 1 {
        Some(Answer::Set(pairs.into_iter().map(|(_, x)| parse_norm(&x)).collect()))
    } else {
        None
    }
}

/// Parses an already normalised answer.
fn parse_norm(s: &str) -> Answer {
    let s = s.trim();
    if let Some(m) = matrix_rows(s) {
        return m;
    }
    // `\pm`: both signs (`x = \pm 1`, `3 \pm \sqrt{2}`).
    for pm in ["\\pm", "\\mp"] {
        if s.matches(pm).count() == 1 {
            let (a, b) = if pm == "\\pm" { ("+", "-") } else { ("-", "+") };
            return Answer::Set(vec![parse_norm(&s.replacen(pm, a, 1)), parse_norm(&s.replacen(pm, b, 1))]);
        }
    }
    let alternatives = split_word(s, "or");
    if alternatives.len() >= 2 {
        return Answer::Union(alternatives.iter().map(|p| parse_norm(p)).collect());
    }
    let items = list_items(s);
    if items.len() >= 2 && split_word(s, "and").len() >= 2 {
        if let Some(a) = assignments(&items) {
            return a;
        }
        return Answer::Set(items.iter().map(|p| parse_norm(p)).collect());
    }
    if let Some(e) = mixed_number(s) {
        return Answer::Expr(e);
    }
    if let Some(i) = inequality(s) {
        return i;
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
        if s.starts_with(open) && s.ends_with(close) && encloses(s) {
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
        if let Some(a) = assignments(&parts) {
            return a;
        }
        return Answer::Set(parts.iter().map(|p| parse_norm(p)).collect());
    }
    if let Some(c) = choice_letter(s) {
        return Answer::Choice(c);
    }
    let sides = split_top(s, '=');
    if sides.len() == 2 {
        let lhs = sides[0].trim();
        // `(x, y) = (6, 5)`: named values.
        if let (Answer::Tuple(names), Answer::Tuple(values)) = (parse_norm(lhs), parse_norm(sides[1].trim())) {
            let vars: Option<Vec<String>> = names.iter().map(|n| if let Answer::Expr(Expr::Var(v)) = n { Some(v.clone()) } else { None }).collect();
            if let Some(vars) = vars
                && vars.len() == values.len()
            {
                return Answer::Assignment(vars.into_iter().zip(values).collect());
            }
        }
        // "x = 3", "y=2x+1" and "f(x) = ..." all mean the right-hand side.
        let starts_var = lhs.starts_with(|c: char| c.is_alphabetic() || c == '\\');
        let simple_lhs = (starts_var && (lhs.chars().count() <= 2 || lhs.split('_').next().is_some_and(|v| v.chars().count() == 1)))
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

/// Whether an answer is made of mathematics only (no leaf is unparsed text): what a sentence's
/// "… is X" must give for X to be taken as its stated result.
pub fn is_mathematical(a: &Answer) -> bool {
    match a {
        Answer::Expr(_) | Answer::Interval(..) | Answer::Equation(..) => true,
        Answer::Tuple(v) | Answer::Set(v) | Answer::Union(v) => !v.is_empty() && v.iter().all(is_mathematical),
        Answer::Assignment(v) => v.iter().all(|(_, x)| is_mathematical(x)),
        Answer::Choice(_) | Answer::Text(_) => false,
    }
}

/// Whether a raw answer reads as mathematics: it parses without text leaves and has no word of
/// three or more letters outside LaTeX commands and function names (the expression parser
/// would otherwise read "the number of ways" as a product of variables).
pub fn reads_as_math(raw: &str) -> bool {
    // Words are checked in the raw text: normalisation drops what follows a plain number.
    let text = raw.replace("$", " ");
    let (mut before, mut prev) = (' ', ' ');
    let mut word = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphabetic() {
            if word.is_empty() {
                before = prev;
            }
            word.push(c);
            prev = c;
            continue;
        }
        if word.len() >= 3 && before != '\\' && !expr::is_function_word(&word) && word != "and" && word != "or" && !crate::normalize::is_unit_word(&word) {
            return false;
        }
        word.clear();
        prev = c;
    }
    is_mathematical(&parse(raw).0)
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
                    && (expr::equivalent(&scaled(a, Num::rat(1, 100).unwrap_or(Num::int(0))), b) || expr::equivalent(a, &scaled(b, Num::rat(1, 100).unwrap_or(Num::int(0))))))
        }
        (Tuple(a), Tuple(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| equiv(x, y, percent)),
        (Interval(l1, a1, b1, r1), Interval(l2, a2, b2, r2)) => l1 == l2 && r1 == r2 && expr::equivalent(a1, a2) && expr::equivalent(b1, b2),
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
        (Assignment(a), Assignment(b)) => a.len() == b.len() && a.iter().all(|(v, x)| b.iter().find(|(w, _)| w == v).is_some_and(|(_, y)| equiv(x, y, percent))),
        // Values written without their names, in the assignment's order: (6, 5) for (x, y) = (6, 5).
        (Assignment(a), Tuple(t) | Set(t)) | (Tuple(t) | Set(t), Assignment(a)) => a.len() == t.len() && a.iter().zip(t).all(|((_, x), y)| equiv(x, y, percent)),
        (Choice(a), Choice(b)) => a == b,
        (Expr(crate::expr::Expr::Var(v)), Choice(c)) | (Choice(c), Expr(crate::expr::Expr::Var(v))) => v.len() == 1 && v.starts_with(*c),
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
        if let Some(p) = choice_letter(&norm) {
            return p == c;
        }
        let t = norm.trim().trim_matches('*').trim().trim_start_matches('(');
        return t.starts_with(c) && t.chars().nth(1).is_none_or(|n| !n.is_ascii_alphanumeric());
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
