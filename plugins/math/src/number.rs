//! Numbers that stay exact while they can: rationals in i128, falling back to f64 only for
//! irrational results (√2, π) or overflow. Exact answers are compared exactly.

/// A rational p/q (q > 0, in lowest terms) or a real approximation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    /// Exact p/q.
    Rat(i128, i128),
    /// Approximation.
    Real(f64),
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    a = a.abs();
    b = b.abs();
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

// The arithmetic returns `Option` (None on overflow or an undefined result), which the std
// operator traits cannot express, so these are plain methods named after the operations.
#[allow(clippy::should_implement_trait)]
impl Num {
    /// p/q in lowest terms; None when q = 0.
    pub fn rat(p: i128, q: i128) -> Option<Num> {
        if q == 0 {
            return None;
        }
        let g = gcd(p, q).max(1);
        let (p, q) = (p / g, q / g);
        Some(if q < 0 { Num::Rat(-p, -q) } else { Num::Rat(p, q) })
    }

    /// An integer.
    pub fn int(n: i128) -> Num {
        Num::Rat(n, 1)
    }

    /// Parses a decimal like `12`, `-0.125`, `.5`, `1e-3` exactly.
    pub fn parse_decimal(s: &str) -> Option<Num> {
        let (mantissa, exp) = match s.find(['e', 'E']) {
            Some(i) => (&s[..i], s[i + 1..].trim_start_matches('+').parse::<i32>().ok()?),
            None => (s, 0),
        };
        let (neg, m) = match mantissa.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, mantissa),
        };
        let (int, frac) = match m.split_once('.') {
            Some((a, b)) => (a, b),
            None => (m, ""),
        };
        if int.is_empty() && frac.is_empty() || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
            return None;
        }
        let digits = format!("{int}{frac}");
        let exact = (|| {
            let mut p: i128 = digits.parse().ok()?;
            let mut q: i128 = 10i128.checked_pow(frac.len() as u32)?;
            if exp >= 0 {
                p = p.checked_mul(10i128.checked_pow(exp as u32)?)?;
            } else {
                q = q.checked_mul(10i128.checked_pow((-exp) as u32)?)?;
            }
            Num::rat(if neg { -p } else { p }, q)
        })();
        exact.or_else(|| s.parse::<f64>().ok().map(Num::Real))
    }

    /// The value as f64.
    pub fn to_f64(self) -> f64 {
        match self {
            Num::Rat(p, q) => p as f64 / q as f64,
            Num::Real(x) => x,
        }
    }

    /// Whether this is an exact integer.
    pub fn as_int(self) -> Option<i128> {
        match self {
            Num::Rat(p, 1) => Some(p),
            _ => None,
        }
    }

    fn real(x: f64) -> Option<Num> {
        if x.is_nan() { None } else { Some(Num::Real(x)) }
    }

    /// a + b.
    pub fn add(self, o: Num) -> Option<Num> {
        if let (Num::Rat(a, b), Num::Rat(c, d)) = (self, o)
            && let Some(r) = (|| Num::rat(a.checked_mul(d)?.checked_add(c.checked_mul(b)?)?, b.checked_mul(d)?))()
        {
            return Some(r);
        }
        Self::real(self.to_f64() + o.to_f64())
    }

    /// −a.
    pub fn neg(self) -> Num {
        match self {
            Num::Rat(p, q) => Num::Rat(-p, q),
            Num::Real(x) => Num::Real(-x),
        }
    }

    /// a − b.
    pub fn sub(self, o: Num) -> Option<Num> {
        self.add(o.neg())
    }

    /// a · b.
    pub fn mul(self, o: Num) -> Option<Num> {
        if let (Num::Rat(a, b), Num::Rat(c, d)) = (self, o)
            && let Some(r) = (|| Num::rat(a.checked_mul(c)?, b.checked_mul(d)?))()
        {
            return Some(r);
        }
        Self::real(self.to_f64() * o.to_f64())
    }

    /// a / b; None on division by an exact zero.
    pub fn div(self, o: Num) -> Option<Num> {
        match o {
            Num::Rat(0, _) => None,
            Num::Rat(c, d) => self.mul(Num::rat(d, c)?),
            Num::Real(x) => Self::real(self.to_f64() / x),
        }
    }

    /// a ^ b, exact for rational a and small integer b.
    pub fn pow(self, e: Num) -> Option<Num> {
        if let (Num::Rat(p, q), Some(n)) = (self, e.as_int())
            && n.abs() <= 64
        {
            let r = (|| {
                let k = n.unsigned_abs() as u32;
                let (a, b) = (p.checked_pow(k)?, q.checked_pow(k)?);
                if n >= 0 { Num::rat(a, b) } else { Num::rat(b, a) }
            })();
            if r.is_some() {
                return r;
            }
        }
        Self::real(self.to_f64().powf(e.to_f64()))
    }

    /// √a, exact for perfect-square rationals.
    pub fn sqrt(self) -> Option<Num> {
        if let Num::Rat(p, q) = self
            && p >= 0
        {
            let (rp, rq) = (isqrt(p), isqrt(q));
            if rp * rp == p && rq * rq == q {
                return Num::rat(rp, rq);
            }
        }
        Self::real(self.to_f64().sqrt())
    }

    /// Equal exactly when both are exact, else within a relative 1e-6 (absolute near zero).
    pub fn approx_eq(self, o: Num) -> bool {
        match (self, o) {
            (Num::Rat(a, b), Num::Rat(c, d)) => a == c && b == d,
            _ => close(self.to_f64(), o.to_f64(), 1e-6),
        }
    }
}

/// Relative closeness with an absolute floor, treating equal infinities as equal.
pub fn close(a: f64, b: f64, rel: f64) -> bool {
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-3)
}

fn isqrt(n: i128) -> i128 {
    if n < 2 {
        return n.max(0);
    }
    let mut x = (n as f64).sqrt() as i128;
    while x * x > n {
        x -= 1;
    }
    while (x + 1) * (x + 1) <= n {
        x += 1;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact() {
        assert_eq!(Num::parse_decimal("0.125"), Some(Num::Rat(1, 8)));
        assert_eq!(Num::parse_decimal("-.5"), Some(Num::Rat(-1, 2)));
        assert_eq!(Num::parse_decimal("1e-3"), Some(Num::Rat(1, 1000)));
        assert_eq!(Num::parse_decimal("1.2.3"), None);
    }

    #[test]
    fn arithmetic_by_hand() {
        let third = Num::rat(1, 3).unwrap();
        assert_eq!(third.add(third).unwrap().add(third).unwrap(), Num::int(1));
        assert_eq!(Num::rat(9, 4).unwrap().sqrt(), Num::rat(3, 2));
        assert!(matches!(Num::int(2).sqrt(), Some(Num::Real(_))));
        assert_eq!(Num::rat(2, 3).unwrap().pow(Num::int(-2)), Num::rat(9, 4));
        assert_eq!(Num::int(1).div(Num::int(0)), None);
        assert!(Num::int(8).sqrt().unwrap().approx_eq(Num::int(2).mul(Num::int(2).sqrt().unwrap()).unwrap()));
    }
}
