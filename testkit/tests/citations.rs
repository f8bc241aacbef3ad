//! Every comment in testkit/src that names the upstream source of a modelled behaviour cites it in
//! one format, `<owner>/<repo> <path>@<tag>` on one line, e.g.
//! `kubernetes/kubernetes pkg/kubelet/server/auth.go@v1.21.1`, so a reader can open the file at
//! the version the twin follows. Shorthands (`k/k`, `k/apimachinery`, `prometheus@v2.42.0 path`)
//! and bare file names fail, naming the file and line.

use std::path::{Path, PathBuf};

/// Why a comment's citation is not in the format, or None when it is (or cites nothing).
fn bad_citation(comment: &str) -> Option<String> {
    for short in [
        "k/k ",
        "k/k`",
        "k/api",
        "k/apimachinery",
        "k/apiextensions",
        "k/apiserver",
    ] {
        if comment.contains(short) {
            return Some(format!("shorthand `{}`", short.trim()));
        }
    }
    let tokens: Vec<&str> = comment.split_whitespace().collect();
    for (i, raw) in tokens.iter().enumerate() {
        let tok = raw
            .trim_start_matches(['(', '['])
            .trim_end_matches([')', ']', ',', ';', ':', '.']);
        // `prometheus@v2.42.0 discovery/...`: the tag belongs after the path.
        if let Some((repo, tag)) = tok.split_once('@') {
            let word =
                |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if word(repo) && !tag.is_empty() {
                return Some(format!("`{tok}`: the tag goes after the path"));
            }
        }
        let (path, tag) = match tok.split_once('@') {
            Some((p, t)) => (p, Some(t)),
            None => (tok, None),
        };
        let is_source_file = path.ends_with(".go") || path.ends_with(".proto");
        let is_cited_path = tag.is_some() && path.contains('/');
        if !is_source_file && !is_cited_path {
            continue;
        }
        if path.contains('`') {
            return Some(format!("`{tok}`: no backticks around a cited path"));
        }
        match tag {
            Some(t) if !t.is_empty() => {}
            _ => return Some(format!("`{tok}`: no `@<tag>` after the path")),
        }
        let owner_repo = i
            .checked_sub(1)
            .map(|j| tokens[j].trim_start_matches('('))
            .unwrap_or("");
        let ok = owner_repo.split_once('/').is_some_and(|(o, r)| {
            let name = |s: &str| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            };
            name(o) && name(r)
        });
        if !ok {
            return Some(format!(
                "`{tok}`: `<owner>/<repo>` must come just before the path, on the same line"
            ));
        }
    }
    None
}

/// The comment part of a source line (`//`, `///`, `//!`), if any.
fn comment_of(line: &str) -> Option<&str> {
    let t = line.trim_start();
    if let Some(c) = t.strip_prefix("//") {
        return Some(c);
    }
    // A trailing comment after code; `https://` has no space before its slashes.
    line.find(" // ").map(|i| &line[i + 4..])
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_upstream_citation_in_testkit_src_reads_owner_repo_path_at_tag() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(
        files.len() > 20,
        "found only {} files under {}",
        files.len(),
        src.display()
    );
    let mut bad = Vec::new();
    let mut cited = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let Some(comment) = comment_of(line) else {
                continue;
            };
            if comment.contains(".go@") {
                cited += 1;
            }
            if let Some(why) = bad_citation(comment) {
                let rel = f.strip_prefix(&src).unwrap_or(f).display();
                bad.push(format!(
                    "testkit/src/{rel}:{}: {why}\n    {}",
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{} citation(s) not in the form `<owner>/<repo> <path>@<tag>`:\n{}",
        bad.len(),
        bad.join("\n")
    );
    // The scan found the twin's citations, so it looked where they are.
    assert!(
        cited > 30,
        "only {cited} citations found: the scan is looking in the wrong place"
    );
}

#[test]
fn the_check_accepts_the_format_and_names_what_breaks_it() {
    let good = " kubernetes/kubernetes pkg/kubelet/server/auth.go@v1.21.1 (InstallAuthFilter)";
    assert_eq!(bad_citation(good), None);
    assert_eq!(
        bad_citation(" prometheus-operator/prometheus-operator pkg/prometheus/promcfg.go@v0.48.1,"),
        None
    );
    for bad in [
        " (k/k `pkg/kubelet/server/auth.go`)",
        " kubernetes/kubernetes pkg/kubelet/server/auth.go",
        " the kubelet (auth.go@v1.21.1)",
        " prometheus@v2.42.0 discovery/kubernetes/endpoints.go",
        " kubernetes/kubernetes `pkg/kubelet/server/auth.go`@v1.21.1",
        " see strategy.go ResourceLocation",
    ] {
        assert!(bad_citation(bad).is_some(), "not caught: {bad}");
    }
}
