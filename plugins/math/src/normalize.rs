//! String normalisation of extracted answers, following Hendrycks' `is_equiv`, Qwen2.5-Math and
//! Math-Verify: drop display-only LaTeX, units, currency and thousands separators; remember
//! whether a percent sign was present.

/// A normalised answer string and whether it carried a percent sign.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// The normalised text.
    pub text: String,
    /// Whether `%` / `\%` appeared.
    pub percent: bool,
}

/// Replaces `\cmd{X}` by `X` for text-like commands, with brace matching.
fn unwrap_commands(s: &str, cmds: &[&str]) -> String {
    let mut out = s.to_string();
    for cmd in cmds {
        let pat = format!("\\{cmd}{{");
        while let Some(start) = out.find(&pat) {
            let open = start + pat.len() - 1;
            match matching_brace(&out, open) {
                Some(close) => {
                    let inner = out[open + 1..close].to_string();
                    out.replace_range(start..=close, &inner);
                }
                None => {
                    out.replace_range(start..open + 1, "");
                }
            }
        }
    }
    out
}

/// Index of the `}` matching the `{` at `open`.
pub fn matching_brace(s: &str, open: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (i, c) in s[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + i);
                }
            }
            _ => {}
        }
    }
    None
}

/// `I.A\overline{B}` (A may be empty) as an exact fraction `\frac{p}{q}`:
/// I + A/10^|A| + B/(10^|A|·(10^|B| − 1)).
fn repeating_decimal(int: &str, fixed: &str, rep: &str) -> Option<String> {
    let (a, b) = (fixed.len() as u32, rep.len() as u32);
    if b == 0 || a + b > 18 {
        return None;
    }
    let i: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let fa: i128 = if fixed.is_empty() { 0 } else { fixed.parse().ok()? };
    let rb: i128 = rep.parse().ok()?;
    let den = 10i128.pow(a) * (10i128.pow(b) - 1);
    let num = i * den + fa * (10i128.pow(b) - 1) + rb;
    Some(format!("\\frac{{{num}}}{{{den}}}"))
}

/// Replaces every `12.3\overline{45}` (also `\dot{3}` for one digit) by its exact fraction.
fn repeating_decimals(s: &str) -> String {
    let mut out = s.to_string();
    for cmd in ["\\overline{", "\\dot{"] {
        while let Some(at) = out.find(cmd) {
            let open = at + cmd.len() - 1;
            let Some(close) = matching_brace(&out, open) else { break };
            let rep: String = out[open + 1..close].chars().filter(|c| !c.is_whitespace()).collect();
            // The digits before: I.A right before the command.
            let before = &out[..at];
            let start = before.rfind(|c: char| !(c.is_ascii_digit() || c == '.')).map_or(0, |i| i + 1);
            let number = &before[start..];
            let frac = match number.split_once('.') {
                Some((int, fixed)) if rep.chars().all(|c| c.is_ascii_digit()) && fixed.chars().all(|c| c.is_ascii_digit()) => repeating_decimal(int, fixed, &rep),
                _ => None,
            };
            match frac {
                Some(f) => out.replace_range(start..=close, &f),
                // Not a repeating decimal (a conjugate, a segment): keep the content.
                None => out.replace_range(at..=close, &rep),
            }
        }
    }
    out
}

/// Words treated as units (dropped after a number).
const UNITS: &[&str] = &[
    "cm",
    "m",
    "km",
    "mm",
    "in",
    "inch",
    "inches",
    "ft",
    "feet",
    "foot",
    "yd",
    "yard",
    "yards",
    "mile",
    "miles",
    "meter",
    "meters",
    "metre",
    "metres",
    "centimeter",
    "centimeters",
    "kg",
    "g",
    "gram",
    "grams",
    "lb",
    "lbs",
    "pound",
    "pounds",
    "ounce",
    "ounces",
    "oz",
    "dollar",
    "dollars",
    "cent",
    "cents",
    "euro",
    "euros",
    "hour",
    "hours",
    "hr",
    "hrs",
    "minute",
    "minutes",
    "min",
    "second",
    "seconds",
    "sec",
    "day",
    "days",
    "week",
    "weeks",
    "month",
    "months",
    "year",
    "years",
    "degree",
    "degrees",
    "unit",
    "units",
    "sq",
    "square",
    "cubic",
    "liter",
    "liters",
    "litre",
    "litres",
    "ml",
    "gallon",
    "gallons",
    "percent",
    "mph",
    "people",
    "students",
    "apples",
    "eggs",
    "points",
    "times",
    "ways",
    "cups",
    "pages",
    "books",
    "cookies",
    "boxes",
    "each",
    "per",
    "total",
    "only",
    "about",
    "approximately",
];

/// Whether a word is a unit or counted noun dropped after a number (`cm`, `dollars`, `eggs`).
pub fn is_unit_word(w: &str) -> bool {
    let core = w.trim_matches(|c: char| c == '.' || c == ',' || c == '^' || c.is_ascii_digit() || c == '{' || c == '}');
    !core.is_empty() && UNITS.contains(&core.to_ascii_lowercase().as_str())
}

/// Normalises an extracted answer.
pub fn normalize(raw: &str) -> Normalized {
    let mut s = raw.trim().to_string();
    // Math delimiters around the whole answer.
    for (a, b) in [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")] {
        if s.len() > a.len() + b.len() && s.starts_with(a) && s.ends_with(b) {
            s = s[a.len()..s.len() - b.len()].to_string();
        }
    }
    // Protect LaTeX row separators (`\\`) from the single-backslash spacing rules below.
    s = s.replace("\\\\", "\u{1}");
    s = unwrap_commands(&s, &["text", "textbf", "textit", "mathrm", "mathbf", "mbox", "operatorname", "boxed", "fbox", "hbox"]);
    s = repeating_decimals(&s);
    // Markdown emphasis around an answer (`**(B)**`).
    s = s.replace("**", "");
    for (from, to) in [
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("\\displaystyle", ""),
        ("\\left", ""),
        ("\\right", ""),
        ("\\bigl", ""),
        ("\\bigr", ""),
        ("\\Bigl", ""),
        ("\\Bigr", ""),
        ("\\big", ""),
        ("\\Big", ""),
        ("\\!", ""),
        ("\\,", ""),
        ("\\;", ""),
        ("\\:", ""),
        ("\\ ", " "),
        ("\\qquad", " "),
        ("\\quad", " "),
        ("~", " "),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("\\circ", ""),
        ("\\degree", ""),
        ("°", ""),
        ("\\$", ""),
        ("$", ""),
        ("{,}", ""),
        ("\\infty", "\\infty "),
        ("\\leqslant", "\\leq"),
        ("\\geqslant", "\\geq"),
        ("≤", "\\leq "),
        ("≥", "\\geq "),
        ("<=", "\\leq "),
        (">=", "\\geq "),
        ("\\le ", "\\leq "),
        ("\\ge ", "\\geq "),
        ("\\lt", "<"),
        ("\\gt", ">"),
        ("±", "\\pm "),
        ("\\neq", "\\ne"),
        ("\\lbrace", "\\{"),
        ("\\rbrace", "\\}"),
    ] {
        s = s.replace(from, to);
    }
    s = s.replace('\u{1}', "\\\\");
    let percent = s.contains('%');
    s = s.replace("\\%", "").replace('%', "");
    s = s.trim().to_string();
    // A trailing full stop is sentence punctuation, not part of the answer.
    while s.ends_with('.') && !s.ends_with("..") {
        s.pop();
        s = s.trim_end().to_string();
    }
    // Words like "infinity".
    let lower = s.to_ascii_lowercase();
    if lower == "infinity" || lower == "inf" {
        s = "\\infty".into();
    }
    // Units after a number: "12 cm", "5 dollars", "18 eggs per day".
    let words: Vec<&str> = s.split_whitespace().collect();
    if words.len() > 1 && words[0].chars().any(|c| c.is_ascii_digit()) {
        let mut keep = words.len();
        while keep > 1 && is_unit_word(words[keep - 1]) {
            keep -= 1;
        }
        // "72 clips", "3 red apples": plain words after a plain number are a unit or a noun.
        let plain_number = words[0].chars().all(|c| c.is_ascii_digit() || ",.-".contains(c));
        let plain_word = |w: &str| w.len() >= 2 && w.trim_end_matches(['.', ',', '!']).chars().all(|c| c.is_ascii_alphabetic());
        if plain_number && words[1..keep].iter().all(|w| plain_word(w)) {
            keep = 1;
        }
        s = words[..keep].join(" ");
    }
    // Thousands separators in a plain number: 1,234,567.89 (not tuples like 1,23).
    let t = s.trim_start_matches('-');
    if t.contains(',') {
        let (int_part, _) = t.split_once('.').unwrap_or((t, ""));
        let groups: Vec<&str> = int_part.split(',').collect();
        if groups.len() > 1
            && (1..=3).contains(&groups[0].len())
            && groups.iter().all(|g| g.chars().all(|c| c.is_ascii_digit()))
            && groups[1..].iter().all(|g| g.len() == 3)
            && t.chars().all(|c| c.is_ascii_digit() || c == ',' || c == '.')
        {
            s = s.replace(',', "");
        }
    }
    Normalized { text: s.trim().to_string(), percent }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_display_latex_units_and_currency() {
        assert_eq!(normalize("\\$1,234.50").text, "1234.50");
        assert_eq!(normalize("\\dfrac{1}{2}").text, "\\frac{1}{2}");
        assert_eq!(normalize("90^\\circ").text, "90");
        assert_eq!(normalize("12 \\text{ cm}^2").text, "12");
        assert_eq!(normalize("\\left( 1, 2 \\right)").text, "( 1, 2 )");
        assert_eq!(normalize("18 eggs.").text, "18");
        let p = normalize("50\\%");
        assert_eq!((p.text.as_str(), p.percent), ("50", true));
        assert_eq!(normalize("1,23").text, "1,23");
    }

    #[test]
    fn repeating_decimals_become_fractions() {
        // 0.(3) = 3/9; 4.(6) = 4 + 6/9 = 42/9; 0.1(6) = 1/10 + 6/90 = 15/90; 1.(27) = 126/99.
        assert_eq!(normalize("0.\\overline{3}").text, "\\frac{3}{9}");
        assert_eq!(normalize("4.\\overline{6}").text, "\\frac{42}{9}");
        assert_eq!(normalize("0.1\\overline{6}").text, "\\frac{15}{90}");
        assert_eq!(normalize("1.\\overline{27}").text, "\\frac{126}{99}");
        assert_eq!(normalize("-0.\\overline{3}").text, "-\\frac{3}{9}");
        assert_eq!(normalize("\\overline{AB}").text, "AB");
    }
}
