//! Reading a score out of a judge's reply: a number matched by a regex, a field of a JSON
//! object, or the G-Eval way, the probability-weighted mean of the score tokens the server's
//! log-probs offer at the position where the reply gives its score.

use serde_json::Value;

/// The first match of `re` in `text`, as a number (its first group when it has one).
pub fn by_regex(text: &str, re: &regex::Regex) -> Option<f64> {
    let c = re.captures(text)?;
    c.get(1).or_else(|| c.get(0))?.as_str().trim().parse().ok()
}

/// `field` (dotted for nesting: `scores.helpful`) of the JSON object in `text`: the whole text,
/// or the span from its first `{` to its last `}` (judges wrap JSON in prose or code fences).
/// Numbers and numeric strings are read.
pub fn by_json(text: &str, field: &str) -> Option<f64> {
    let parsed: Value = serde_json::from_str(text.trim()).ok().or_else(|| {
        let (a, b) = (text.find('{')?, text.rfind('}')?);
        serde_json::from_str(text.get(a..=b)?).ok()
    })?;
    let v = field.split('.').try_fold(&parsed, |v, k| v.get(k))?;
    v.as_f64().or_else(|| v.as_str()?.trim().parse().ok())
}

/// G-Eval: at the first generated token that is a whole number in `lo..=hi`, the mean of the
/// numbers among that position's top log-probs, weighted by their probabilities (renormalised
/// over those numbers). `content` is a chat completion's `choices[0].logprobs.content`.
pub fn by_logprobs(content: &[Value], lo: i64, hi: i64) -> Option<f64> {
    let number = |t: &Value| -> Option<i64> { t.get("token")?.as_str()?.trim().parse::<i64>().ok().filter(|n| (lo..=hi).contains(n)) };
    let position = content.iter().find(|t| number(t).is_some())?;
    let tops = position.get("top_logprobs")?.as_array()?;
    let (mut sum, mut mass) = (0.0, 0.0);
    for t in tops {
        if let (Some(n), Some(lp)) = (number(t), t.get("logprob").and_then(Value::as_f64)) {
            let p = lp.exp();
            sum += p * n as f64;
            mass += p;
        }
    }
    (mass > 0.0).then(|| sum / mass)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_regex_reads_its_first_group_or_its_match() {
        let re = regex::Regex::new(r"(?i)score:\s*(-?\d+(?:\.\d+)?)").unwrap();
        assert_eq!(by_regex("Reasoning... Score: 7.5/10", &re), Some(7.5));
        assert_eq!(by_regex("no score here", &re), None);
        let bare = regex::Regex::new(r"-?\d+").unwrap();
        assert_eq!(by_regex("I give it 8 out of 10", &bare), Some(8.0));
    }

    #[test]
    fn json_is_read_from_prose_and_fences() {
        assert_eq!(by_json(r#"{"score": 9}"#, "score"), Some(9.0));
        assert_eq!(by_json("Here:\n```json\n{\"scores\": {\"helpful\": \"6\"}}\n```", "scores.helpful"), Some(6.0));
        assert_eq!(by_json(r#"{"score": "high"}"#, "score"), None);
        assert_eq!(by_json("not json", "score"), None);
    }

    #[test]
    fn logprobs_give_the_probability_weighted_score() {
        // At the score position: "8" with p = 0.5, "9" with p = 0.25, "x" (not a number) with
        // p = 0.25. Renormalised over the numbers: (0.5·8 + 0.25·9) / 0.75 = 25/3.
        let content = vec![
            json!({"token": "Score", "logprob": -0.1, "top_logprobs": []}),
            json!({"token": " 8", "logprob": 0.5f64.ln(), "top_logprobs": [
                {"token": " 8", "logprob": 0.5f64.ln()}, {"token": "9", "logprob": 0.25f64.ln()}, {"token": "x", "logprob": 0.25f64.ln()}]}),
        ];
        assert!((by_logprobs(&content, 1, 10).unwrap() - 25.0 / 3.0).abs() < 1e-12);
        assert_eq!(by_logprobs(&content[..1], 1, 10), None, "no number generated");
        // Out-of-range numbers are not scores.
        let big = vec![json!({"token": "42", "logprob": 0.0, "top_logprobs": [{"token": "42", "logprob": 0.0}]})];
        assert_eq!(by_logprobs(&big, 1, 10), None);
    }
}
