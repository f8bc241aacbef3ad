//! The series of one metric in a Prometheus text exposition (a kubelet's `/metrics/cadvisor`
//! body), as label sets.

use super::{set, Labels};

/// The label sets of `metric`'s samples in a Prometheus text exposition body (a kubelet's
/// `/metrics/cadvisor`), `__name__` included. Comments and other metrics are skipped; so are
/// lines that are not well-formed samples.
pub fn exposition_series<'a>(text: &'a str, metric: &'a str) -> impl Iterator<Item = Labels> + 'a {
    text.lines().filter_map(move |line| {
        let line = line.trim_start();
        let rest = line.strip_prefix(metric)?;
        if !(rest.starts_with('{') || rest.starts_with(char::is_whitespace)) {
            return None;
        }
        let mut labels = parse_label_block(rest)?;
        labels.insert("__name__".into(), metric.to_string());
        Some(labels)
    })
}

/// `{a="1",b="x\"y"} 3` → the labels (exposition escapes `\\`, `\"`, `\n`).
fn parse_label_block(rest: &str) -> Option<Labels> {
    let mut labels = Labels::new();
    let Some(body) = rest.strip_prefix('{') else {
        return Some(labels);
    };
    let mut chars = body.char_indices().peekable();
    loop {
        while chars
            .peek()
            .is_some_and(|(_, c)| *c == ',' || c.is_whitespace())
        {
            chars.next();
        }
        let (start, c) = chars.next()?;
        if c == '}' {
            return Some(labels);
        }
        let mut end = start + c.len_utf8();
        while let Some(&(i, c)) = chars.peek() {
            if c == '=' {
                end = i;
                break;
            }
            chars.next();
        }
        let name = body[start..end].trim().to_string();
        chars.next(); // '='
        if chars.next()?.1 != '"' {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()?.1 {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        set(&mut labels, name, value);
    }
}
