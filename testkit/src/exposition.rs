//! A test-only helper over the Prometheus text exposition format, for serving real kubelet
//! captures with rows removed; parsing itself is the library's ([`e2e::relabel::parse_sample`]).

use e2e::relabel::{parse_sample, Sample};

/// The body without the sample lines whose labels `drop` matches (of every metric family).
pub fn without_samples(text: &str, drop: impl Fn(&Sample<'_>) -> bool) -> String {
    text.split_inclusive('\n')
        .filter(|line| !parse_sample(line).is_some_and(|s| drop(&s)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_only_the_matching_samples() {
        let body = "# TYPE m counter\nm{pod=\"a\",container=\"x\"} 1\nm{pod=\"a\",container=\"y\"} 1\nn{pod=\"a\",container=\"x\"} 1\n";
        let out = without_samples(body, |s| {
            s.labels.get("container").map(String::as_str) == Some("x")
        });
        assert_eq!(out, "# TYPE m counter\nm{pod=\"a\",container=\"y\"} 1\n");
    }
}
