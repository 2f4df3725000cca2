//! A parser and evaluator for the arithmetic in answers: numbers, variables, + − × ÷, powers,
//! implicit multiplication (`2x`, `3\pi`, `2\sqrt{2}`), `\frac`, `\sqrt`, `\pi`, `\infty`,
//! factorials (`n!`) and double factorials (`n!!`) and common functions, in LaTeX or in plain
//! text (`sqrt(2)`, `2^(n-1)`, `(2n)!/(2^n*n!)`). Expressions with variables are compared by
//! evaluating both sides at random points (at small positive integers when a factorial is
//! involved), which decides polynomial, rational and closed-form identities reliably.

use std::collections::{BTreeMap, BTreeSet};

use crate::number::Num;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A number.
    Num(Num),
    /// A variable (`x`, `\theta`, `x_1`).
    Var(String),
    /// π.
    Pi,
    /// +∞ (negate for −∞).
    Inf,
    /// a + b.
    Add(Box<Expr>, Box<Expr>),
    /// a − b.
    Sub(Box<Expr>, Box<Expr>),
    /// a · b.
    Mul(Box<Expr>, Box<Expr>),
    /// a / b.
    Div(Box<Expr>, Box<Expr>),
    /// a ^ b.
    Pow(Box<Expr>, Box<Expr>),
    /// −a.
    Neg(Box<Expr>),
    /// A function applied to an argument (`sqrt`, `sin`, `ln`, `fact`, ...).
    Func(String, Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(String),
    Ident(String),
    Cmd(String),
    Op(char),
    Open(char),
    Close(char),
}

fn tokenize(s: &str) -> Option<Vec<Tok>> {
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch.is_ascii_digit() || (ch == '.' && c.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            let start = i;
            while i < c.len() && (c[i].is_ascii_digit() || c[i] == '.') {
                i += 1;
            }
            // Scientific notation: 1e3, 2.5E-4 (but `2e` alone is 2·e).
            if i < c.len() && (c[i] == 'e' || c[i] == 'E') {
                let mut j = i + 1;
                if j < c.len() && (c[j] == '-' || c[j] == '+') {
                    j += 1;
                }
                if j < c.len() && c[j].is_ascii_digit() {
                    while j < c.len() && c[j].is_ascii_digit() {
                        j += 1;
                    }
                    i = j;
                }
            }
            out.push(Tok::Num(c[start..i].iter().collect()));
        } else if ch == '\\' {
            let start = i + 1;
            i += 1;
            while i < c.len() && c[i].is_ascii_alphabetic() {
                i += 1;
            }
            if i == start {
                // `\{`, `\}` and friends: treat as the bare character.
                if i < c.len() {
                    let b = c[i];
                    i += 1;
                    match b {
                        '{' | '(' | '[' => out.push(Tok::Open(b)),
                        '}' | ')' | ']' => out.push(Tok::Close(b)),
                        _ => return None,
                    }
                }
                continue;
            }
            out.push(Tok::Cmd(c[start..i].iter().collect()));
        } else if ch == 'π' {
            out.push(Tok::Cmd("pi".into()));
            i += 1;
        } else if ch.is_ascii_alphabetic() {
            // A plain-text function or constant (`sqrt(2)`, `pi`); other letters are variables.
            let start = i;
            while i < c.len() && c[i].is_ascii_alphabetic() {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let lower = word.to_ascii_lowercase();
            if WORDS.contains(&lower.as_str()) {
                out.push(Tok::Cmd(if lower == "inf" { "infty".into() } else { lower }));
            } else {
                out.extend(word.chars().map(|ch| Tok::Ident(ch.to_string())));
            }
        } else if ch.is_alphabetic() {
            out.push(Tok::Ident(ch.to_string()));
            i += 1;
        } else if "+-*/^!_'".contains(ch) {
            out.push(Tok::Op(ch));
            i += 1;
        } else if ch == '×' || ch == '·' || ch == '⋅' {
            out.push(Tok::Op('*'));
            i += 1;
        } else if ch == '÷' {
            out.push(Tok::Op('/'));
            i += 1;
        } else if ch == '−' {
            out.push(Tok::Op('-'));
            i += 1;
        } else if ch == '√' {
            out.push(Tok::Cmd("sqrt".into()));
            i += 1;
        } else if "({[".contains(ch) {
            out.push(Tok::Open(ch));
            i += 1;
        } else if ")}]".contains(ch) {
            out.push(Tok::Close(ch));
            i += 1;
        } else {
            return None;
        }
    }
    Some(out)
}

const FUNCS: &[&str] = &["sin", "cos", "tan", "cot", "sec", "csc", "ln", "log", "exp", "arcsin", "arccos", "arctan"];
/// Words read as functions or constants when written without a backslash.
const WORDS: &[&str] = &["sqrt", "sin", "cos", "tan", "cot", "sec", "csc", "ln", "log", "exp", "arcsin", "arccos", "arctan", "pi", "infty", "infinity", "inf"];

/// Whether `w` is a function or constant name the parser knows as a word (`sqrt`, `pi`).
pub fn is_function_word(w: &str) -> bool {
    WORDS.contains(&w.to_ascii_lowercase().as_str())
}
const GREEK: &[&str] = &["alpha", "beta", "gamma", "delta", "epsilon", "theta", "lambda", "mu", "phi", "varphi", "omega", "sigma", "tau", "rho"];

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn eat_op(&mut self, op: char) -> bool {
        if self.peek() == Some(&Tok::Op(op)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expr(&mut self) -> Option<Expr> {
        let mut lhs = self.term()?;
        loop {
            if self.eat_op('+') {
                lhs = Expr::Add(Box::new(lhs), Box::new(self.term()?));
            } else if self.eat_op('-') {
                lhs = Expr::Sub(Box::new(lhs), Box::new(self.term()?));
            } else {
                return Some(lhs);
            }
        }
    }

    fn starts_primary(&self) -> bool {
        match self.peek() {
            Some(Tok::Num(_) | Tok::Ident(_)) => true,
            Some(Tok::Open(c)) => *c == '(' || *c == '{',
            Some(Tok::Cmd(c)) => !matches!(c.as_str(), "cdot" | "times" | "div"),
            _ => false,
        }
    }

    fn term(&mut self) -> Option<Expr> {
        let mut lhs = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op('*')) => '*',
                Some(Tok::Op('/')) => '/',
                Some(Tok::Cmd(c)) if c == "cdot" || c == "times" => '*',
                Some(Tok::Cmd(c)) if c == "div" => '/',
                _ if self.starts_primary() => 'i',
                _ => return Some(lhs),
            };
            if op != 'i' {
                self.pos += 1;
            }
            let rhs = if op == 'i' { self.power()? } else { self.unary()? };
            lhs = if op == '/' { Expr::Div(Box::new(lhs), Box::new(rhs)) } else { Expr::Mul(Box::new(lhs), Box::new(rhs)) };
        }
    }

    fn unary(&mut self) -> Option<Expr> {
        if self.eat_op('-') {
            return Some(Expr::Neg(Box::new(self.unary()?)));
        }
        if self.eat_op('+') {
            return self.unary();
        }
        self.power()
    }

    fn power(&mut self) -> Option<Expr> {
        let base = self.postfix()?;
        if self.eat_op('^') {
            let exp = self.unary_tight()?;
            return Some(Expr::Pow(Box::new(base), Box::new(exp)));
        }
        Some(base)
    }

    /// An exponent: a braced group, a signed atom (`x^-1`), or one atom (`x^2y` is x²·y).
    fn unary_tight(&mut self) -> Option<Expr> {
        if self.eat_op('-') {
            return Some(Expr::Neg(Box::new(self.unary_tight()?)));
        }
        let p = self.postfix()?;
        if self.eat_op('^') {
            return Some(Expr::Pow(Box::new(p), Box::new(self.unary_tight()?)));
        }
        Some(p)
    }

    fn postfix(&mut self) -> Option<Expr> {
        let mut e = self.primary()?;
        while self.eat_op('!') {
            // `n!!` is the double factorial n·(n−2)·…, not (n!)!.
            let f = if self.eat_op('!') { "dfact" } else { "fact" };
            e = Expr::Func(f.into(), Box::new(e));
        }
        Some(e)
    }

    /// A `{...}` group, or for `\frac12`-style shorthand a single digit or letter.
    fn arg(&mut self) -> Option<Expr> {
        match self.peek()? {
            Tok::Open('{') => {
                self.pos += 1;
                let e = self.expr()?;
                matches!(self.next()?, Tok::Close('}')).then_some(e)
            }
            Tok::Num(n) => {
                let n = n.clone();
                self.pos += 1;
                let mut chars = n.chars();
                let first = chars.next()?;
                let rest: String = chars.collect();
                if !rest.is_empty() {
                    self.toks.insert(self.pos, Tok::Num(rest));
                }
                Some(Expr::Num(Num::int(first.to_digit(10)? as i128)))
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Option<Expr> {
        match self.next()? {
            Tok::Num(n) => Some(Expr::Num(Num::parse_decimal(&n)?)),
            Tok::Ident(v) => {
                // Subscripted variables: x_1, x_{12}.
                if self.eat_op('_') {
                    let sub = match self.next()? {
                        Tok::Num(n) => n,
                        Tok::Ident(s) => s,
                        Tok::Open('{') => {
                            let mut s = String::new();
                            loop {
                                match self.next()? {
                                    Tok::Close('}') => break,
                                    Tok::Num(n) | Tok::Ident(n) => s.push_str(&n),
                                    _ => return None,
                                }
                            }
                            s
                        }
                        _ => return None,
                    };
                    return Some(Expr::Var(format!("{v}_{sub}")));
                }
                Some(Expr::Var(v))
            }
            Tok::Open(o) if o == '(' || o == '{' => {
                let e = self.expr()?;
                let close = if o == '(' { ')' } else { '}' };
                matches!(self.next()?, Tok::Close(c) if c == close).then_some(e)
            }
            Tok::Cmd(c) => match c.as_str() {
                "frac" | "cfrac" => {
                    let a = self.arg()?;
                    let b = self.arg()?;
                    Some(Expr::Div(Box::new(a), Box::new(b)))
                }
                "sqrt" => {
                    if self.peek() == Some(&Tok::Open('[')) {
                        self.pos += 1;
                        let n = self.expr()?;
                        if !matches!(self.next()?, Tok::Close(']')) {
                            return None;
                        }
                        let x = self.arg()?;
                        let inv = Expr::Div(Box::new(Expr::Num(Num::int(1))), Box::new(n));
                        return Some(Expr::Pow(Box::new(x), Box::new(inv)));
                    }
                    // `sqrt(2)` in plain text; `\sqrt{2}` and `\sqrt2` in LaTeX.
                    if self.peek() == Some(&Tok::Open('(')) {
                        return Some(Expr::Func("sqrt".into(), Box::new(self.primary()?)));
                    }
                    Some(Expr::Func("sqrt".into(), Box::new(self.arg()?)))
                }
                "pi" => Some(Expr::Pi),
                "infty" | "infinity" => Some(Expr::Inf),
                f if FUNCS.contains(&f) => {
                    // \sin^2 x is (sin x)^2.
                    let mut power = None;
                    if self.eat_op('^') {
                        power = Some(self.unary_tight()?);
                    }
                    let arg = self.power()?;
                    let applied = Expr::Func(f.to_string(), Box::new(arg));
                    Some(match power {
                        Some(p) => Expr::Pow(Box::new(applied), Box::new(p)),
                        None => applied,
                    })
                }
                g if GREEK.contains(&g) => Some(Expr::Var(g.to_string())),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Parses a whole normalised answer string as one expression.
pub fn parse(s: &str) -> Option<Expr> {
    let toks = tokenize(s)?;
    if toks.is_empty() {
        return None;
    }
    let mut p = Parser { toks, pos: 0 };
    let e = p.expr()?;
    (p.pos == p.toks.len()).then_some(e)
}

impl Expr {
    /// Whether a factorial appears (defined only at integers: compare at integer points).
    pub fn has_factorial(&self) -> bool {
        match self {
            Expr::Func(f, a) => f == "fact" || f == "dfact" || a.has_factorial(),
            Expr::Add(a, b) | Expr::Sub(a, b) | Expr::Mul(a, b) | Expr::Div(a, b) | Expr::Pow(a, b) => a.has_factorial() || b.has_factorial(),
            Expr::Neg(a) => a.has_factorial(),
            Expr::Num(_) | Expr::Var(_) | Expr::Pi | Expr::Inf => false,
        }
    }

    /// The variables the expression mentions.
    pub fn vars(&self, out: &mut BTreeSet<String>) {
        match self {
            Expr::Var(v) => {
                out.insert(v.clone());
            }
            Expr::Add(a, b) | Expr::Sub(a, b) | Expr::Mul(a, b) | Expr::Div(a, b) | Expr::Pow(a, b) => {
                a.vars(out);
                b.vars(out);
            }
            Expr::Neg(a) | Expr::Func(_, a) => a.vars(out),
            Expr::Num(_) | Expr::Pi | Expr::Inf => {}
        }
    }

    /// The value with variables bound by `env` (exact where possible); None where undefined.
    pub fn eval(&self, env: &BTreeMap<String, f64>) -> Option<Num> {
        Some(match self {
            Expr::Num(n) => *n,
            Expr::Var(v) => {
                // Integer points stay exact (factorials need integers).
                let x = *env.get(v)?;
                if x.fract() == 0.0 && x.abs() < 1e12 { Num::int(x as i128) } else { Num::Real(x) }
            }
            Expr::Pi => Num::Real(std::f64::consts::PI),
            Expr::Inf => Num::Real(f64::INFINITY),
            Expr::Add(a, b) => a.eval(env)?.add(b.eval(env)?)?,
            Expr::Sub(a, b) => a.eval(env)?.sub(b.eval(env)?)?,
            Expr::Mul(a, b) => a.eval(env)?.mul(b.eval(env)?)?,
            Expr::Div(a, b) => a.eval(env)?.div(b.eval(env)?)?,
            Expr::Pow(a, b) => a.eval(env)?.pow(b.eval(env)?)?,
            Expr::Neg(a) => a.eval(env)?.neg(),
            Expr::Func(f, a) => {
                let x = a.eval(env)?;
                if f == "sqrt" {
                    return x.sqrt();
                }
                if f == "fact" {
                    let n = x.as_int().filter(|n| (0..=33).contains(n))?;
                    return Some(Num::int((1..=n).product::<i128>().max(1)));
                }
                if f == "dfact" {
                    // (−1)!! = 0!! = 1.
                    let n = x.as_int().filter(|n| (-1..=60).contains(n))?;
                    return Some(Num::int((1..=n.max(1)).rev().step_by(2).product::<i128>().max(1)));
                }
                let v = x.to_f64();
                let r = match f.as_str() {
                    "sin" => v.sin(),
                    "cos" => v.cos(),
                    "tan" => v.tan(),
                    "cot" => 1.0 / v.tan(),
                    "sec" => 1.0 / v.cos(),
                    "csc" => 1.0 / v.sin(),
                    "ln" => v.ln(),
                    "log" => v.log10(),
                    "exp" => v.exp(),
                    "arcsin" => v.asin(),
                    "arccos" => v.acos(),
                    "arctan" => v.atan(),
                    _ => return None,
                };
                if r.is_nan() {
                    return None;
                }
                Num::Real(r)
            }
        })
    }
}

/// Whether two expressions are equal: exactly or numerically when constant, at several random
/// points when they have variables.
pub fn equivalent(a: &Expr, b: &Expr) -> bool {
    let mut vars = BTreeSet::new();
    a.vars(&mut vars);
    b.vars(&mut vars);
    if vars.is_empty() {
        return match (a.eval(&BTreeMap::new()), b.eval(&BTreeMap::new())) {
            (Some(x), Some(y)) => x.approx_eq(y),
            _ => false,
        };
    }
    // Deterministic pseudo-random points in [0.5, 2.5), away from common singularities; for
    // factorials, the integers 1..=9 (where they are defined).
    let integers = a.has_factorial() || b.has_factorial();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut agree = 0;
    for _ in 0..8 {
        let env: BTreeMap<String, f64> = vars
            .iter()
            .map(|v| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let x = if integers { 1.0 + (seed % 9) as f64 } else { 0.5 + (seed % 10_000) as f64 / 5_000.0 };
                (v.clone(), x)
            })
            .collect();
        match (a.eval(&env), b.eval(&env)) {
            (Some(x), Some(y)) => {
                if !crate::number::close(x.to_f64(), y.to_f64(), 1e-6) {
                    return false;
                }
                agree += 1;
            }
            (None, None) => {}
            _ => return false,
        }
    }
    agree >= 3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(a: &str, b: &str) -> bool {
        equivalent(&parse(a).unwrap_or_else(|| panic!("parse {a}")), &parse(b).unwrap_or_else(|| panic!("parse {b}")))
    }

    #[test]
    fn parses_latex_arithmetic() {
        assert!(eq("\\frac{3}{4}", "0.75"));
        assert!(eq("\\frac12", "1/2"));
        assert!(eq("\\sqrt{8}", "2\\sqrt{2}"));
        assert!(eq("\\sqrt8", "2\\sqrt2"));
        assert!(eq("2^{10}", "1024"));
        assert!(eq("\\frac{\\pi}{2}", "0.5\\pi"));
        assert!(eq("3!", "6"));
        assert!(eq("\\sqrt[3]{27}", "3"));
        assert!(!eq("\\frac{3}{4}", "0.7"));
    }

    #[test]
    fn symbolic_identities() {
        assert!(eq("x^2+2x+1", "(x+1)^2"));
        assert!(eq("2x+1", "1+2x"));
        assert!(eq("\\frac{x}{2}", "0.5x"));
        assert!(!eq("x^2", "2x"));
        assert!(eq("\\sin^2 x + \\cos^2 x", "1"));
    }

    #[test]
    fn plain_text_notation_and_double_factorials() {
        assert!(eq("sqrt(2)", "\\sqrt{2}"));
        assert!(eq("2^(n-1)", "\\frac{2^n}{2}"));
        assert!(eq("(2n)!/(2^n*n!)", "(2n-1)!!"));
        assert!(!eq("(2n)!/(2^n*n!)", "(2n+1)!!"));
        assert!(eq("7!!", "105") && eq("8!!", "384") && eq("0!!", "1"));
        assert!(eq("pi*r^2", "\\pi r^2"));
        assert!(eq("n!", "n(n-1)!"));
    }

    #[test]
    fn precedence() {
        assert!(eq("2+3\\cdot4", "14"));
        assert!(eq("-2^2", "-4"));
        assert!(eq("2^3^2", "512"));
        assert!(eq("6/2/3", "1"));
    }
}
