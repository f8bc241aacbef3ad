//! Rendering an error with its causes, each said once.
//!
//! Several of the library's errors name their cause in their own message (so `to_string()` alone
//! is useful) and also return it from `source()` (so callers can walk to it); the HTTP client's
//! errors do the opposite and stop at the outermost layer. Walking the chain and printing every
//! link would say a cause twice in the first case; printing only the top would lose it in the
//! second. [`error_chain`] does neither; it is the one way errors become text here: in the
//! library's messages, notes, warnings and reports, and in what `xtask` prints.

use std::error::Error;

/// The error and its causes joined by `": "`, leaving out a cause whose text the rendering so
/// far already contains.
pub fn error_chain(e: &(dyn Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        let text = cause.to_string();
        if !text.is_empty() && !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        src = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read {path}: {source}")]
    struct Says {
        path: &'static str,
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("request failed")]
    struct Hides {
        #[source]
        source: std::io::Error,
    }

    fn io() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused")
    }

    #[test]
    fn a_cause_the_message_names_is_not_repeated() {
        let e = Says {
            path: "sm.yaml",
            source: io(),
        };
        assert_eq!(error_chain(&e), "cannot read sm.yaml: connection refused");
    }

    #[test]
    fn a_cause_the_message_hides_is_added() {
        let e = Hides { source: io() };
        assert_eq!(error_chain(&e), "request failed: connection refused");
    }

    #[test]
    fn anyhow_contexts_and_typed_causes_read_once_each() {
        let e = anyhow::Error::new(Says {
            path: "sm.yaml",
            source: io(),
        })
        .context("replay");
        assert_eq!(
            error_chain(e.as_ref()),
            "replay: cannot read sm.yaml: connection refused"
        );
        // What `{:#}` prints, for comparison: the cause twice.
        assert_eq!(
            format!("{e:#}"),
            "replay: cannot read sm.yaml: connection refused: connection refused"
        );
    }
}
