//! Duration flags (`--timeout`, `--deadline`): `300`, `300s`, `5m`, `1h30m`.

use std::time::Duration;

/// Parses a duration flag. Plain digits are seconds; otherwise humantime's units (`s`, `m`,
/// `h`, `ms`, …). clap puts the flag's name in front of the error.
///
/// # Errors
/// Not a duration, or zero (a zero deadline would fail every wait at once).
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let d = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        t.parse()
            .map(Duration::from_secs)
            .map_err(|e| e.to_string())
    } else {
        humantime::parse_duration(t).map_err(|e| e.to_string())
    }
    .map_err(|e| format!("`{text}` is not a duration ({e}); use e.g. 300s, 5m or 1h"))?;
    if d.is_zero() {
        return Err("must be more than 0s".to_string());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse("300"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("0s"), Err("must be more than 0s".to_string()));
        for bad in ["", "5x", "m", "-1"] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("is not a duration"), "{bad}: {err}");
        }
    }
}
