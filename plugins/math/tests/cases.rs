//! The math reward on a table of (Student answer, gold, verdict) cases covering every rule:
//! extraction anchors, GSM8K's real answer formats, LaTeX normalisation, units and currency,
//! thousands separators, fractions / decimals / percentages, exact arithmetic, radicals and π,
//! symbolic equality, tuples, intervals, sets, equations and multiple-choice letters. Every
//! rule has cases that must fail too, so an always-true grader cannot pass.

use wst_reward_math::is_correct;

include!("case_table.rs");

#[test]
fn table_has_enough_cases_of_both_verdicts() {
    let positives = CASES.iter().filter(|c| c.2).count();
    let negatives = CASES.len() - positives;
    assert!(CASES.len() >= 200, "only {} cases", CASES.len());
    assert!(negatives >= 60, "only {negatives} negative cases");
}

#[test]
fn every_case_gets_its_verdict() {
    let failures: Vec<String> =
        CASES.iter().filter(|(pred, gold, want)| is_correct(pred, gold) != *want).map(|(pred, gold, want)| format!("expected {want}: pred {pred:?} vs gold {gold:?}")).collect();
    assert!(failures.is_empty(), "{} of {} cases wrong:\n{}", failures.len(), CASES.len(), failures.join("\n"));
}
