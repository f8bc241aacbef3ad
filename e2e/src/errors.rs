//! Rendering an error with its causes, each said once.
//!
//! The convention of this workspace: an error variant either says its cause in its own message or
//! returns it from `source()`, never both (`xtask/tests/tidy.rs` checks it). So walking the chain
//! and joining every link says each cause once, and the HTTP client's errors, which stop at the
//! outermost layer, lose nothing. [`error_chain`] is the one way errors become text here: in the
//! library's messages, notes, warnings and reports, and in what `xtask` prints.

use std::error::Error;

/// The error and its causes joined by `": "`.
///
/// # Caveats
/// Errors of other crates may do both: kube's `Error::Api` prints its status in its message and
/// returns it as its source (kube-rs/kube kube-client/src/error.rs@5.0.0 `"ApiError: {0} ({0:?})"`),
/// as do its `HyperError: {0}` and friends. A cause whose text the link before it already holds is
/// therefore left out; only the link before it is looked at.
pub fn error_chain(e: &(dyn Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut before = s.clone();
    let mut src = e.source();
    while let Some(cause) = src {
        let text = cause.to_string();
        if !text.is_empty() && !before.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        before = text;
        src = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ours: the cause is not in the message; `source()` returns it.
    #[derive(Debug, thiserror::Error)]
    #[error("cannot read {path}")]
    struct Ours {
        path: &'static str,
        source: std::io::Error,
    }

    /// As kube's errors are: the cause in the message and from `source()`.
    #[derive(Debug, thiserror::Error)]
    #[error("HyperError: {0}")]
    struct Foreign(#[source] std::io::Error);

    fn io() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused")
    }

    #[test]
    fn every_link_is_joined_once() {
        let e = anyhow::Error::new(Ours {
            path: "sm.yaml",
            source: io(),
        })
        .context("replay");
        assert_eq!(
            error_chain(e.as_ref()),
            "replay: cannot read sm.yaml: connection refused"
        );
        // What anyhow's `{:#}` prints is the same for errors that follow the convention.
        assert_eq!(format!("{e:#}"), error_chain(e.as_ref()));
    }

    #[test]
    fn a_foreign_error_that_names_its_cause_is_not_repeated() {
        let e = anyhow::Error::new(Foreign(io())).context("applying");
        assert_eq!(
            error_chain(e.as_ref()),
            "applying: HyperError: connection refused"
        );
    }
}
