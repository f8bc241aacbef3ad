//! Tidy checks over the workspace's own source, in the habit of rust-analyzer's
//! `xtask/src/tidy.rs` (rust-lang/rust-analyzer xtask/src/tidy.rs@2024-01-01): read the files as
//! text, fail naming every offender, no build needed.
//!
//! 1. **No circles.** Per crate (`src/`), the module import graph: a file is a module, an import is
//!    any path to another module (`use crate::a::b::{..}`, `crate::a::b::x` in code, `super::` and
//!    `self::` resolved, a child declared by `mod child;` named by its bare name). A parent
//!    reaching into its own children is the hierarchy, not an import (as `mod child;` is), but
//!    `pub use child::X` in a parent is: it makes the child's items the parent's. A module may not
//!    reach itself again through imports, neither directly nor through a loop (a folder's
//!    `mod.rs` included). This is what `farm-studio look` calls a circle.
//!
//!    Tests do not count: `tests.rs` files and `#[cfg(test)] mod … { … }` blocks import their
//!    parent by design (`use super::*`) and nothing imports them.
//! 2. **An error says its source once.** A thiserror variant with a source (`#[from]`,
//!    `#[source]`, or a field named `source`) does not also interpolate it in `#[error(...)]`:
//!    `e2e::errors::error_chain` (and anyhow's `{:#}`) prints the source after the message.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crates whose import graph must have no circles: all three.
const ACYCLIC_CRATES: &[&str] = &["e2e", "testkit", "xtask"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lexing: comments out (always), string and char literals blanked (for the import scan).

/// The source without comments; with `blank_strings`, string and char literals become `""`.
fn strip(src: &str, blank_strings: bool) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == b'r'
            && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'))
            && (i == 0 || !is_ident(b[i - 1]))
            && raw_string_start(b, i).is_some()
        {
            let (hashes, body) = raw_string_start(b, i).unwrap();
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let mut j = body;
            while j < b.len() && !b[j..].starts_with(&close) {
                j += 1;
            }
            let end = (j + close.len()).min(b.len());
            if blank_strings {
                out.push_str("\"\"");
            } else {
                out.push_str(&src[i..end]);
            }
            i = end;
        } else if c == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                if b[j] == b'\\' {
                    j += 1;
                }
                j += 1;
            }
            let end = (j + 1).min(b.len());
            if blank_strings {
                out.push_str("\"\"");
            } else {
                out.push_str(&src[i..end]);
            }
            i = end;
        } else if c == b'\'' {
            // A char literal ('x', '\n', '\u{..}'), or a lifetime ('a), which stays.
            let end = if b.get(i + 1) == Some(&b'\\') {
                let mut j = i + 2;
                while j < b.len() && b[j] != b'\'' {
                    j += 1;
                }
                Some(j + 1)
            } else {
                let ch_len = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                (b.get(i + 1 + ch_len) == Some(&b'\'')).then_some(i + 2 + ch_len)
            };
            match end {
                Some(end) => {
                    out.push_str(if blank_strings { "' '" } else { &src[i..end] });
                    i = end;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            let ch = src[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// `r"…"` / `r#"…"#` at `i`: the number of `#` and where the body starts.
fn raw_string_start(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let mut j = i + 1;
    while b.get(j) == Some(&b'#') {
        j += 1;
    }
    (b.get(j) == Some(&b'"')).then_some((j - i - 1, j + 1))
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The index just past the bracket that closes the one at `open` (`{`, `(` or `[`).
fn matching(b: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    for (j, &c) in b.iter().enumerate().skip(open) {
        match c {
            b'{' | b'(' | b'[' => depth += 1,
            b'}' | b')' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
    }
    b.len()
}

/// The text without `#[cfg(test)] mod name { … }` blocks (their `use super::*` is by design).
fn without_test_modules(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        let after = &rest[at + "#[cfg(test)]".len()..];
        let trimmed = after.trim_start();
        let body = trimmed
            .strip_prefix("pub(crate) ")
            .or_else(|| trimmed.strip_prefix("pub "))
            .unwrap_or(trimmed);
        if let Some(m) = body.strip_prefix("mod ") {
            let open = m.find(['{', ';']).unwrap_or(m.len());
            let m_start = rest.len() - m.len();
            out.push_str(&rest[..at]);
            if m[open..].starts_with('{') {
                let abs = m_start + open;
                rest = &rest[matching(rest.as_bytes(), abs)..];
            } else {
                rest = &m[open..];
            }
        } else {
            out.push_str(&rest[..at + "#[cfg(test)]".len()]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------------
// The module graph of one crate.

/// A module path inside its crate (`[]` is the crate root).
type ModPath = Vec<String>;

struct Module {
    file: PathBuf,
    /// Import-relevant text: no comments, strings, or test modules.
    text: String,
    /// Children declared by `mod name;` here.
    children: BTreeSet<String>,
}

/// The module a file is: `lib.rs`/`main.rs` the root, `a/mod.rs` and `a.rs` module `a`.
fn module_path(src: &Path, file: &Path) -> Option<ModPath> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    if parts.first().is_some_and(|p| p == "bin") || last == "tests.rs" {
        // Binaries are crates of their own; `tests.rs` are test modules (see the crate doc).
        return None;
    }
    match last.as_str() {
        "lib.rs" | "main.rs" if parts.is_empty() => {}
        "mod.rs" => {}
        other => parts.push(other.trim_end_matches(".rs").to_string()),
    }
    Some(parts)
}

fn modules_of(src: &Path) -> BTreeMap<ModPath, Module> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut out = BTreeMap::new();
    for file in files {
        let Some(path) = module_path(src, &file) else {
            continue;
        };
        let raw = std::fs::read_to_string(&file).unwrap();
        let text = without_test_modules(&strip(&raw, true));
        let children = words_after(&text, "mod ")
            .into_iter()
            .filter(|(_, next)| *next == ';')
            .map(|(w, _)| w)
            .collect();
        out.insert(
            path,
            Module {
                file,
                text,
                children,
            },
        );
    }
    out
}

/// Each identifier that follows `keyword` (at a word start), with the next non-space char.
fn words_after(text: &str, keyword: &str) -> Vec<(String, char)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(keyword) {
        let at = from + at;
        from = at + keyword.len();
        if at > 0 && is_ident(b[at - 1]) {
            continue;
        }
        let rest = &text[from..];
        let word: String = rest.chars().take_while(|c| is_ident(*c as u8)).collect();
        let next = rest[word.len()..]
            .trim_start()
            .chars()
            .next()
            .unwrap_or(' ');
        if !word.is_empty() {
            out.push((word, next));
        }
    }
    out
}

/// Every path written in `text`, expanded (`a::{b, c::d}` → `a::b`, `a::c::d`), as segments.
fn paths(text: &str) -> Vec<Vec<String>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if is_ident(b[i]) && (i == 0 || !(is_ident(b[i - 1]) || b[i - 1] == b':')) {
            let (segs, end) = read_path(text, i);
            i = end.max(i + 1);
            out.extend(segs);
        } else {
            i += 1;
        }
    }
    out
}

/// The path(s) starting at `i`, and where they end.
fn read_path(text: &str, i: usize) -> (Vec<Vec<String>>, usize) {
    let b = text.as_bytes();
    let mut prefix = Vec::new();
    let mut j = i;
    loop {
        let start = j;
        while j < b.len() && is_ident(b[j]) {
            j += 1;
        }
        if start == j {
            break;
        }
        prefix.push(text[start..j].to_string());
        let k = skip_ws(b, j);
        if text[k..].starts_with("::") {
            let k2 = skip_ws(b, k + 2);
            if b.get(k2) == Some(&b'*') {
                prefix.push("*".to_string());
                return (vec![prefix], k2 + 1);
            }
            if b.get(k2) == Some(&b'{') {
                let close = matching(b, k2);
                let mut all = Vec::new();
                for part in split_top(&text[k2 + 1..close - 1]) {
                    let part = part.trim();
                    if part.is_empty() {
                        continue;
                    }
                    let (inner, _) = read_path(part, 0);
                    for mut p in inner {
                        let mut full = prefix.clone();
                        if p.first().is_some_and(|s| s == "self") {
                            p.remove(0);
                        }
                        full.extend(p);
                        all.push(full);
                    }
                    if part == "*" {
                        let mut glob = prefix.clone();
                        glob.push("*".to_string());
                        all.push(glob);
                    }
                }
                if all.is_empty() {
                    all.push(prefix.clone());
                }
                return (all, close);
            }
            j = k2;
        } else {
            break;
        }
    }
    (vec![prefix], j)
}

fn skip_ws(b: &[u8], mut j: usize) -> usize {
    while j < b.len() && b[j].is_ascii_whitespace() {
        j += 1;
    }
    j
}

/// `a, b::{c, d}, e` split at the commas outside braces.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// The paths of `pub use …;` statements (any visibility).
fn reexports(text: &str) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices("use ") {
        if at > 0 && is_ident(text.as_bytes()[at - 1]) {
            continue;
        }
        // The statement's head, after any attribute: `pub`, `pub(crate)`, … or nothing.
        let start = text[..at].rfind([';', '{', '}']).map_or(0, |s| s + 1);
        let head = text[start..at].rsplit(']').next().unwrap_or("").trim();
        if head.starts_with("pub") {
            let end = text[at..].find(';').map_or(text.len(), |e| at + e);
            out.extend(paths(&text[at + "use ".len()..end]));
        }
    }
    out
}

/// The module a path names (its longest known prefix) and the first name used from it.
fn resolve(
    from: &ModPath,
    path: &[String],
    modules: &BTreeMap<ModPath, Module>,
) -> Option<(ModPath, String)> {
    // A bare `crate`, `super` or child name (`pub(crate)`, `mod child;`) imports nothing.
    if path.len() < 2 {
        return None;
    }
    let (mut cur, rest): (ModPath, &[String]) = match path.first()?.as_str() {
        "crate" => (Vec::new(), &path[1..]),
        "self" => (from.clone(), &path[1..]),
        "super" => {
            let mut cur = from.clone();
            let mut rest = path;
            while rest.first().is_some_and(|s| s == "super") {
                cur.pop()?;
                rest = &rest[1..];
            }
            (cur, rest)
        }
        child if modules[from].children.contains(child) => (from.clone(), path),
        _ => return None,
    };
    let mut used = String::from("*");
    for (n, seg) in rest.iter().enumerate() {
        let mut next = cur.clone();
        next.push(seg.clone());
        if modules.contains_key(&next) {
            cur = next;
        } else {
            used = rest[n].clone();
            break;
        }
    }
    Some((cur, used))
}

/// file → file → the names the first takes from the second.
type Graph = BTreeMap<PathBuf, BTreeMap<PathBuf, BTreeSet<String>>>;

fn import_graph(src: &Path) -> Graph {
    let modules = modules_of(src);
    let mut graph = Graph::new();
    for (path, module) in &modules {
        let edges = graph.entry(module.file.clone()).or_default();
        let reexported = reexports(&module.text);
        for p in paths(&module.text) {
            if let Some((target, used)) = resolve(path, &p, &modules) {
                // A parent reaching into its own children is the hierarchy, as `mod child;` is;
                // only re-exporting a child's items (`pub use child::X`) makes them the parent's.
                let into_child = target.len() > path.len() && target.starts_with(path);
                if &target != path && (!into_child || reexported.contains(&p)) {
                    edges
                        .entry(modules[&target].file.clone())
                        .or_default()
                        .insert(used);
                }
            }
        }
    }
    graph
}

/// Strongly connected components of more than one file (Tarjan).
fn circles(graph: &Graph) -> Vec<Vec<PathBuf>> {
    struct Tarjan<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g PathBuf, usize>,
        low: BTreeMap<&'g PathBuf, usize>,
        stack: Vec<&'g PathBuf>,
        on_stack: BTreeSet<&'g PathBuf>,
        out: Vec<Vec<PathBuf>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g PathBuf) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flat_map(|e| e.keys()) {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut scc = Vec::new();
                loop {
                    let w = self.stack.pop().unwrap();
                    self.on_stack.remove(w);
                    scc.push(w.clone());
                    if w == v {
                        break;
                    }
                }
                if scc.len() > 1 {
                    scc.sort();
                    self.out.push(scc);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    t.out.sort();
    t.out
}

/// Each circle, with the imports that tie it (`a.rs -> b.rs: names`).
fn describe_circles(root: &Path, graph: &Graph) -> Vec<String> {
    let rel = |p: &PathBuf| p.strip_prefix(root).unwrap_or(p).display().to_string();
    circles(graph)
        .iter()
        .map(|scc| {
            let mut s = format!(
                "circle of {} files: {}",
                scc.len(),
                scc.iter().map(rel).collect::<Vec<_>>().join(", ")
            );
            for a in scc {
                for (b, names) in &graph[a] {
                    if scc.contains(b) {
                        let names: Vec<_> = names.iter().map(String::as_str).collect();
                        s.push_str(&format!(
                            "\n  {} -> {}: {}",
                            rel(a),
                            rel(b),
                            names.join(", ")
                        ));
                    }
                }
            }
            s
        })
        .collect()
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let root = workspace_root();
    let mut found = Vec::new();
    for krate in ACYCLIC_CRATES {
        let graph = import_graph(&root.join(krate).join("src"));
        assert!(graph.len() > 3, "{krate}: no modules read");
        found.extend(describe_circles(&root, &graph));
    }
    assert!(
        found.is_empty(),
        "modules import each other (a module may not reach itself again through its imports; \
         pass values down instead, or move what both need below both):\n{}",
        found.join("\n")
    );
}

/// The graph reader itself, on a crate written for it: `use` groups, `self`/`super`, bare child
/// names, paths in code, and a parent's `pub use` of its child.
#[test]
fn the_import_graph_sees_every_kind_of_path_and_names_the_circle() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let w = |rel: &str, text: &str| {
        let p = src.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w("lib.rs", "pub mod a;\npub mod b;\npub mod c;\npub mod d;\n");
    // a → b (group with self), b → c (in code), c → a (super), d's mod.rs re-exports its child
    // which uses its parent back; strings, comments and test modules are not imports.
    w(
        "a.rs",
        "use crate::{b::{self, Thing}, x};\n// crate::d::e::f\n",
    );
    w(
        "b.rs",
        "pub fn f() { let _ = crate::c::g(); let _ = \"crate::d::e\"; }\n",
    );
    w(
        "c.rs",
        "use super::a::*;\n#[cfg(test)]\nmod tests { use crate::d::e::Z; }\n",
    );
    w("d/mod.rs", "mod e;\npub use e::Z;\npub struct Y;\n");
    w("d/e.rs", "pub struct Z(super::Y);\n");
    w("d/tests.rs", "use crate::a::*;\n");
    // A parent calling into its child, which uses the parent's type: the hierarchy, no circle.
    w(
        "lib.rs",
        "pub mod a;\npub mod b;\npub mod c;\npub mod d;\npub mod f;\n",
    );
    w("f/mod.rs", "mod g;\npub struct T;\nfn h() { g::k(); }\n");
    w("f/g.rs", "pub fn k() -> super::T { super::T }\n");
    let graph = import_graph(&src);
    let text = describe_circles(dir.path(), &graph).join("\n");
    assert_eq!(
        text,
        "circle of 3 files: src/a.rs, src/b.rs, src/c.rs\n  \
         src/a.rs -> src/b.rs: *, Thing\n  \
         src/b.rs -> src/c.rs: g\n  \
         src/c.rs -> src/a.rs: *\n\
         circle of 2 files: src/d/e.rs, src/d/mod.rs\n  \
         src/d/e.rs -> src/d/mod.rs: Y\n  \
         src/d/mod.rs -> src/d/e.rs: Z"
    );
}

// ---------------------------------------------------------------------------------------------
// Errors: a source said once.

/// `(file:line, type or variant, field)` for every thiserror variant that interpolates a field it
/// also returns from `source()`.
fn source_said_twice(file: &Path, text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("#[error(") {
        let at = from + at;
        let open = at + "#[error".len();
        let close = matching(b, open);
        from = close;
        let args = &text[open + 1..close - 1];
        if args.trim() == "transparent" {
            continue;
        }
        // Skip further attributes, then the item: `Name {…}`, `Name(…)` or `struct Name …`.
        let mut j = skip_ws(b, close + 1);
        while text[j..].starts_with("#[") {
            j = skip_ws(b, matching(b, j + 1));
        }
        let head_end = text[j..]
            .find(['{', '(', ',', ';', '}'])
            .map_or(b.len(), |o| j + o);
        let name = text[j..head_end]
            .split_whitespace()
            .last()
            .unwrap_or("?")
            .to_string();
        let fields = match b.get(head_end) {
            Some(b'{') | Some(b'(') => {
                let end = matching(b, head_end);
                fields_with_source(&text[head_end + 1..end - 1], b[head_end] == b'(')
            }
            _ => Vec::new(),
        };
        for field in fields {
            if interpolates(args, &field) {
                let line = text[..at].matches('\n').count() + 1;
                out.push(format!(
                    "{}:{line}: {name} interpolates `{field}` and returns it from source()",
                    file.display()
                ));
            }
        }
    }
    out
}

/// The fields of a variant's body that are its source, as named (`source`) or indexed (`0`).
fn fields_with_source(body: &str, tuple: bool) -> Vec<String> {
    let mut out = Vec::new();
    for (n, field) in split_fields(body).iter().enumerate() {
        let attrs_source = field.contains("#[from]") || field.contains("#[source]");
        let mut decl = field.as_str();
        while let Some(rest) = decl.trim_start().strip_prefix("#[") {
            let close = rest.find(']').unwrap_or(rest.len());
            decl = &rest[close + 1..];
        }
        if tuple {
            if attrs_source {
                out.push(n.to_string());
            }
        } else {
            let name = decl
                .trim()
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub ")
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            if attrs_source || name == "source" {
                out.push(name);
            }
        }
    }
    out
}

/// Fields split at the commas outside brackets (generics included).
fn split_fields(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in body.chars() {
        match c {
            '(' | '[' | '{' | '<' => depth += 1,
            ')' | ']' | '}' | '>' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

/// Whether `#[error(args)]` prints `field`: `{field}`, `{field:?}`, `{0}`, or `.field` in the
/// trailing arguments.
fn interpolates(args: &str, field: &str) -> bool {
    let (fmt, extra) = match args.find("\",") {
        Some(at) => (&args[..at + 1], &args[at + 2..]),
        None => (args, ""),
    };
    let in_fmt = fmt.match_indices('{').any(|(i, _)| {
        fmt[i + 1..].starts_with(field) && {
            let after = &fmt[i + 1 + field.len()..];
            after.starts_with('}') || after.starts_with(':')
        }
    });
    let in_extra = extra.match_indices(&format!(".{field}")).any(|(i, _)| {
        !extra[i + 1 + field.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    });
    in_fmt || in_extra
}

#[test]
fn no_error_says_its_source_twice() {
    let root = workspace_root();
    let mut found = Vec::new();
    for krate in ["e2e", "xtask", "testkit"] {
        let mut files = Vec::new();
        rust_files(&root.join(krate).join("src"), &mut files);
        for file in files {
            let rel = file.strip_prefix(&root).unwrap();
            let rel_s = rel.to_string_lossy().replace('\\', "/");
            if rel_s.ends_with("/tests.rs") {
                continue;
            }
            let raw = std::fs::read_to_string(&file).unwrap();
            found.extend(source_said_twice(
                rel,
                &without_test_modules(&strip(&raw, false)),
            ));
        }
    }
    assert!(
        found.is_empty(),
        "an error variant prints its source in its message and returns it from source(): \
         drop it from the message (errors::error_chain prints the chain):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_source_check_sees_named_indexed_and_from_fields() {
    let text = r#"
        #[derive(Debug, thiserror::Error)]
        pub enum E {
            #[error("reading {path}: {source}")]
            Named { path: String, source: std::io::Error },
            #[error("parsing: {0}")]
            Indexed(#[from] serde_json::Error),
            #[error("bad {what}")]
            Fine { what: String, #[source] source: std::io::Error },
            #[error("wrapped {}", .inner)]
            Extra { #[source] inner: std::io::Error },
            #[error(transparent)]
            Through(#[from] std::fmt::Error),
            #[error("plain {0}")]
            NoSource(String),
        }
    "#;
    let found = source_said_twice(Path::new("x.rs"), &strip(text, false));
    assert_eq!(
        found,
        [
            "x.rs:4: Named interpolates `source` and returns it from source()",
            "x.rs:6: Indexed interpolates `0` and returns it from source()",
            "x.rs:10: Extra interpolates `inner` and returns it from source()",
        ]
    );
}
