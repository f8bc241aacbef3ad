//! Small, tested helpers over the Prometheus text exposition format, for serving real kubelet
//! captures from the fixture kubelet (see [`crate::FixtureKubelet::start_raw`]).

use std::collections::BTreeMap;

/// A sample line split into its parts: `name{labels} value [timestamp]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    pub name: &'a str,
    pub labels: BTreeMap<String, String>,
    /// Everything up to and including the closing `}` (or the bare name).
    pub series: &'a str,
    pub value: &'a str,
    pub timestamp: Option<&'a str>,
}

/// Parses one sample line; `None` for comments, blank lines and lines that are not samples.
pub fn parse_sample(line: &str) -> Option<Sample<'_>> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim_start().is_empty() || line.trim_start().starts_with('#') {
        return None;
    }
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    let mut labels = BTreeMap::new();
    let series_end = if line[name_end..].starts_with('{') {
        // Label values may hold `}`, `,`, spaces and escaped quotes: walk them quote-aware.
        let bytes = line.as_bytes();
        let mut i = name_end + 1;
        loop {
            while i < bytes.len() && (bytes[i] == b',' || bytes[i] == b' ') {
                i += 1;
            }
            if i >= bytes.len() {
                return None;
            }
            if bytes[i] == b'}' {
                break i + 1;
            }
            let eq = i + line[i..].find('=')?;
            let key = line[i..eq].trim().to_string();
            if bytes.get(eq + 1) != Some(&b'"') {
                return None;
            }
            let mut j = eq + 2;
            let mut value = String::new();
            loop {
                match bytes.get(j)? {
                    b'\\' => {
                        match bytes.get(j + 1)? {
                            b'n' => value.push('\n'),
                            other => value.push(*other as char),
                        }
                        j += 2;
                    }
                    b'"' => break,
                    _ => {
                        let ch = line[j..].chars().next()?;
                        value.push(ch);
                        j += ch.len_utf8();
                    }
                }
            }
            labels.insert(key, value);
            i = j + 1;
        }
    } else {
        name_end
    };
    let mut rest = line[series_end..].split_whitespace();
    let value = rest.next()?;
    let timestamp = rest.next();
    if rest.next().is_some() || name.is_empty() {
        return None;
    }
    Some(Sample {
        name,
        labels,
        series: &line[..series_end],
        value,
        timestamp,
    })
}

/// The body with every sample's timestamp dropped, everything else byte for byte (comments,
/// order, label sets, values). Prometheus refuses samples older than its head block, and a
/// capture's timestamps are years old; without them it stamps each sample with the scrape time.
pub fn strip_sample_timestamps(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        match parse_sample(line) {
            Some(s) if s.timestamp.is_some() => {
                out.push_str(s.series);
                out.push(' ');
                out.push_str(s.value);
                if line.ends_with('\n') {
                    out.push('\n');
                }
            }
            _ => out.push_str(line),
        }
    }
    out
}

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
    fn parses_labels_with_commas_braces_spaces_and_escapes() {
        let s =
            parse_sample(r#"m{a="x,y",b="}{ ",c="q\"uote",d="back\\slash"} 1.5e+03 1681346182551"#)
                .unwrap();
        assert_eq!(s.name, "m");
        assert_eq!(s.labels["a"], "x,y");
        assert_eq!(s.labels["b"], "}{ ");
        assert_eq!(s.labels["c"], "q\"uote");
        assert_eq!(s.labels["d"], "back\\slash");
        assert_eq!(s.value, "1.5e+03");
        assert_eq!(s.timestamp, Some("1681346182551"));
        let bare = parse_sample("kubelet_running_pods 12").unwrap();
        assert_eq!(
            (bare.name, bare.value, bare.timestamp),
            ("kubelet_running_pods", "12", None)
        );
        assert!(bare.labels.is_empty());
        assert_eq!(parse_sample("# TYPE m counter"), None);
        assert_eq!(parse_sample(""), None);
    }

    #[test]
    fn strips_timestamps_and_keeps_everything_else() {
        let body = "# HELP m help text 123\n# TYPE m counter\n\
                    m{id=\"/a b\",x=\"}\"} 470.6 1681346182551\n\
                    m{id=\"/\"} 2\n\
                    bare 3 1681346182551\n";
        assert_eq!(
            strip_sample_timestamps(body),
            "# HELP m help text 123\n# TYPE m counter\n\
             m{id=\"/a b\",x=\"}\"} 470.6\n\
             m{id=\"/\"} 2\n\
             bare 3\n"
        );
        // Idempotent, and a body without a final newline keeps its shape.
        let once = strip_sample_timestamps("m{a=\"1\"} 1 2");
        assert_eq!(once, "m{a=\"1\"} 1");
        assert_eq!(strip_sample_timestamps(&once), once);
    }

    #[test]
    fn drops_only_the_matching_samples() {
        let body = "# TYPE m counter\nm{pod=\"a\",container=\"x\"} 1\nm{pod=\"a\",container=\"y\"} 1\nn{pod=\"a\",container=\"x\"} 1\n";
        let out = without_samples(body, |s| {
            s.labels.get("container").map(String::as_str) == Some("x")
        });
        assert_eq!(out, "# TYPE m counter\nm{pod=\"a\",container=\"y\"} 1\n");
    }
}
