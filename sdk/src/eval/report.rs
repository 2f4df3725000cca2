//! The evaluation table: one row per method with its metric, 95% CI, query count, the
//! relative improvement over direct prompting, and paired 95% intervals of its difference to
//! direct prompting, the untrained Teacher and the best fixed instruction (on the same queries),
//! as Markdown, CSV and JSON. Besides the headline metric, each row carries further measures of
//! the same answers (Student tokens per answer, the share cut by `max_tokens`, each weighted
//! reward value) with the same intervals. When queries come in correlated clusters (variants of
//! one template), every interval is also given by resampling whole clusters.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::bootstrap::{bootstrap_ci, cluster_bootstrap_ci};
use crate::error::{Error, Result};

/// Name of the measure: mean Student completion tokens per answer.
pub const COMPLETION_TOKENS: &str = "completion_tokens";
/// Name of the measure: share of answers cut by `max_tokens` (finish reason `length`).
pub const TRUNCATED: &str = "truncated";

/// A 95% interval from resampling whole clusters of queries (templates), not single queries.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClusterInterval {
    /// Lower bound.
    pub ci_low: f64,
    /// Upper bound.
    pub ci_high: f64,
    /// Clusters resampled.
    pub n_clusters: usize,
}

/// One method's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodResult {
    /// The method (`direct`, `untrained-teacher`, `trained-teacher`, `writer:openai:gpt-4o-mini`...).
    pub name: String,
    /// What `value` measures (e.g. `accuracy@K=10`, `weighted_reward@K=4`).
    pub metric: String,
    /// Mean over queries of the per-query score.
    pub value: f64,
    /// Lower bound of the 95% bootstrap interval.
    pub ci_low: f64,
    /// Upper bound of the 95% bootstrap interval.
    pub ci_high: f64,
    /// The interval from resampling clusters, when queries have clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_cluster: Option<ClusterInterval>,
    /// Queries evaluated.
    pub n_queries: usize,
    /// (value − direct) / |direct|, when a `direct` row exists and is not zero.
    pub relative_improvement: Option<f64>,
    /// Mean of each named reward value (e.g. `helpful/score`), for Pareto plots.
    pub values: BTreeMap<String, f64>,
    /// Each query's score (query id → mean over its K answers), for paired comparisons.
    #[serde(default)]
    pub per_query: BTreeMap<String, f64>,
    /// This method minus another (by name), paired over the queries both were evaluated on.
    #[serde(default)]
    pub paired: BTreeMap<String, PairedDifference>,
    /// Further measures of the same answers ([`COMPLETION_TOKENS`], [`TRUNCATED`], each weighted
    /// reward value), each with its intervals and paired differences.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub measures: BTreeMap<String, Measure>,
    /// Each query's cluster (query id → template id), when the evaluation was clustered.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub clusters: BTreeMap<String, String>,
    /// Queries left out because their answers or scores failed (query id → error).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failed_queries: BTreeMap<String, String>,
}

/// One measure of a method's answers, with the same intervals as the headline metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measure {
    /// Mean over queries of the per-query value.
    pub value: f64,
    /// Lower bound of the 95% bootstrap interval over queries.
    pub ci_low: f64,
    /// Upper bound.
    pub ci_high: f64,
    /// The interval from resampling clusters, when queries have clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_cluster: Option<ClusterInterval>,
    /// Each query's value (mean over its K answers).
    pub per_query: BTreeMap<String, f64>,
    /// This method's value minus another's, paired over shared queries.
    #[serde(default)]
    pub paired: BTreeMap<String, PairedDifference>,
}

impl Measure {
    /// The mean of `per_query` with its intervals (by query, and by cluster when `clusters`
    /// names one for every query).
    pub fn new(per_query: BTreeMap<String, f64>, clusters: &BTreeMap<String, String>, resamples: usize, seed: u64) -> Self {
        let values: Vec<f64> = per_query.values().copied().collect();
        let (value, ci_low, ci_high) = bootstrap_ci(&values, resamples, 0.95, seed);
        let by_cluster = cluster_interval(&per_query, clusters, resamples, seed);
        Measure { value, ci_low, ci_high, by_cluster, per_query, paired: BTreeMap::new() }
    }
}

/// The cluster-bootstrap interval of the values in `per_query`, if every query has a cluster.
fn cluster_interval(per_query: &BTreeMap<String, f64>, clusters: &BTreeMap<String, String>, resamples: usize, seed: u64) -> Option<ClusterInterval> {
    if clusters.is_empty() {
        return None;
    }
    let mut ids: BTreeMap<&str, usize> = BTreeMap::new();
    let mut values = Vec::with_capacity(per_query.len());
    let mut of = Vec::with_capacity(per_query.len());
    for (q, v) in per_query {
        let c = clusters.get(q)?;
        let next = ids.len();
        of.push(*ids.entry(c.as_str()).or_insert(next));
        values.push(*v);
    }
    let (_, ci_low, ci_high) = cluster_bootstrap_ci(&values, &of, resamples, 0.95, seed)?;
    Some(ClusterInterval { ci_low, ci_high, n_clusters: ids.len() })
}

/// `a − b` over the queries both have, with its paired intervals (by query and by cluster).
fn paired_difference(a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>, clusters: &BTreeMap<String, String>, resamples: usize, seed: u64) -> Option<PairedDifference> {
    let diffs: BTreeMap<String, f64> = a.iter().filter_map(|(q, x)| b.get(q).map(|y| (q.clone(), x - y))).collect();
    if diffs.is_empty() {
        return None;
    }
    // Resampling the per-query differences is the paired bootstrap.
    let d: Vec<f64> = diffs.values().copied().collect();
    let (diff, ci_low, ci_high) = bootstrap_ci(&d, resamples, 0.95, seed);
    Some(PairedDifference { diff, ci_low, ci_high, n_queries: d.len(), by_cluster: cluster_interval(&diffs, clusters, resamples, seed) })
}

/// A method's difference to another on the same queries, with a paired bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedDifference {
    /// Mean over shared queries of (this method's score − the other's).
    pub diff: f64,
    /// Lower bound of the 95% paired bootstrap interval over queries.
    pub ci_low: f64,
    /// Upper bound.
    pub ci_high: f64,
    /// Queries both methods were evaluated on.
    pub n_queries: usize,
    /// The paired interval from resampling whole clusters, when queries have clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_cluster: Option<ClusterInterval>,
}

impl PairedDifference {
    /// Whether the interval excludes 0 (the difference is unlikely to be noise); the cluster
    /// interval decides when there is one, since the per-query one is too narrow then.
    pub fn excludes_zero(&self) -> bool {
        let (lo, hi) = self.by_cluster.map_or((self.ci_low, self.ci_high), |c| (c.ci_low, c.ci_high));
        lo > 0.0 || hi < 0.0
    }
}

/// The fixed instruction chosen on training data, that every row is compared to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestFixed {
    /// Its row in this report.
    pub method: String,
    /// The instruction.
    pub instruction: String,
    /// Where it was chosen, e.g. `data.train (first 40 queries)`.
    pub chosen_on: String,
    /// Its headline value there.
    pub value: f64,
}

/// A table of methods.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Rows, in the order evaluated.
    pub methods: Vec<MethodResult>,
    /// The fixed instruction chosen on training data, when the evaluation had a menu.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_fixed: Option<BestFixed>,
}

impl Report {
    /// Fills `relative_improvement` of every row from the row named `baseline`.
    pub fn relate_to(&mut self, baseline: &str) {
        let base = self.methods.iter().find(|m| m.name == baseline).map(|m| m.value);
        for m in &mut self.methods {
            m.relative_improvement = base.filter(|b| b.abs() > 1e-12).map(|b| (m.value - b) / b.abs());
        }
    }

    /// The row named `name`.
    pub fn method(&self, name: &str) -> Option<&MethodResult> {
        self.methods.iter().find(|m| m.name == name)
    }

    /// Fills each row's `paired` differences, for the headline and every measure, to each of
    /// `others` present in the table, over the queries both were scored on (seeded paired
    /// bootstraps with `resamples` resamples, by query and, with clusters, by cluster).
    pub fn compare_to(&mut self, others: &[&str], resamples: usize, seed: u64) {
        let references: Vec<MethodResult> = others.iter().filter_map(|o| self.method(o).cloned()).collect();
        for m in &mut self.methods {
            for r in &references {
                if r.name == m.name {
                    continue;
                }
                if let Some(p) = paired_difference(&m.per_query, &r.per_query, &m.clusters, resamples, seed) {
                    m.paired.insert(r.name.clone(), p);
                }
                for (key, measure) in &mut m.measures {
                    let Some(theirs) = r.measures.get(key) else { continue };
                    if let Some(p) = paired_difference(&measure.per_query, &theirs.per_query, &m.clusters, resamples, seed) {
                        measure.paired.insert(r.name.clone(), p);
                    }
                }
            }
        }
    }

    /// The names of the methods every row is compared to, in a stable order.
    fn compared(&self) -> Vec<String> {
        sorted_unique(self.methods.iter().flat_map(|m| m.paired.keys().cloned()))
    }

    /// The measures any row carries, in a stable order.
    fn measure_names(&self) -> Vec<String> {
        sorted_unique(self.methods.iter().flat_map(|m| m.measures.keys().cloned()))
    }

    /// The table as Markdown: the headline metric, then one table per measure.
    pub fn to_markdown(&self) -> String {
        let compared = self.compared();
        let clustered = self.methods.iter().any(|m| m.by_cluster.is_some());
        let mut s = String::from("| method | metric | value | 95% CI |");
        if clustered {
            s.push_str(" 95% CI by cluster |");
        }
        s.push_str(" queries | vs direct |");
        for c in &compared {
            s.push_str(&format!(" Δ vs {c} (paired 95% CI) |"));
        }
        s.push_str(&format!("\n|---|---|---|---|{}---|---|", if clustered { "---|" } else { "" }));
        s.push_str(&"---|".repeat(compared.len()));
        s.push('\n');
        for m in &self.methods {
            let rel = m.relative_improvement.map(|r| format!("{:+.1}%", r * 100.0)).unwrap_or_else(|| "–".into());
            s.push_str(&format!("| {} | {} | {:.4} | [{:.4}, {:.4}] |", m.name, m.metric, m.value, m.ci_low, m.ci_high));
            if clustered {
                s.push_str(&format!(" {} |", cluster_cell(m.by_cluster, 4)));
            }
            s.push_str(&format!(" {} | {} |", m.n_queries, rel));
            for c in &compared {
                s.push_str(&format!(" {} |", paired_cell(m.paired.get(c), 4)));
            }
            s.push('\n');
        }
        for key in self.measure_names() {
            let digits = if key == COMPLETION_TOKENS { 1 } else { 4 };
            let title = match key.as_str() {
                COMPLETION_TOKENS => "Student completion tokens per answer".to_string(),
                TRUNCATED => "Share of answers cut by max_tokens".to_string(),
                other => format!("Reward value `{other}`"),
            };
            let compared = sorted_unique(self.methods.iter().filter_map(|m| m.measures.get(&key)).flat_map(|x| x.paired.keys().cloned()));
            s.push_str(&format!("\n#### {title}\n\n| method | mean | 95% CI |{}", if clustered { " 95% CI by cluster |" } else { "" }));
            for c in &compared {
                s.push_str(&format!(" Δ vs {c} (paired 95% CI) |"));
            }
            s.push_str(&format!("\n|---|---|---|{}", if clustered { "---|" } else { "" }));
            s.push_str(&"---|".repeat(compared.len()));
            s.push('\n');
            for m in &self.methods {
                let Some(x) = m.measures.get(&key) else { continue };
                s.push_str(&format!("| {} | {:.d$} | [{:.d$}, {:.d$}] |", m.name, x.value, x.ci_low, x.ci_high, d = digits));
                if clustered {
                    s.push_str(&format!(" {} |", cluster_cell(x.by_cluster, digits)));
                }
                for c in &compared {
                    s.push_str(&format!(" {} |", paired_cell(x.paired.get(c), digits)));
                }
                s.push('\n');
            }
        }
        for m in self.methods.iter().filter(|m| !m.failed_queries.is_empty()) {
            let (id, error) = m.failed_queries.iter().next().map(|(a, b)| (a.as_str(), b.as_str())).unwrap_or_default();
            s.push_str(&format!("\n`{}`: {} queries left out after failing (first: `{id}`: {error})\n", m.name, m.failed_queries.len()));
        }
        if let Some(b) = &self.best_fixed {
            s.push_str(&format!("\nBest fixed instruction, chosen on {} ({:.4} there): `{}` = {:?}\n", b.chosen_on, b.value, b.method, b.instruction));
        }
        if self.methods.iter().any(|m| !m.paired.is_empty()) {
            s.push_str(if clustered {
                "\n\\* the paired interval by cluster excludes 0 (the per-query interval is shown beside it, in brackets).\n"
            } else {
                "\n\\* the paired interval excludes 0.\n"
            });
        }
        s
    }

    /// The table as CSV: the headline's columns, then each measure's.
    pub fn to_csv(&self) -> String {
        let compared = self.compared();
        let measures = self.measure_names();
        let mut s = String::from("method,metric,value,ci_low,ci_high,cluster_ci_low,cluster_ci_high,n_queries,relative_improvement");
        let diff_cols = |s: &mut String, prefix: &str| {
            for c in &compared {
                s.push_str(&format!(
                    ",{prefix}diff_vs_{c},{prefix}diff_vs_{c}_ci_low,{prefix}diff_vs_{c}_ci_high,{prefix}diff_vs_{c}_cluster_ci_low,{prefix}diff_vs_{c}_cluster_ci_high"
                ));
            }
        };
        diff_cols(&mut s, "");
        for key in &measures {
            s.push_str(&format!(",{key},{key}_ci_low,{key}_ci_high,{key}_cluster_ci_low,{key}_cluster_ci_high"));
            diff_cols(&mut s, &format!("{key}_"));
        }
        s.push('\n');
        let quote = |x: &str| if x.contains([',', '"', '\n']) { format!("\"{}\"", x.replace('"', "\"\"")) } else { x.to_string() };
        let cluster = |c: Option<ClusterInterval>| c.map(|c| format!("{},{}", c.ci_low, c.ci_high)).unwrap_or_else(|| ",".into());
        let diffs = |s: &mut String, paired: &BTreeMap<String, PairedDifference>| {
            for c in &compared {
                match paired.get(c) {
                    Some(p) => s.push_str(&format!(",{},{},{},{}", p.diff, p.ci_low, p.ci_high, cluster(p.by_cluster))),
                    None => s.push_str(",,,,,"),
                }
            }
        };
        for m in &self.methods {
            let rel = m.relative_improvement.map(|r| r.to_string()).unwrap_or_default();
            s.push_str(&format!("{},{},{},{},{},{},{},{}", quote(&m.name), quote(&m.metric), m.value, m.ci_low, m.ci_high, cluster(m.by_cluster), m.n_queries, rel));
            diffs(&mut s, &m.paired);
            for key in &measures {
                match m.measures.get(key) {
                    Some(x) => {
                        s.push_str(&format!(",{},{},{},{}", x.value, x.ci_low, x.ci_high, cluster(x.by_cluster)));
                        diffs(&mut s, &x.paired);
                    }
                    None => {
                        s.push_str(",,,,");
                        diffs(&mut s, &BTreeMap::new());
                    }
                }
            }
            s.push('\n');
        }
        s
    }

    /// Writes `results.json`, `results.md` and `results.csv` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let json = serde_json::to_string_pretty(self).map_err(|e| Error::serialize("results.json", e))?;
        for (name, text) in [("results.json", json), ("results.md", self.to_markdown()), ("results.csv", self.to_csv())] {
            let p = dir.join(name);
            let tmp = dir.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
            std::fs::rename(&tmp, &p).map_err(|e| Error::io(&p, e))?;
        }
        Ok(())
    }
}

/// `names` sorted, each once.
fn sorted_unique(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut names: Vec<String> = names.into_iter().collect();
    names.sort();
    names.dedup();
    names
}

/// `[lo, hi]` of a cluster interval, or `–`.
fn cluster_cell(c: Option<ClusterInterval>, digits: usize) -> String {
    c.map(|c| format!("[{:.d$}, {:.d$}] ({} clusters)", c.ci_low, c.ci_high, c.n_clusters, d = digits)).unwrap_or_else(|| "–".into())
}

/// `+d [lo, hi]` (and the cluster interval when there is one), starred when it excludes 0.
fn paired_cell(p: Option<&PairedDifference>, digits: usize) -> String {
    let Some(p) = p else { return "–".into() };
    let star = if p.excludes_zero() { " *" } else { "" };
    match p.by_cluster {
        Some(c) => format!("{:+.d$} [{:+.d$}, {:+.d$}] by cluster, [{:+.d$}, {:+.d$}] by query{star}", p.diff, c.ci_low, c.ci_high, p.ci_low, p.ci_high, d = digits),
        None => format!("{:+.d$} [{:+.d$}, {:+.d$}]{star}", p.diff, p.ci_low, p.ci_high, d = digits),
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
            by_cluster: None,
            measures: Default::default(),
            clusters: Default::default(),
            failed_queries: Default::default(),
        }
    }

    #[test]
    fn paired_differences_use_the_shared_queries() {
        let per = |xs: &[(&str, f64)]| xs.iter().map(|(q, x)| (q.to_string(), *x)).collect::<BTreeMap<_, _>>();
        let mut r = Report {
            best_fixed: None,
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
        assert!(
            csv.lines().next().unwrap().ends_with("diff_vs_untrained-teacher_ci_high,diff_vs_untrained-teacher_cluster_ci_low,diff_vs_untrained-teacher_cluster_ci_high"),
            "{csv}"
        );
    }

    #[test]
    fn measures_get_paired_intervals_by_query_and_by_cluster() {
        let per = |xs: &[(&str, f64)]| xs.iter().map(|(q, x)| (q.to_string(), *x)).collect::<BTreeMap<_, _>>();
        // Queries a, b from template t1 and c, d from t2.
        let clusters: BTreeMap<String, String> = [("a", "t1"), ("b", "t1"), ("c", "t2"), ("d", "t2")].iter().map(|(q, c)| (q.to_string(), c.to_string())).collect();
        let with = |name: &str, tokens: &[(&str, f64)]| {
            let mut m = row(name, 0.5);
            m.per_query = per(&[("a", 0.5), ("b", 0.5), ("c", 0.5), ("d", 0.5)]);
            m.clusters = clusters.clone();
            m.measures.insert(COMPLETION_TOKENS.into(), Measure::new(per(tokens), &clusters, 2000, 3));
            m
        };
        let mut r = Report {
            methods: vec![
                with("direct", &[("a", 100.0), ("b", 120.0), ("c", 200.0), ("d", 220.0)]),
                with("trained-teacher", &[("a", 90.0), ("b", 110.0), ("c", 170.0), ("d", 190.0)]),
            ],
            best_fixed: None,
        };
        r.compare_to(&["direct"], 2000, 3);
        let t = &r.methods[1].measures[COMPLETION_TOKENS];
        assert_eq!(t.value, 140.0);
        // Differences −10, −10 (t1) and −30, −30 (t2): mean −20. Resampling the two templates
        // gives −10 (t1 twice), −20 or −30 (t2 twice), so the cluster interval is [−30, −10].
        let d = t.paired["direct"];
        assert_eq!((d.diff, d.n_queries), (-20.0, 4));
        let c = d.by_cluster.unwrap();
        assert_eq!((c.ci_low, c.ci_high, c.n_clusters), (-30.0, -10.0, 2));
        assert!(d.excludes_zero());
        // The headline is identical for both rows: a zero difference, not starred.
        assert_eq!(r.methods[1].paired["direct"].diff, 0.0);
        assert!(!r.methods[1].paired["direct"].excludes_zero());
        let md = r.to_markdown();
        assert!(md.contains("#### Student completion tokens per answer"), "{md}");
        assert!(md.contains("| trained-teacher | 140.0 |") && md.contains("-20.0 [-30.0, -10.0] by cluster"), "{md}");
        let csv = r.to_csv();
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        let row: Vec<&str> = csv.lines().nth(2).unwrap().split(',').collect();
        let col = |name: &str| row[header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name}: {header:?}"))];
        assert_eq!((col("completion_tokens"), col("completion_tokens_diff_vs_direct"), col("completion_tokens_diff_vs_direct_cluster_ci_low")), ("140", "-20", "-30"));
        assert_eq!(header.len(), row.len());
    }

    #[test]
    fn relative_improvement_is_against_direct() {
        let mut r = Report { methods: vec![row("direct", 0.4), row("trained-teacher", 0.5)], best_fixed: None };
        r.relate_to("direct");
        assert_eq!(r.methods[0].relative_improvement, Some(0.0));
        assert!((r.methods[1].relative_improvement.unwrap() - 0.25).abs() < 1e-12);
        assert!(r.to_markdown().contains("| trained-teacher | accuracy | 0.5000 | [0.4000, 0.6000] | 10 | +25.0% |"));
        assert!(r.to_csv().lines().nth(2).unwrap().starts_with("trained-teacher,accuracy,0.5,"));
    }
}
