//! The Prometheus text exposition format (a kubelet's `/metrics/cadvisor` body): one sample
//! line's parts, the series of one metric as label sets, and the body without timestamps.

use super::{set, Labels};

/// A sample line split into its parts: `name{labels} value [timestamp]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// The metric name.
    pub name: &'a str,
    /// The label set, values unescaped (empty ones kept).
    pub labels: Labels,
    /// Everything up to and including the closing `}` (or the bare name).
    pub series: &'a str,
    /// The value, as written.
    pub value: &'a str,
    /// The timestamp in milliseconds, as written, if any.
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
    let mut labels = Labels::new();
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

/// The label sets of `metric`'s samples in a Prometheus text exposition body (a kubelet's
/// `/metrics/cadvisor`), `__name__` included; empty label values are absent, as in Prometheus.
/// Comments, other metrics and lines that are not well-formed samples are skipped.
pub fn exposition_series<'a>(text: &'a str, metric: &'a str) -> impl Iterator<Item = Labels> + 'a {
    text.lines()
        .filter_map(parse_sample)
        .filter(move |s| s.name == metric)
        .map(move |s| {
            let mut labels = Labels::new();
            for (name, value) in s.labels {
                set(&mut labels, name, value);
            }
            labels.insert("__name__".into(), metric.to_string());
            labels
        })
}

/// The body with every sample's timestamp dropped, everything else byte for byte (comments,
/// order, label sets, values, line endings). Prometheus refuses samples older than its head
/// block (prometheus `scrape/scrape.go`: out-of-bounds samples are dropped), and a capture's
/// are hours to years old; without them it stamps each sample with the scrape time.
pub fn strip_timestamps(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    for line in body.split_inclusive('\n') {
        let content = line.trim_end_matches(['\n', '\r']);
        match parse_sample(content) {
            Some(s) if s.timestamp.is_some() => {
                out.push_str(s.series);
                out.push(' ');
                out.push_str(s.value);
                out.push_str(&line[content.len()..]);
            }
            _ => out.push_str(line),
        }
    }
    out
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
            strip_timestamps(body),
            "# HELP m help text 123\n# TYPE m counter\n\
             m{id=\"/a b\",x=\"}\"} 470.6\n\
             m{id=\"/\"} 2\n\
             bare 3\n"
        );
        // Idempotent, and a body without a final newline keeps its shape.
        let once = strip_timestamps("m{a=\"1\"} 1 2");
        assert_eq!(once, "m{a=\"1\"} 1");
        assert_eq!(strip_timestamps(&once), once);
    }

    #[test]
    fn timestamps_go_and_line_endings_stay() {
        let body = "# HELP x help\n# TYPE x counter\n\
                    x{a=\"1 2\",b=\"}\"} 3.5 1681346175123\n\
                    y 7 1681346175123\r\n\
                    z{a=\"b\"} 1\n\
                    \n";
        assert_eq!(
            strip_timestamps(body),
            "# HELP x help\n# TYPE x counter\n\
             x{a=\"1 2\",b=\"}\"} 3.5\n\
             y 7\r\n\
             z{a=\"b\"} 1\n\
             \n"
        );
    }
}
