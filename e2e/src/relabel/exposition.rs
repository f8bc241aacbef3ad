//! The Prometheus text exposition format (a kubelet's `/metrics/cadvisor` body), read line by
//! line as Prometheus v2.26.0's parser reads it (prometheus/prometheus
//! pkg/textparse/{promlex.l,promparse.go}@v2.26.0): samples, `# HELP`, `# TYPE` and comments;
//! the series of one metric as label sets; and the body without timestamps.
//!
//! Judged by upstream's `promparse_test.go` (`e2e/tests/upstream`). Where a line-at-a-time reader
//! differs from Prometheus's whole-body lexer, it says so below.

use super::labels::{set, Labels};

/// A sample line split into its parts: `name{labels} value [timestamp]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// The metric name.
    pub name: &'a str,
    /// The label set, values unescaped (empty ones kept).
    pub labels: Labels,
    /// The line up to and including the closing `}` (or the bare name): promparse.go `Series()`.
    pub series: &'a str,
    /// The value, as written.
    pub value: &'a str,
    /// The timestamp in milliseconds, as written, if any.
    pub timestamp: Option<&'a str>,
}

impl Sample<'_> {
    /// The value as Prometheus reads it (`NaN`, `+Inf`, `-Inf` included); `None` when it would
    /// refuse it (only possible for a sample not made by [`read_line`]).
    pub fn number(&self) -> Option<f64> {
        parse_float(self.value)
    }

    /// The timestamp in milliseconds, if the line has one (and it is a 64-bit integer).
    pub fn timestamp_ms(&self) -> Option<i64> {
        self.timestamp?.parse().ok()
    }
}

/// A metric type of a `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// `counter`.
    Counter,
    /// `gauge`.
    Gauge,
    /// `histogram`.
    Histogram,
    /// `summary`.
    Summary,
    /// `untyped`.
    Untyped,
}

/// One line of a text exposition body.
#[derive(Debug, Clone, PartialEq)]
pub enum Line<'a> {
    /// Empty, or only spaces and tabs.
    Blank,
    /// A comment that is neither `# HELP` nor `# TYPE`, from its `#` on.
    Comment(&'a str),
    /// `# HELP <metric> <text>`; the text unescaped (`\\` and `\n`).
    Help {
        /// The metric name.
        metric: &'a str,
        /// The help text.
        text: String,
    },
    /// `# TYPE <metric> <type>`.
    Type {
        /// The metric name.
        metric: &'a str,
        /// The type.
        kind: MetricType,
    },
    /// A sample.
    Sample(Sample<'a>),
}

/// Why Prometheus would refuse a line (and with it the whole scrape). The variants follow
/// promparse.go's errors; `found` shows what stood where the parser expected something else.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpositionError {
    /// Neither a metric name, `#` nor a blank line.
    #[error("{found:?} is not a valid start of a line: a metric name, `#` or nothing")]
    InvalidStart {
        /// The line from the offending character on.
        found: String,
    },
    /// `# HELP`/`# TYPE` without a metric name after it.
    #[error("expected a metric name after HELP or TYPE, found {found:?}")]
    ExpectedMetricName {
        /// What followed.
        found: String,
    },
    /// `# TYPE` with a type other than counter, gauge, histogram, summary, untyped.
    #[error("invalid metric type {0:?}")]
    InvalidType(String),
    /// `# HELP` text that is not UTF-8 once its separator byte is dropped.
    #[error("help text is not a valid UTF-8 string")]
    InvalidHelp,
    /// A label block without a label name (or `}`) where one must be.
    #[error("expected label name, found {found:?}")]
    ExpectedLabelName {
        /// What stood there.
        found: String,
    },
    /// A label name not followed by `=`.
    #[error("expected equal, found {found:?}")]
    ExpectedEqual {
        /// What stood there.
        found: String,
    },
    /// `=` not followed by a complete double-quoted value.
    #[error("expected label value, found {found:?}")]
    ExpectedLabelValue {
        /// What stood there.
        found: String,
    },
    /// No value after the series.
    #[error("expected value after metric, found {found:?}")]
    ExpectedValue {
        /// What stood there.
        found: String,
    },
    /// A value that is not a float Prometheus reads.
    #[error("invalid value {0:?}: not a float as Prometheus reads it")]
    InvalidValue(String),
    /// Something other than a timestamp after the value.
    #[error("expected timestamp or new record, found {found:?}")]
    ExpectedTimestamp {
        /// What stood there.
        found: String,
    },
    /// A timestamp that is not a 64-bit integer.
    #[error("invalid timestamp {0:?}")]
    InvalidTimestamp(String),
    /// Something after the timestamp.
    #[error("expected next entry after timestamp, found {found:?}")]
    ExpectedEndAfterTimestamp {
        /// What stood there.
        found: String,
    },
}

/// Parses one sample line; `None` for comments, blank lines and lines that are not samples
/// (those [`read_line`] refuses included).
pub fn parse_sample(line: &str) -> Option<Sample<'_>> {
    match read_line(line) {
        Ok(Line::Sample(s)) => Some(s),
        _ => None,
    }
}

/// Reads one line as Prometheus's text parser does. A trailing `\n`/`\r\n` is not part of the
/// line.
///
/// # Errors
///
/// [`ExpositionError`] for a line Prometheus refuses (it then fails the whole scrape).
///
/// # Caveats
///
/// Line by line, where Prometheus lexes the whole body: a label value holding a raw line break
/// (which its lexer accepts) is refused here, a `\r` before the line break (which it refuses) is
/// ignored, and a NUL byte starting a line (where its lexer sees the end of the body) is refused.
/// A sample's `name` leaves out leading blanks, which Prometheus v2.26.0 keeps in `__name__`.
pub fn read_line(line: &str) -> Result<Line<'_>, ExpositionError> {
    let line = line.trim_end_matches(['\r', '\n']);
    let b = line.as_bytes();
    // promlex.l: `<*>[ \t]+` is skipped between tokens.
    let start = blanks(b, 0);
    match b.get(start) {
        None => Ok(Line::Blank),
        Some(b'#') => Ok(comment(line, start)?),
        Some(c) if is_name_start(*c) => sample(line, start).map(Line::Sample),
        Some(_) => Err(ExpositionError::InvalidStart {
            found: line[start..].to_string(),
        }),
    }
}

/// `#[ \t]+` then `HELP[\t ]+` or `TYPE[\t ]+` is metadata; any other `#` line a comment.
fn comment(line: &str, hash: usize) -> Result<Line<'_>, ExpositionError> {
    let b = line.as_bytes();
    let after = blanks(b, hash + 1);
    let keyword = &line[after..];
    let meta = if after == hash + 1 {
        None
    } else if keyword.starts_with("HELP") {
        Some(true)
    } else if keyword.starts_with("TYPE") {
        Some(false)
    } else {
        None
    };
    let name_at = blanks(b, after + 4);
    let Some(help) = meta.filter(|_| name_at > after + 4) else {
        return Ok(Line::Comment(&line[hash..]));
    };
    if !b.get(name_at).is_some_and(|c| is_name_start(*c)) {
        return Err(ExpositionError::ExpectedMetricName {
            found: line[name_at..].to_string(),
        });
    }
    let name_end = name_end(b, name_at);
    let metric = &line[name_at..name_end];
    // promparse.go: the text is the rest of the line minus its first byte (the separator).
    let rest = &line[name_end..];
    let text = match rest.chars().next() {
        None => "",
        Some(c) if c.len_utf8() == 1 => &rest[1..],
        Some(_) if help => return Err(ExpositionError::InvalidHelp),
        Some(_) => return Err(ExpositionError::InvalidType(rest.to_string())),
    };
    if help {
        return Ok(Line::Help {
            metric,
            text: unescape(text, false),
        });
    }
    let kind = match text {
        "counter" => MetricType::Counter,
        "gauge" => MetricType::Gauge,
        "histogram" => MetricType::Histogram,
        "summary" => MetricType::Summary,
        "untyped" => MetricType::Untyped,
        other => return Err(ExpositionError::InvalidType(other.to_string())),
    };
    Ok(Line::Type { metric, kind })
}

fn sample(line: &str, start: usize) -> Result<Sample<'_>, ExpositionError> {
    let b = line.as_bytes();
    let found = |at: usize| line[at.min(line.len())..].to_string();
    let name_end = name_end(b, start);
    let mut labels = Labels::new();
    let mut at = blanks(b, name_end);
    let series_end = if b.get(at) == Some(&b'{') {
        at += 1;
        // promparse.go parseLVals: `}` or name = "value", then an optional comma, repeated.
        loop {
            at = blanks(b, at);
            match b.get(at) {
                Some(b'}') => break at + 1,
                Some(c) if is_label_start(*c) => {}
                _ => return Err(ExpositionError::ExpectedLabelName { found: found(at) }),
            }
            let key_end = label_end(b, at);
            let key = &line[at..key_end];
            at = blanks(b, key_end);
            if b.get(at) != Some(&b'=') {
                return Err(ExpositionError::ExpectedEqual { found: found(at) });
            }
            at = blanks(b, at + 1);
            let (value, end) = quoted(line, at)
                .ok_or_else(|| ExpositionError::ExpectedLabelValue { found: found(at) })?;
            labels.insert(key.to_string(), unescape(value, true));
            at = blanks(b, end);
            if b.get(at) == Some(&b',') {
                at += 1;
            }
        }
    } else {
        name_end
    };
    // promlex.l sValue: `[^{ \t\n]+` (NUL ends it: the generated lexer excludes it).
    let value_at = blanks(b, series_end);
    let value_end = value_at
        + b[value_at..]
            .iter()
            .take_while(|c| !matches!(c, b'{' | b' ' | b'\t' | 0))
            .count();
    if value_end == value_at {
        return Err(ExpositionError::ExpectedValue {
            found: found(value_at),
        });
    }
    let value = &line[value_at..value_end];
    if parse_float(value).is_none() {
        return Err(ExpositionError::InvalidValue(value.to_string()));
    }
    // promlex.l sTimestamp: `{D}+`, then only the line break.
    let ts_at = blanks(b, value_end);
    let timestamp = if ts_at == b.len() {
        None
    } else {
        let ts_end = ts_at + b[ts_at..].iter().take_while(|c| c.is_ascii_digit()).count();
        if ts_end == ts_at {
            return Err(ExpositionError::ExpectedTimestamp {
                found: found(ts_at),
            });
        }
        let ts = &line[ts_at..ts_end];
        if ts.parse::<i64>().is_err() {
            return Err(ExpositionError::InvalidTimestamp(ts.to_string()));
        }
        let end = blanks(b, ts_end);
        if end != b.len() {
            return Err(ExpositionError::ExpectedEndAfterTimestamp { found: found(end) });
        }
        Some(ts)
    };
    Ok(Sample {
        name: &line[start..name_end],
        labels,
        series: &line[..series_end],
        value,
        timestamp,
    })
}

/// promparse.go parseFloat: Go's strconv.ParseFloat without the Go 1.13 additions (`p`
/// exponents, `_` separators).
fn parse_float(s: &str) -> Option<f64> {
    if s.contains(['p', 'P', '_']) {
        return None;
    }
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    // strconv.ParseFloat takes a sign on "Inf" but not on "NaN"; Rust's parser takes both.
    if unsigned.len() != s.len() && unsigned.eq_ignore_ascii_case("nan") {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    // strconv.ParseFloat refuses a finite literal beyond f64 (ErrRange); Rust rounds it to ±inf.
    if v.is_infinite()
        && !unsigned
            .get(..3)
            .is_some_and(|p| p.eq_ignore_ascii_case("inf"))
    {
        return None;
    }
    Some(v)
}

/// promlex.l `<sLValue>\"(\\.|[^\\"])*\"` at `at`: the text between the quotes and the index
/// after the closing one.
fn quoted(line: &str, at: usize) -> Option<(&str, usize)> {
    let rest = line.get(at..)?.strip_prefix('"')?;
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((&rest[..i], at + 1 + i + 1)),
            '\\' => {
                chars.next()?;
            }
            _ => {}
        }
    }
    None
}

/// promparse.go lvalReplacer (`\"`, `\\`, `\n`) or, without quotes, helpReplacer
/// (`\\`, `\n`); any other escape stays as written.
fn unescape(s: &str, quotes: bool) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quotes => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// promlex.l `{M}`: a metric name's first character.
fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

/// promlex.l `{L}`: a label name's first character.
fn is_label_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

/// The end of `{M}({M}|{D})*` starting at `at`.
fn name_end(b: &[u8], at: usize) -> usize {
    at + b[at..]
        .iter()
        .take_while(|c| is_name_start(**c) || c.is_ascii_digit())
        .count()
}

/// The end of `{L}({L}|{D})*` starting at `at`.
fn label_end(b: &[u8], at: usize) -> usize {
    at + b[at..]
        .iter()
        .take_while(|c| is_label_start(**c) || c.is_ascii_digit())
        .count()
}

/// The index after the spaces and tabs from `at`.
fn blanks(b: &[u8], at: usize) -> usize {
    at.min(b.len())
        + b[at.min(b.len())..]
            .iter()
            .take_while(|c| matches!(c, b' ' | b'\t'))
            .count()
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

    // The cases upstream's promparse_test.go does not have; e2e/tests/upstream runs the ones it has.

    /// promparse.go parseFloat is strconv.ParseFloat: NaN and ±Inf in any case (a kubelet's
    /// summaries serve NaN quantiles); no `p`, no `_`, no sign on NaN, nothing beyond f64.
    #[test]
    fn values_nan_and_inf_as_strconv_reads_them() {
        for (value, want) in [
            ("NaN", f64::NAN),
            ("nan", f64::NAN),
            ("+Inf", f64::INFINITY),
            ("-Inf", f64::NEG_INFINITY),
            ("inf", f64::INFINITY),
            ("-infinity", f64::NEG_INFINITY),
            ("1e-3", 1e-3),
            (".5", 0.5),
            ("5.", 5.0),
            ("-0", -0.0),
        ] {
            let line = format!("m {value}");
            let s = parse_sample(&line).unwrap_or_else(|| panic!("{value}"));
            let got = s.number().unwrap();
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "{value}: {got}"
            );
        }
        for value in [
            "+NaN", "-nan", "1e400", "0x10", "0x1p3", "1_000", "true", "Infinit",
        ] {
            assert_eq!(
                read_line(&format!("m {value}")),
                Err(ExpositionError::InvalidValue(value.into())),
                "{value}"
            );
        }
    }

    #[test]
    fn help_type_and_comments_read_as_prometheus_reads_them() {
        assert_eq!(
            read_line(r"# HELP m a \\ b \n c \t d").unwrap(),
            Line::Help {
                metric: "m",
                text: "a \\ b \n c \\t d".into()
            }
        );
        assert_eq!(
            read_line("#\tTYPE m_total\tcounter").unwrap(),
            Line::Type {
                metric: "m_total",
                kind: MetricType::Counter
            }
        );
        // Exactly one separator: a second blank is part of the type.
        assert_eq!(
            read_line("# TYPE m  gauge"),
            Err(ExpositionError::InvalidType(" gauge".into()))
        );
        // Not `#<blank>HELP<blank>`: a comment, kept whole from its `#`.
        for c in ["#HELP m x", "# HELPx m", "# HELP", "  # any text"] {
            assert_eq!(read_line(c).unwrap(), Line::Comment(c.trim_start()), "{c}");
        }
        assert!(matches!(
            read_line("# HELP 1m x"),
            Err(ExpositionError::ExpectedMetricName { .. })
        ));
        assert_eq!(read_line(" \t").unwrap(), Line::Blank);
    }

    #[test]
    fn label_values_unescape_only_quote_backslash_and_newline() {
        let s = parse_sample(r#"m{a="x\ty",b="\\n",c="\"",d="l1\nl2"} 1"#).unwrap();
        assert_eq!(
            s.labels["a"], "x\\ty",
            "lvalReplacer keeps other escapes as written"
        );
        assert_eq!(s.labels["b"], "\\n");
        assert_eq!(s.labels["c"], "\"");
        assert_eq!(s.labels["d"], "l1\nl2");
    }

    #[test]
    fn blanks_where_the_lexer_skips_them_and_errors_where_it_does_not() {
        let s = parse_sample("  m { a = \"1\" b=\"2\" , } 3 \t 4 ").unwrap();
        assert_eq!((s.name, s.series), ("m", "  m { a = \"1\" b=\"2\" , }"));
        assert_eq!(s.labels.len(), 2, "a comma between labels is optional");
        assert_eq!((s.value, s.timestamp_ms()), ("3", Some(4)));
        for (line, what) in [
            ("m{,a=\"1\"} 1", "ExpectedLabelName"),
            ("m{a=\"1\",,} 1", "ExpectedLabelName"),
            ("m{a-b=\"1\"} 1", "ExpectedEqual"),
            ("m{a=1} 1", "ExpectedLabelValue"),
            ("m{a=\"1} 1", "ExpectedLabelValue"),
            ("m{a=\"1\"}", "ExpectedValue"),
            ("m 1 -5", "ExpectedTimestamp"),
            ("m 1 5 6", "ExpectedEndAfterTimestamp"),
            ("m 1 99999999999999999999", "InvalidTimestamp"),
            ("1m 1", "InvalidStart"),
        ] {
            let e = read_line(line).expect_err(line);
            assert!(format!("{e:?}").starts_with(what), "{line}: {e:?}");
        }
        // str::lines strips `\r\n`; read_line does too (Prometheus would refuse the `\r`).
        assert_eq!(parse_sample("m 1\r\n").unwrap().value, "1");
    }
}
