//! The README and `docs/` are checked like code: the README stays short, the findings table is
//! what `cargo xtask doctor --list` prints, and every repository path, test and Rust item the
//! docs name exists. Files move; this test says which doc line went stale.

use regex::Regex;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// The issue's limit: a newcomer reads the README in five minutes.
const README_MAX_LINES: usize = 120;
const FINDINGS_DOC: &str = "docs/findings.md";
const FINDINGS_BEGIN: &str = "<!-- findings:begin -->";
const FINDINGS_END: &str = "<!-- findings:end -->";
/// Set to regenerate what this test generates (the findings table) instead of failing.
const UPDATE: &str = "UPDATE_DOCS";
const REGENERATE: &str = "UPDATE_DOCS=1 cargo test -p e2e --test docs";

fn root() -> PathBuf {
    e2e::workspace_root()
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// README.md and every Markdown file under docs/, workspace-relative, sorted.
fn doc_files() -> Vec<String> {
    let mut out = vec!["README.md".to_string()];
    let mut md = Vec::new();
    walk(&root().join("docs"), &mut |p| {
        if p.extension().is_some_and(|e| e == "md") {
            md.push(rel(p));
        }
    });
    md.sort();
    out.extend(md);
    out
}

fn rel(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name == ".git" {
            continue;
        }
        if path.is_dir() {
            walk(&path, f);
        } else {
            f(&path);
        }
    }
}

#[test]
fn readme_is_at_most_120_lines() {
    let lines = read("README.md").lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines, more than {README_MAX_LINES}: move the detail under docs/ and link it"
    );
}

#[test]
fn readme_names_the_two_commands() {
    let readme = read("README.md");
    for command in ["cargo xtask e2e ", "cargo xtask test "] {
        assert!(
            readme.lines().any(|l| l.starts_with(command)),
            "README.md must show `{}` on a line of its own",
            command.trim()
        );
    }
}

// ---------- the findings table, generated ----------

/// The text between the markers of `doc`, and where it starts and ends.
fn marked_block(doc: &str) -> Option<(usize, usize)> {
    let start = doc.find(FINDINGS_BEGIN)? + FINDINGS_BEGIN.len();
    let end = start + doc[start..].find(FINDINGS_END)?;
    Some((start, end))
}

/// Lines only in `want` (`+`) or only in `have` (`-`): enough to see which finding changed.
fn changed_lines(have: &str, want: &str) -> String {
    let (h, w): (BTreeSet<&str>, BTreeSet<&str>) = (have.lines().collect(), want.lines().collect());
    let mut out = String::new();
    for l in have.lines().filter(|l| !w.contains(l)) {
        out.push_str(&format!("- {l}\n"));
    }
    for l in want.lines().filter(|l| !h.contains(l)) {
        out.push_str(&format!("+ {l}\n"));
    }
    out
}

#[test]
fn the_findings_table_is_what_doctor_list_prints() {
    let doc = read(FINDINGS_DOC);
    let (start, end) = marked_block(&doc).unwrap_or_else(|| {
        panic!("{FINDINGS_DOC} lacks the {FINDINGS_BEGIN} … {FINDINGS_END} block of the findings table")
    });
    // `cargo xtask doctor --list` prints exactly this.
    let want = format!("\n{}", e2e::diagnose::catalogue::markdown_table());
    let have = &doc[start..end];
    if have == want {
        return;
    }
    if std::env::var_os(UPDATE).is_some() {
        let updated = format!("{}{want}{}", &doc[..start], &doc[end..]);
        std::fs::write(root().join(FINDINGS_DOC), updated).unwrap();
        return;
    }
    panic!(
        "{FINDINGS_DOC}: the findings table differs from `cargo xtask doctor --list` \
         (- the doc, + the code):\n{}\nregenerate it with `{REGENERATE}`",
        changed_lines(have, &want)
    );
}

// ---------- every reference the docs make ----------

static SPAN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"`([^`]+)`").unwrap());
static LINK: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\]\(([^)\s]+)\)").unwrap());
/// A Rust path as docs write it: `e2e::diagnose::relabel_drop`, `replay::replay_{kind,gke}_*`,
/// `Timing::upstream(factor)` (the call's arguments are not part of it).
static RUST_PATH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][\w{},*]*(::[\w{},*]+)+").unwrap());
/// `file.rs::name`: a function (a test, mostly) of that file.
static FILE_FN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^([\w./-]+\.rs)::(\w+)$").unwrap());
static ITEM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:fn|mod|struct|enum|const|static|type|trait|macro_rules!)\s+([A-Za-z_]\w*)")
        .unwrap()
});

/// What the tree holds: the names a reference may use.
struct Tree {
    /// Top-level files and directories (`e2e`, `.github`, `action.yml`, …): a word starting
    /// with one is a repository path.
    top: BTreeSet<String>,
    /// Every file's name (`twin_api.rs`).
    file_names: BTreeSet<String>,
    /// Crate names, module files and directories, and every item the Rust sources declare.
    rust_names: BTreeSet<String>,
}

impl Tree {
    fn scan(root: &Path) -> Tree {
        let mut top = BTreeSet::new();
        for entry in std::fs::read_dir(root).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name != "target" && name != ".git" {
                top.insert(name);
            }
        }
        let mut file_names = BTreeSet::new();
        let mut rust_names: BTreeSet<String> =
            ["e2e", "testkit", "xtask", "workspace_hack", "crate"]
                .map(String::from)
                .into();
        walk(root, &mut |p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            file_names.insert(name.clone());
            if let Some(stem) = name.strip_suffix(".rs") {
                rust_names.insert(stem.to_string());
                if let Some(dir) = p.parent().and_then(|d| d.file_name()) {
                    rust_names.insert(dir.to_string_lossy().to_string());
                }
                if let Ok(text) = std::fs::read_to_string(p) {
                    rust_names.extend(ITEM.captures_iter(&text).map(|c| c[1].to_string()));
                }
            }
        });
        Tree {
            top,
            file_names,
            rust_names,
        }
    }

    fn knows(&self, segment: &str) -> bool {
        match segment.split_once('*') {
            Some((prefix, _)) => self.rust_names.iter().any(|n| n.starts_with(prefix)),
            None => self.rust_names.contains(segment),
        }
    }
}

/// `a/{b,c}.rs` → `a/b.rs`, `a/c.rs` (every group, left to right).
fn expand_braces(word: &str) -> Vec<String> {
    let (Some(open), Some(close)) = (word.find('{'), word.find('}')) else {
        return vec![word.to_string()];
    };
    if close < open {
        return vec![word.to_string()];
    }
    word[open + 1..close]
        .split(',')
        .flat_map(|alt| expand_braces(&format!("{}{alt}{}", &word[..open], &word[close + 1..])))
        .collect()
}

/// The path as far as it is concrete: up to the first segment holding a placeholder
/// (`<name>`, `…`, `*`, `$VAR`).
fn concrete_prefix(path: &str) -> &str {
    let cut = path
        .split('/')
        .scan(0, |at, seg| {
            let start = *at;
            *at += seg.len() + 1;
            Some((start, seg))
        })
        .find(|(_, seg)| seg.contains(['<', '…', '*', '$']))
        .map(|(start, _)| start);
    match cut {
        Some(i) => &path[..i],
        None => path,
    }
}

/// The GitHub anchor of a heading: lower case, punctuation gone, spaces to hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(markdown: &str) -> BTreeSet<String> {
    markdown
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| slug(l.trim_start_matches('#')))
        .collect()
}

/// Every stale reference of `text` (the doc at `doc`, workspace-relative), as
/// `doc:line: reference: why`.
fn stale_references(tree: &Tree, root: &Path, doc: &str, text: &str) -> Vec<String> {
    let mut stale = Vec::new();
    let dir = Path::new(doc).parent().unwrap_or(Path::new(""));
    let mut fenced = false;
    for (i, line) in text.lines().enumerate() {
        let at = format!("{doc}:{}", i + 1);
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        // Code blocks are commands and trees of generated files, not references.
        if fenced {
            continue;
        }
        for link in LINK.captures_iter(line) {
            let target = &link[1];
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
            let file = if path.is_empty() {
                PathBuf::from(doc)
            } else {
                normalise(&dir.join(path))
            };
            let Ok(meta) = std::fs::metadata(root.join(&file)) else {
                stale.push(format!(
                    "{at}: link ({target}): {} does not exist",
                    file.display()
                ));
                continue;
            };
            if !anchor.is_empty() && meta.is_file() && path_is_md(&file) {
                let target_text = std::fs::read_to_string(root.join(&file)).unwrap_or_default();
                if !anchors(&target_text).contains(anchor) {
                    stale.push(format!(
                        "{at}: link ({target}): {} has no heading #{anchor}",
                        file.display()
                    ));
                }
            }
        }
        for span in SPAN.captures_iter(line) {
            for word in span[1].split_whitespace() {
                let word = word
                    .trim_start_matches(['(', '[', '"', '\''])
                    .trim_end_matches([',', ';', ':', '.', ')', ']', '"', '\'']);
                if let Some(why) = check_word(tree, root, word) {
                    stale.push(format!("{at}: `{word}`: {why}"));
                }
            }
        }
        // A table's "where in the code" column names items bare (`kubelet_service_of`,
        // `Rule::apply`): each must still be declared somewhere.
        if let Some(cell) = code_cell(doc, line) {
            for span in SPAN.captures_iter(cell) {
                let word = &span[1];
                if !BARE_ITEM.is_match(word) {
                    continue;
                }
                if let Some(seg) = word.split("::").find(|s| !tree.knows(s)) {
                    stale.push(format!(
                        "{at}: `{word}`: no module, file or item named `{seg}` in the workspace"
                    ));
                }
            }
        }
    }
    stale
}

/// `name` or `Type::name`, as the code column of a table writes an item.
static BARE_ITEM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_]\w*(::[A-Za-z_]\w*)?$").unwrap());

/// The "where in the code" cell of a row of docs/upstream.md's tables (the second column).
fn code_cell<'a>(doc: &str, line: &'a str) -> Option<&'a str> {
    if !doc.ends_with("upstream.md") || !line.starts_with("| ") || line.starts_with("| behaviour") {
        return None;
    }
    let cells: Vec<&str> = line.split(" | ").collect();
    (cells.len() >= 4).then(|| cells[1])
}

fn path_is_md(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "md")
}

/// `docs/../e2e/src` → `e2e/src`.
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// Why `word` is stale, or `None` when it exists or is not a reference to this repository.
fn check_word(tree: &Tree, root: &Path, word: &str) -> Option<String> {
    if let Some(c) = FILE_FN.captures(word) {
        let (file, name) = (&c[1], &c[2]);
        let Ok(text) = std::fs::read_to_string(root.join(file)) else {
            return Some(format!("{file} does not exist"));
        };
        let decl = Regex::new(&format!(r"\bfn\s+{}\s*[(<]", regex::escape(name))).unwrap();
        return (!decl.is_match(&text)).then(|| format!("{file} declares no function {name}"));
    }
    if let Some(m) = RUST_PATH.find(word) {
        let path = m.as_str();
        let first = path.split("::").next().unwrap();
        // Another crate's path (`kube::core::Selector`, `std::…`) is not ours to check.
        if !tree.knows(first) {
            return None;
        }
        for expanded in expand_braces(path) {
            if let Some(seg) = expanded
                .split("::")
                .find(|s| !s.is_empty() && !tree.knows(s))
            {
                return Some(format!(
                    "no module, file or item named `{seg}` in the workspace"
                ));
            }
        }
        return None;
    }
    let first = word.split('/').next().unwrap_or("");
    if word.contains('/') && tree.top.contains(first) {
        for expanded in expand_braces(word) {
            let concrete = concrete_prefix(&expanded);
            if !concrete.is_empty() && !root.join(concrete).exists() {
                return Some(format!("{concrete} does not exist"));
            }
        }
        return None;
    }
    // A file named on its own (`twin_api.rs`): some file of the tree has that name.
    if Regex::new(r"^[\w-]+\.rs$").unwrap().is_match(word) && !tree.file_names.contains(word) {
        return Some(format!("no file named {word} in the workspace"));
    }
    None
}

#[test]
fn every_path_test_and_item_the_docs_name_exists() {
    let root = root();
    let tree = Tree::scan(&root);
    let mut stale = Vec::new();
    for doc in doc_files() {
        stale.extend(stale_references(&tree, &root, &doc, &read(&doc)));
    }
    assert!(
        stale.is_empty(),
        "{} stale reference(s) in the docs (a file moved or a test was renamed: fix the doc line):\n{}",
        stale.len(),
        stale.join("\n")
    );
}

/// The checker itself: it finds each kind of stale reference, and only those.
#[test]
fn the_checker_names_each_stale_reference_with_its_line() {
    let root = root();
    let tree = Tree::scan(&root);
    let text = "\
fine: `e2e/src/lib.rs`, `e2e/src/{lib,workdir}.rs`, `e2e::workspace_root`, `kube::core::Selector`
fine: `e2e/tests/docs.rs::the_checker_names_each_stale_reference_with_its_line`, `docs.rs`, `target/e2e/<name>/x`
fine: [the map](../README.md#map-of-the-crates), [a site](https://example.com/x.md), `fixtures/upstream/*/x`
```sh
cargo run e2e/src/in_a_code_block.rs
```
stale: `e2e/src/nowhere.rs` and `e2e/src/{lib,gone}.rs`
stale: `e2e/tests/docs.rs::no_such_test` `e2e::diagnose::no_such_module`
stale: [gone](missing.md), [anchor](../README.md#no-such-heading), `no_such_file_here.rs`
";
    let found = stale_references(&tree, &root, "docs/example.md", text);
    // In upstream.md's tables the code column's bare items are checked too, and only there.
    let row = "| a rule | `e2e/src/lib.rs` (`workspace_root`, `Rule::apply`, `no_such_item`) | `x/y a.go@v1` (`noSuchGoName`) | `e2e/tests/docs.rs::slugs_are_githubs` |";
    assert_eq!(
        stale_references(&tree, &root, "docs/upstream.md", row),
        ["docs/upstream.md:1: `no_such_item`: no module, file or item named `no_such_item` in the workspace"]
    );
    assert!(stale_references(&tree, &root, "docs/other.md", row).is_empty());
    assert_eq!(
        found,
        [
            "docs/example.md:7: `e2e/src/nowhere.rs`: e2e/src/nowhere.rs does not exist",
            "docs/example.md:7: `e2e/src/{lib,gone}.rs`: e2e/src/gone.rs does not exist",
            "docs/example.md:8: `e2e/tests/docs.rs::no_such_test`: e2e/tests/docs.rs declares no function no_such_test",
            "docs/example.md:8: `e2e::diagnose::no_such_module`: no module, file or item named `no_such_module` in the workspace",
            "docs/example.md:9: link (missing.md): docs/missing.md does not exist",
            "docs/example.md:9: link (../README.md#no-such-heading): README.md has no heading #no-such-heading",
            "docs/example.md:9: `no_such_file_here.rs`: no file named no_such_file_here.rs in the workspace",
        ]
    );
}

#[test]
fn slugs_are_githubs() {
    assert_eq!(
        slug(" Your own stack (`--stack`)"),
        "your-own-stack---stack"
    );
    assert_eq!(
        slug("Why are my pod metrics missing?"),
        "why-are-my-pod-metrics-missing"
    );
}
