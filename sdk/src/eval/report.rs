//! The evaluation table: one row per method with its metric, 95% CI, query count and the
//! relative improvement over direct prompting, as Markdown, CSV and JSON.

use std::path::Path;

use serde::{Deserialize, Serialize};

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

    /// The table as Markdown.
    pub fn to_markdown(&self) -> String {
        let mut s = String::from("| method | metric | value | 95% CI | queries | vs direct |\n|---|---|---|---|---|---|\n");
        for m in &self.methods {
            let rel = m.relative_improvement.map(|r| format!("{:+.1}%", r * 100.0)).unwrap_or_else(|| "–".into());
            s.push_str(&format!("| {} | {} | {:.4} | [{:.4}, {:.4}] | {} | {} |\n", m.name, m.metric, m.value, m.ci_low, m.ci_high, m.n_queries, rel));
        }
        s
    }

    /// The table as CSV.
    pub fn to_csv(&self) -> String {
        let mut s = String::from("method,metric,value,ci_low,ci_high,n_queries,relative_improvement\n");
        let quote = |x: &str| if x.contains([',', '"', '\n']) { format!("\"{}\"", x.replace('"', "\"\"")) } else { x.to_string() };
        for m in &self.methods {
            let rel = m.relative_improvement.map(|r| r.to_string()).unwrap_or_default();
            s.push_str(&format!("{},{},{},{},{},{},{}\n", quote(&m.name), quote(&m.metric), m.value, m.ci_low, m.ci_high, m.n_queries, rel));
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
        MethodResult { name: name.into(), metric: "accuracy".into(), value, ci_low: value - 0.1, ci_high: value + 0.1, n_queries: 10, relative_improvement: None, values: Default::default() }
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
