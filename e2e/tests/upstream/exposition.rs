//! The exposition reader in `e2e::relabel` against Prometheus v2.26.0
//! `pkg/textparse/promparse_test.go` (and the cases v2.42.0 adds).

use super::{cases, load, name, Report};
use e2e::relabel::{read_line, ExpositionError, Line, MetricType, Sample};
use e2e::yaml::Value;

#[test]
fn the_exposition_reader_matches_promparse_test_go() {
    let data = load("exposition/promparse_test.yaml");
    let mut report = Report::default();
    prom_parse(&data["TestPromParse"], &mut report);
    for case in cases(&data) {
        let name = name(case);
        match refusal(case) {
            Ok(true) => report.pass(name),
            Ok(false) => report.out(name),
            Err(why) => report.fail(name, why),
        }
    }
    assert_eq!(
        data["not_ported"].as_array().map(Vec::len),
        Some(2),
        "the two benchmarks of promparse_test.go are listed as not ported"
    );
    // TestPromParse: 28 entries. TestPromParseErrors: 13 at v2.26.0 (2 not UTF-8, which a &str
    // cannot hold) and 2 added in v2.42.0. TestPromNullByteHandling: 8, and 1 added in v2.42.0.
    report.finish("exposition", 28 + (11 + 2) + (8 + 1), 2);
}

/// TestPromParse: the body line by line against upstream's entries, in order.
fn prom_parse(test: &Value, report: &mut Report) {
    let lines = test["input"]
        .as_array()
        .expect("`input` lists the body's lines");
    let entries = test["entries"].as_array().expect("`entries` is a list");
    let mut read = Vec::new();
    for line in lines {
        let line = line.as_str().expect("a line is a string");
        match read_line(line) {
            Ok(Line::Blank) => {}
            other => read.push((line, other)),
        }
    }
    if read.len() != entries.len() {
        report.fail(
            "TestPromParse",
            format!(
                "upstream reads {} entries, the model {}",
                entries.len(),
                read.len()
            ),
        );
    }
    for (entry, (line, got)) in entries.iter().zip(read) {
        let name = name(entry);
        match entry_matches(entry, got) {
            Ok(()) => report.pass(name),
            Err(why) => report.fail(name, format!("{line:?}: {why}")),
        }
    }
}

fn entry_matches(entry: &Value, got: Result<Line<'_>, ExpositionError>) -> Result<(), String> {
    let got = got.map_err(|e| format!("refused: {e}"))?;
    let pair = |k: &str| -> (String, String) {
        let s = |i: usize| entry[k][i].as_str().unwrap_or_default().to_string();
        (s(0), s(1))
    };
    let ok = match (&got, entry) {
        (Line::Help { metric, text }, e) if e.get("help").is_some() => {
            pair("help") == (metric.to_string(), text.clone())
        }
        (Line::Type { metric, kind }, e) if e.get("type").is_some() => {
            pair("type") == (metric.to_string(), type_name(*kind).to_string())
        }
        (Line::Comment(text), e) if e.get("comment").is_some() => e["comment"] == *text,
        (Line::Sample(sample), e) if e.get("series").is_some() => {
            return series_matches(&e["series"], sample)
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("upstream: {entry}; the model: {got:?}"))
    }
}

fn series_matches(want: &Value, got: &Sample<'_>) -> Result<(), String> {
    let v: f64 = want["v"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .ok_or("`v` is a float as Go writes it")?;
    let mut lset = got.labels.clone();
    lset.insert("__name__".into(), got.name.to_string());
    let lset: Value = serde_json::to_value(&lset).expect("labels are strings");
    let checks = [
        ("m", want["m"] == got.series, got.series.to_string()),
        ("v", got.number() == Some(v), format!("{:?}", got.number())),
        (
            "t",
            want["t"].as_i64() == got.timestamp_ms(),
            format!("{:?}", got.timestamp_ms()),
        ),
        ("lset", want["lset"] == lset, lset.to_string()),
    ];
    let wrong: Vec<String> = checks
        .iter()
        .filter(|(_, ok, _)| !ok)
        .map(|(k, _, ours)| format!("{k}: upstream {}, the model {ours}", want[*k]))
        .collect();
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("; "))
    }
}

fn type_name(kind: MetricType) -> &'static str {
    match kind {
        MetricType::Counter => "counter",
        MetricType::Gauge => "gauge",
        MetricType::Histogram => "histogram",
        MetricType::Summary => "summary",
        MetricType::Untyped => "untyped",
    }
}

/// TestPromParseErrors, TestPromNullByteHandling: Ok(true) when the model refuses the input as
/// upstream does (or reads it, when upstream does); Ok(false) for an input a `&str` cannot hold.
fn refusal(case: &Value) -> Result<bool, String> {
    let upstream = case["error"]
        .as_str()
        .ok_or("`error` is upstream's message")?;
    if let Some(hex) = case["input_hex"].as_str() {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("`input_hex`: {e}"))?;
        // The reader takes &str; callers read bodies with from_utf8/read_to_string.
        return match std::str::from_utf8(&bytes) {
            Err(_) if !upstream.is_empty() => Ok(false),
            _ => {
                Err("`input_hex` is for inputs that are not UTF-8 and that upstream refuses".into())
            }
        };
    }
    let input = case["input"].as_str().ok_or("`input` is a string")?;
    let first_error = input.split('\n').find_map(|l| read_line(l).err());
    match (first_error, case["refused_as"].as_str()) {
        (None, None) if upstream.is_empty() => Ok(true),
        (Some(e), Some(want)) if variant(&e) == want => Ok(true),
        (got, want) => Err(format!(
            "upstream: {upstream:?} (the model's {want:?}); the model: {}",
            got.map_or("reads it".to_string(), |e| format!("{} ({e})", variant(&e)))
        )),
    }
}

fn variant(e: &ExpositionError) -> &'static str {
    match e {
        ExpositionError::InvalidStart { .. } => "InvalidStart",
        ExpositionError::ExpectedMetricName { .. } => "ExpectedMetricName",
        ExpositionError::InvalidType(_) => "InvalidType",
        ExpositionError::InvalidHelp => "InvalidHelp",
        ExpositionError::ExpectedLabelName { .. } => "ExpectedLabelName",
        ExpositionError::ExpectedEqual { .. } => "ExpectedEqual",
        ExpositionError::ExpectedLabelValue { .. } => "ExpectedLabelValue",
        ExpositionError::ExpectedValue { .. } => "ExpectedValue",
        ExpositionError::InvalidValue(_) => "InvalidValue",
        ExpositionError::ExpectedTimestamp { .. } => "ExpectedTimestamp",
        ExpositionError::InvalidTimestamp(_) => "InvalidTimestamp",
        ExpositionError::ExpectedEndAfterTimestamp { .. } => "ExpectedEndAfterTimestamp",
    }
}
