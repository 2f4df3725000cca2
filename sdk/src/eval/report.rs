//! The evaluation table: one row per method with its metric, 95% CI, query count, the
//! relative improvement over direct prompting, and paired 95% intervals of its difference to
//! direct prompting and to the untrained Teacher (on the same queries), as Markdown, CSV and JSON.

use std::path::Path;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::bootstrap::paired_bootstrap_ci;
use crate::error::{Error, Result};

/// One method's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodResult {
    /// The method (`direct`, `untrained-teacher`, `trained-teacher`, `writer:openai:gpt-4o-mini`...).
    pub name: String,
    /// What `value` measures (e.g. `accuracy@K=10`).
    pub metric: String,
    /// Mean over queries of the per-query score.
    pub value: f64,
    /// Lower bound of the 95% bootstrap interval.
    pub ci_low: f64,
    /// Upper bound of the 95% bootstrap interval.
    pub ci_high: f64,
    /// Queries evaluated.
    pub n_queries: usize,
    /// (value − direct) / |direct|, when a `direct` row exists and is not zero.
    pub relative_improvement: Option<f64>,
    /// Mean of each named reward value (e.g. `helpful/score`), for Pareto plots.
    pub values: std::collections::BTreeMap<String, f64>,
    /// Each query's score (query id → mean over its K answers), for paired comparisons.
    #[serde(default)]
    pub per_query: BTreeMap<String, f64>,
    /// This method minus another (by name), paired over the queries both were evaluated on.
    #[serde(default)]
    pub paired: BTreeMap<String, PairedDifference>,
}

/// A method's difference to another on the same queries, with a paired bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedDifference {
    /// Mean over shared queries of (this method's score − the other's).
    pub diff: f64,
    /// Lower bound of the 95% paired bootstrap interval.
    pub ci_low: f64,
    /// Upper bound.
    pub ci_high: f64,
    /// Queries both methods were evaluated on.
    pub n_queries: usize,
}

impl PairedDifference {
    /// Whether the interval excludes 0 (the difference is unlikely to be noise).
    pub fn excludes_zero(&self) -> bool {
        self.ci_low > 0.0 || self.ci_high < 0.0
    }
}

/// A table of methods.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Rows, in the order evaluated.
    pub methods: Vec<MethodResult>,
}

impl Report {
    /// Fills `relative_improvement` of every row from the row named `baseline`.
    pub fn relate_to(&mut self, baseline: &str) {
        let base = self.methods.iter().find(|m| m.name == baseline).map(|m| m.value);
        for m in &mut self.methods {
            m.relative_improvement = base.filter(|b| b.abs() > 1e-12).map(|b| (m.value - b) / b.abs());
        }
    }

    /// Fills each row's `paired` difference to each of `others` present in the table, over the
    /// queries both were scored on (a seeded paired bootstrap with `resamples` resamples).
    pub fn compare_to(&mut self, others: &[&str], resamples: usize, seed: u64) {
        let references: Vec<(String, BTreeMap<String, f64>)> =
            others.iter().filter_map(|o| self.methods.iter().find(|m| m.name == *o).map(|m| (m.name.clone(), m.per_query.clone()))).collect();
        for m in &mut self.methods {
            for (name, reference) in &references {
                if *name == m.name {
                    continue;
                }
                let (a, b): (Vec<f64>, Vec<f64>) = m.per_query.iter().filter_map(|(q, x)| reference.get(q).map(|y| (*x, *y))).unzip();
                if a.is_empty() {
                    continue;
                }
                if let Some((diff, ci_low, ci_high)) = paired_bootstrap_ci(&a, &b, resamples, 0.95, seed) {
                    m.paired.insert(name.clone(), PairedDifference { diff, ci_low, ci_high, n_queries: a.len() });
                }
            }
        }
    }

    /// The names of the methods every row is compared to, in a stable order.
    fn compared(&self) -> Vec<String> {
        let mut names: Vec<String> = self.methods.iter().flat_map(|m| m.paired.keys().cloned()).collect();
        names.sort();
        names.dedup();
        names
    }

    /// The table as Markdown.
    pub fn to_markdown(&self) -> String {
        let compared = self.compared();
        let mut s = String::from("| method | metric | value | 95% CI | queries | vs direct |");
        for c in &compared {
            s.push_str(&format!(" Δ vs {c} (paired 95% CI) |"));
        }
        s.push_str("\n|---|---|---|---|---|---|");
        s.push_str(&"---|".repeat(compared.len()));
        s.push('\n');
        for m in &self.methods {
            let rel = m.relative_improvement.map(|r| format!("{:+.1}%", r * 100.0)).unwrap_or_else(|| "–".into());
            s.push_str(&format!("| {} | {} | {:.4} | [{:.4}, {:.4}] | {} | {} |", m.name, m.metric, m.value, m.ci_low, m.ci_high, m.n_queries, rel));
            for c in &compared {
                match m.paired.get(c) {
                    Some(p) => s.push_str(&format!(" {:+.4} [{:+.4}, {:+.4}]{} |", p.diff, p.ci_low, p.ci_high, if p.excludes_zero() { " *" } else { "" })),
                    None => s.push_str(" – |"),
                }
            }
            s.push('\n');
        }
        if !compared.is_empty() {
            s.push_str("\n\\* the paired interval excludes 0.\n");
        }
        s
    }

    /// The table as CSV.
    pub fn to_csv(&self) -> String {
        let compared = self.compared();
        let mut s = String::from("method,metric,value,ci_low,ci_high,n_queries,relative_improvement");
        for c in &compared {
            s.push_str(&format!(",diff_vs_{c},diff_vs_{c}_ci_low,diff_vs_{c}_ci_high"));
        }
        s.push('\n');
        let quote = |x: &str| if x.contains([',', '"', '\n']) { format!("\"{}\"", x.replace('"', "\"\"")) } else { x.to_string() };
        for m in &self.methods {
            let rel = m.relative_improvement.map(|r| r.to_string()).unwrap_or_default();
            s.push_str(&format!("{},{},{},{},{},{},{}", quote(&m.name), quote(&m.metric), m.value, m.ci_low, m.ci_high, m.n_queries, rel));
            for c in &compared {
                match m.paired.get(c) {
                    Some(p) => s.push_str(&format!(",{},{},{}", p.diff, p.ci_low, p.ci_high)),
                    None => s.push_str(",,,"),
                }
            }
            s.push('\n');
        }
        s
    }

    /// Writes `results.json`, `results.md` and `results.csv` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let json = serde_json::to_string_pretty(self).map_err(|e| Error::Teacher(format!("report: {e}")))?;
        for (name, text) in [("results.json", json), ("results.md", self.to_markdown()), ("results.csv", self.to_csv())] {
            let p = dir.join(name);
            let tmp = dir.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
            std::fs::rename(&tmp, &p).map_err(|e| Error::io(&p, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, value: f64) -> MethodResult {
        MethodResult {
            name: name.into(),
            metric: "accuracy".into(),
            value,
            ci_low: value - 0.1,
            ci_high: value + 0.1,
            n_queries: 10,
            relative_improvement: None,
            values: Default::default(),
            per_query: Default::default(),
            paired: Default::default(),
        }
    }

    #[test]
    fn paired_differences_use_the_shared_queries() {
        let per = |xs: &[(&str, f64)]| xs.iter().map(|(q, x)| (q.to_string(), *x)).collect::<BTreeMap<_, _>>();
        let mut r = Report {
            methods: vec![
                MethodResult { per_query: per(&[("a", 0.0), ("b", 0.5), ("c", 1.0)]), ..row("direct", 0.5) },
                MethodResult { per_query: per(&[("a", 0.0), ("b", 0.5)]), ..row("untrained-teacher", 0.25) },
                MethodResult { per_query: per(&[("a", 0.5), ("b", 1.0), ("c", 1.0)]), ..row("trained-teacher", 0.8333) },
            ],
        };
        r.compare_to(&["direct", "untrained-teacher"], 1000, 1);
        let t = &r.methods[2].paired;
        // vs direct: d = [0.5, 0.5, 0] → mean 1/3; vs untrained (queries a, b only): d = [0.5, 0.5].
        assert!((t["direct"].diff - 1.0 / 3.0).abs() < 1e-12 && t["direct"].n_queries == 3);
        assert_eq!((t["untrained-teacher"].diff, t["untrained-teacher"].ci_low, t["untrained-teacher"].n_queries), (0.5, 0.5, 2));
        assert!(t["untrained-teacher"].excludes_zero());
        assert!(!r.methods[0].paired.contains_key("direct"), "no row is compared to itself");
        let md = r.to_markdown();
        assert!(md.contains("Δ vs direct (paired 95% CI)") && md.contains("+0.5000 [+0.5000, +0.5000] *"), "{md}");
        let csv = r.to_csv();
        assert!(csv.lines().next().unwrap().ends_with("diff_vs_untrained-teacher_ci_high"), "{csv}");
    }

    #[test]
    fn relative_improvement_is_against_direct() {
        let mut r = Report { methods: vec![row("direct", 0.4), row("trained-teacher", 0.5)] };
        r.relate_to("direct");
        assert_eq!(r.methods[0].relative_improvement, Some(0.0));
        assert!((r.methods[1].relative_improvement.unwrap() - 0.25).abs() < 1e-12);
        assert!(r.to_markdown().contains("| trained-teacher | accuracy | 0.5000 | [0.4000, 0.6000] | 10 | +25.0% |"));
        assert!(r.to_csv().lines().nth(2).unwrap().starts_with("trained-teacher,accuracy,0.5,"));
    }
}
