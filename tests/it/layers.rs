//! The architecture, checked on the source text: every file under `src/` is read, the
//! paths it names (`crate::…`, `super::…`, `self::…`, a child module's name, in `use`
//! trees and inline in code) are resolved to the file that defines what they name, and
//! the test fails, printing `file:line` and the arrow, on
//!
//! 1. a cycle between files (a strongly connected component of the file graph);
//! 2. an arrow from a lower layer to a higher one ([`LAYERS`]), or a top-level module with
//!    no layer;
//! 3. a break of the module-file convention the resolution relies on: a folder module's
//!    entry is `mod.rs` (never `foo.rs` beside `foo/`), no `#[path]`, and every file under
//!    `src/` is reached from `lib.rs` or `main.rs` by `mod` declarations.
//!
//! Quick run: `cargo test --test it layers:: -- --include-ignored` (the `::` keeps the
//! filter off the tests with "players" in their names).
//!
//! How paths resolve, and why:
//! - The module tree is built from the `mod` declarations, so `super::` means what rustc
//!   says it means, inline modules (`mod tests { … }`) included.
//! - A file's arrows to its own submodules do not count for cycles: an entry file that
//!   declares and calls its submodules while they use what it defines is how a Rust
//!   module is built. The loops that matter are between siblings and across modules.
//! - A `use` is followed to where the item is defined: `crate::config::Scene` is an arrow
//!   to `config/scene.rs`, not to the `config/mod.rs` that re-exports it. A `pub use`
//!   counts for the layer rule (a lower layer must not hand out a higher layer's type)
//!   but not for cycles: a facade depends on nothing it only passes on.
//! - Test code (a module declared under `#[cfg(test)]`, inline or in its own file, and
//!   everything below it) counts for cycles but not for layers: a test may build its
//!   fixtures from any layer, but a loop through a test still ties two files together.
//!   `#[cfg(test)]` on anything but a `mod` is not recognised.
//! - Comments and string literals are skipped: an intra-doc link is not an import.
//! - Text, not rustc: a macro that builds a path out of pieces, or a glob import used to
//!   reach a re-export, is invisible. Good enough to keep the layers honest.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The layers, bottom to top, and the top-level modules in each. A file may import from
/// its own layer and from the layers below, never from above. Why these layers and what
/// each one is for: README.md, "How it works", "Layers" (the same table; change both).
///
/// A top-level module that is not listed fails the test, unless it imports nothing from
/// the crate: such a leaf helper is vocabulary by construction.
const LAYERS: &[(&str, &[&str])] = &[
    ("vocabulary", &["model", "clock"]),
    ("storage", &["store"]),
    (
        "edges",
        &[
            "ncs",
            "agora",
            "probe",
            "config",
            "limits",
            "telemetry",
            "simulator",
            "appwebhook",
            "crypto",
        ],
    ),
    ("core", &["reconcile"]),
    (
        "wiring",
        &["app", "http", "reload", "scene_feeds", "embedded"],
    ),
    // `lib` is the library's root (its public API), `main` the binary's.
    ("top", &["main", "cli", "bench", "lib"]),
];

#[test]
fn the_architecture_holds() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let crate_graph = Crate::load(&src);
    let mut findings = crate_graph.convention_breaks(&src);
    findings.extend(crate_graph.cycles());
    findings.extend(crate_graph.layer_breaks());
    assert!(
        findings.is_empty(),
        "{} architecture findings (rules: tests/it/layers.rs):\n{}",
        findings.len(),
        findings.join("\n")
    );
}

/// The reader itself: what it must see, and what it must not mistake for a path.
#[test]
fn the_reader_sees_paths_and_only_paths() {
    let text = r##"
        //! [`crate::doc::link`] is not an import.
        pub use self::child::{self, Item as Alias, deep::{A, B}};
        use super::*;
        #[cfg(test)]
        mod tests {
            use crate::config::Scene;
        }
        fn f<'a>(x: &'a str) -> char {
            let _ = "crate::in_a_string";
            let _ = r#"crate::in_a_raw_string "with quotes""#;
            let _ = '"';
            crate::inline::call();
            'x'
        }
    "##;
    let scan = scan(text);
    let uses: Vec<(String, &str, bool, bool)> = scan
        .uses
        .iter()
        .map(|u| (u.path.join("::"), u.name.as_str(), u.public, u.test))
        .collect();
    assert_eq!(
        uses,
        [
            ("self::child".to_string(), "child", true, false),
            ("self::child::Item".to_string(), "Alias", true, false),
            ("self::child::deep::A".to_string(), "A", true, false),
            ("self::child::deep::B".to_string(), "B", true, false),
            ("super".to_string(), "*", false, false),
            ("crate::config::Scene".to_string(), "Scene", false, true),
        ]
    );
    assert_eq!(scan.uses[5].scope, ["tests"]);
    let paths: Vec<String> = scan.paths.iter().map(|p| p.path.join("::")).collect();
    assert_eq!(paths, ["crate::inline::call"]);
    assert_eq!(scan.paths[0].line, 13);
}

/// The position of `module` in [`LAYERS`], with the layer's name.
fn layer_of(module: &str) -> Option<(usize, &'static str)> {
    LAYERS
        .iter()
        .enumerate()
        .find(|(_, (_, modules))| modules.contains(&module))
        .map(|(i, (name, _))| (i, *name))
}

// ---------------------------------------------------------------------------------------
// Tokens: just enough of Rust's lexical grammar to skip comments, strings and characters.

#[derive(Debug, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    PathSep,
    /// A string literal's text as written: `#[path = "…"]` needs no unescaping.
    Str(String),
    Punct(char),
}

#[derive(Debug)]
struct Token {
    tok: Tok,
    line: usize,
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

fn lex(text: &str) -> Vec<Token> {
    let s: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let count_lines = |from: usize, to: usize| s[from..to].iter().filter(|&&c| c == '\n').count();
    while i < s.len() {
        let start = i;
        match s[i] {
            '/' if s.get(i + 1) == Some(&'/') => {
                while i < s.len() && s[i] != '\n' {
                    i += 1;
                }
            }
            '/' if s.get(i + 1) == Some(&'*') => {
                let mut depth = 0;
                while i < s.len() {
                    if s[i] == '/' && s.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if s[i] == '*' && s.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            '"' => {
                let (end, value) = string_at(&s, i, None);
                out.push(Token {
                    tok: Tok::Str(value),
                    line,
                });
                i = end;
            }
            '\'' => i = char_or_lifetime_end(&s, i),
            ':' if s.get(i + 1) == Some(&':') => {
                out.push(Token {
                    tok: Tok::PathSep,
                    line,
                });
                i += 2;
            }
            c if is_ident_char(c) => {
                while i < s.len() && is_ident_char(s[i]) {
                    i += 1;
                }
                let word: String = s[start..i].iter().collect();
                let next = s.get(i).copied();
                let after = s.get(i + 1).copied();
                match (word.as_str(), next) {
                    ("r", Some('#')) if after.is_some_and(is_ident_char) => {
                        // A raw identifier, `r#type`.
                        let from = i + 1;
                        i = from;
                        while i < s.len() && is_ident_char(s[i]) {
                            i += 1;
                        }
                        out.push(Token {
                            tok: Tok::Ident(s[from..i].iter().collect()),
                            line,
                        });
                    }
                    ("r" | "br" | "cr", Some('"' | '#')) => {
                        let hashes = s[i..].iter().take_while(|&&c| c == '#').count();
                        let (end, value) = string_at(&s, i + hashes, Some(hashes));
                        out.push(Token {
                            tok: Tok::Str(value),
                            line,
                        });
                        i = end;
                    }
                    ("b" | "c", Some('"')) => {
                        let (end, value) = string_at(&s, i, None);
                        out.push(Token {
                            tok: Tok::Str(value),
                            line,
                        });
                        i = end;
                    }
                    ("b", Some('\'')) => i = char_or_lifetime_end(&s, i),
                    _ => out.push(Token {
                        tok: Tok::Ident(word),
                        line,
                    }),
                }
            }
            c if c.is_whitespace() => i += 1,
            c => {
                out.push(Token {
                    tok: Tok::Punct(c),
                    line,
                });
                i += 1;
            }
        }
        line += count_lines(start, i);
    }
    out
}

/// The end of the string whose opening quote is at `open`, and its text (escapes left as
/// written). A raw string (`Some(hashes)`) ends at `"` and that many `#`s; in a plain one
/// (`None`), `\"` does not end it.
fn string_at(s: &[char], open: usize, raw: Option<usize>) -> (usize, String) {
    let hashes = raw.unwrap_or(0);
    let mut i = open + 1;
    while i < s.len() {
        if raw.is_none() && s[i] == '\\' {
            i += 2;
            continue;
        }
        if s[i] == '"'
            && s[i + 1..]
                .iter()
                .take(hashes)
                .filter(|&&c| c == '#')
                .count()
                == hashes
        {
            return (i + 1 + hashes, s[open + 1..i].iter().collect());
        }
        i += 1;
    }
    (s.len(), String::new())
}

/// Past a character literal (`'a'`, `'\n'`, `'\u{1F600}'`) starting at the quote at
/// `quote`, or past the quote of a lifetime or label, whose name is then read as an
/// identifier (harmless: it is never followed by `::`).
fn char_or_lifetime_end(s: &[char], quote: usize) -> usize {
    match (s.get(quote + 1), s.get(quote + 2)) {
        (Some('\\'), _) => {
            let mut i = quote + 3;
            while i < s.len() && s[i] != '\'' {
                i += 1;
            }
            i + 1
        }
        (Some(_), Some('\'')) => quote + 3,
        _ => quote + 1,
    }
}

// ---------------------------------------------------------------------------------------
// One file's declarations: its `mod`s, its `use` leaves and the paths in its code, each in
// the scope (chain of inline modules) it appears in.

#[derive(Debug)]
struct ModDecl {
    scope: Vec<String>,
    name: String,
    inline: bool,
    test: bool,
    path_attr: Option<String>,
    line: usize,
}

/// One leaf of a `use` tree: `use a::{b, c as d}` gives `a::b` named `b` and `a::c` named
/// `d`; a glob `a::*` gives `a` named `*`.
#[derive(Debug)]
struct UseLeaf {
    scope: Vec<String>,
    path: Vec<String>,
    name: String,
    public: bool,
    test: bool,
    line: usize,
}

#[derive(Debug)]
struct PathRef {
    scope: Vec<String>,
    path: Vec<String>,
    test: bool,
    line: usize,
}

#[derive(Debug, Default)]
struct Scan {
    /// `#![cfg(test)]` at the top of the file.
    test: bool,
    mods: Vec<ModDecl>,
    uses: Vec<UseLeaf>,
    paths: Vec<PathRef>,
}

fn ident(tokens: &[Token], k: usize) -> Option<&str> {
    match tokens.get(k).map(|t| &t.tok) {
        Some(Tok::Ident(s)) => Some(s),
        _ => None,
    }
}

fn is(tokens: &[Token], k: usize, tok: &Tok) -> bool {
    tokens.get(k).is_some_and(|t| &t.tok == tok)
}

fn words(tokens: &[Token]) -> Vec<&Tok> {
    tokens.iter().map(|t| &t.tok).collect()
}

/// `cfg(test)`, the inside of `#[cfg(test)]`.
fn is_cfg_test(attr: &[Token]) -> bool {
    matches!(
        words(attr)[..],
        [Tok::Ident(c), Tok::Punct('('), Tok::Ident(t), Tok::Punct(')')]
            if c == "cfg" && t == "test"
    )
}

/// The index just past the bracket that closes the one at `open`.
fn past_closing(tokens: &[Token], open: usize, (l, r): (char, char)) -> usize {
    let mut depth = 0;
    for (k, t) in tokens.iter().enumerate().skip(open) {
        match t.tok {
            Tok::Punct(c) if c == l => depth += 1,
            Tok::Punct(c) if c == r => {
                depth -= 1;
                if depth == 0 {
                    return k + 1;
                }
            }
            _ => {}
        }
    }
    tokens.len()
}

fn scan(text: &str) -> Scan {
    struct Inline {
        name: String,
        depth: usize,
        test: bool,
    }
    let scope_of = |inline: &[Inline]| inline.iter().map(|m| m.name.clone()).collect();
    let tokens = lex(text);
    let mut out = Scan::default();
    let mut inline: Vec<Inline> = Vec::new();
    let mut depth = 0;
    // Attributes and `pub` seen since the last item boundary: they belong to what follows.
    let mut attrs: Vec<&[Token]> = Vec::new();
    let mut public = false;
    let mut k = 0;
    while k < tokens.len() {
        let in_test = inline.last().is_some_and(|m| m.test);
        match &tokens[k].tok {
            Tok::Punct('#') => {
                let inner = is(&tokens, k + 1, &Tok::Punct('!'));
                let open = k + 1 + usize::from(inner);
                if !is(&tokens, open, &Tok::Punct('[')) {
                    k += 1;
                    continue;
                }
                let close = past_closing(&tokens, open, ('[', ']'));
                let attr = &tokens[open + 1..close.saturating_sub(1)];
                if !inner {
                    attrs.push(attr);
                } else if depth == 0 && is_cfg_test(attr) {
                    out.test = true;
                }
                k = close;
            }
            Tok::Ident(w) if w == "pub" => {
                public = true;
                k += 1;
                if is(&tokens, k, &Tok::Punct('(')) {
                    k = past_closing(&tokens, k, ('(', ')'));
                }
            }
            // `use<'a>` in `impl Trait + use<'a>` is not an import.
            Tok::Ident(w) if w == "use" && !is(&tokens, k + 1, &Tok::Punct('<')) => {
                let mut leaves = Vec::new();
                let end = use_tree(&tokens, k + 1, &[], &mut leaves);
                let test = in_test || attrs.iter().any(|a| is_cfg_test(a));
                for (path, name) in leaves {
                    out.uses.push(UseLeaf {
                        scope: scope_of(&inline),
                        path,
                        name,
                        public,
                        test,
                        line: tokens[k].line,
                    });
                }
                (attrs, public) = (Vec::new(), false);
                k = end;
            }
            Tok::Ident(w) if w == "mod" && ident(&tokens, k + 1).is_some() => {
                let name = ident(&tokens, k + 1).unwrap_or_default().to_string();
                let path_attr = attrs.iter().find_map(|a| match words(a)[..] {
                    [Tok::Ident(p), Tok::Punct('='), Tok::Str(file)] if p == "path" => {
                        Some(file.clone())
                    }
                    _ => None,
                });
                let test = in_test || attrs.iter().any(|a| is_cfg_test(a));
                let is_inline = is(&tokens, k + 2, &Tok::Punct('{'));
                out.mods.push(ModDecl {
                    scope: scope_of(&inline),
                    name: name.clone(),
                    inline: is_inline,
                    test,
                    path_attr,
                    line: tokens[k].line,
                });
                if is_inline {
                    depth += 1;
                    inline.push(Inline { name, depth, test });
                }
                (attrs, public) = (Vec::new(), false);
                k += 3;
            }
            Tok::Punct('{') => {
                depth += 1;
                (attrs, public) = (Vec::new(), false);
                k += 1;
            }
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                while inline.last().is_some_and(|m| m.depth > depth) {
                    inline.pop();
                }
                (attrs, public) = (Vec::new(), false);
                k += 1;
            }
            Tok::Punct(';') => {
                (attrs, public) = (Vec::new(), false);
                k += 1;
            }
            Tok::Ident(first)
                if is(&tokens, k + 1, &Tok::PathSep)
                    && !is(&tokens, k.wrapping_sub(1), &Tok::PathSep) =>
            {
                let mut path = vec![first.clone()];
                let mut j = k + 1;
                while is(&tokens, j, &Tok::PathSep) {
                    let Some(seg) = ident(&tokens, j + 1) else {
                        break;
                    };
                    path.push(seg.to_string());
                    j += 2;
                }
                out.paths.push(PathRef {
                    scope: scope_of(&inline),
                    path,
                    test: in_test,
                    line: tokens[k].line,
                });
                k = j;
            }
            _ => k += 1,
        }
    }
    out
}

/// Expands the use tree starting at `k` under `prefix` into `(path, name)` leaves;
/// returns the index past the tree.
fn use_tree(
    tokens: &[Token],
    mut k: usize,
    prefix: &[String],
    leaves: &mut Vec<(Vec<String>, String)>,
) -> usize {
    let mut path = prefix.to_vec();
    if path.is_empty() && is(tokens, k, &Tok::PathSep) {
        // `use ::name` is always an external crate: keep the marker so nothing resolves.
        path.push("::".into());
        k += 1;
    }
    loop {
        match tokens.get(k).map(|t| &t.tok) {
            Some(Tok::Ident(seg)) => {
                path.push(seg.clone());
                k += 1;
            }
            Some(Tok::Punct('*')) => {
                leaves.push((path, "*".into()));
                return k + 1;
            }
            Some(Tok::Punct('{')) => {
                k += 1;
                while k < tokens.len() && !is(tokens, k, &Tok::Punct('}')) {
                    let next = use_tree(tokens, k, &path, leaves);
                    // A malformed tree must not stall the scan.
                    k = next.max(k + 1);
                    if is(tokens, k, &Tok::Punct(',')) {
                        k += 1;
                    }
                }
                return k + 1;
            }
            _ => return k,
        }
        if is(tokens, k, &Tok::PathSep) {
            k += 1;
            continue;
        }
        if path.last().is_some_and(|s| s == "self") && path.len() > 1 {
            path.pop();
        }
        let (name, end) = match ident(tokens, k) {
            Some("as") => (ident(tokens, k + 1).unwrap_or("_").to_string(), k + 2),
            _ => (path.last().cloned().unwrap_or_default(), k),
        };
        leaves.push((path, name));
        return end;
    }
}

// ---------------------------------------------------------------------------------------
// The crate: files, the module tree over them, and the arrows between files.

struct File {
    /// Relative to `src/`, with `/` separators.
    rel: String,
    /// The top-level module the file belongs to: `config` for `config/scenes.rs`, `lib`
    /// and `main` for the roots.
    top: String,
    /// Declared under `#[cfg(test)]`, or below such a module.
    test: bool,
    /// The binary's root, which names the library `pullkeeper::`.
    bin: bool,
    scan: Scan,
}

struct Module {
    file: usize,
    scope: Vec<String>,
    parent: Option<usize>,
    children: BTreeMap<String, usize>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// A `use` or a path in code: the file needs the target.
    Needs,
    /// A `pub use`: the file hands the target's item on.
    ReExports,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Site {
    line: usize,
    kind: Kind,
    test: bool,
}

struct Crate {
    files: Vec<File>,
    modules: Vec<Module>,
    lib_root: usize,
    /// `(file, scope)` → module.
    scopes: HashMap<(usize, Vec<String>), usize>,
    /// `from file → to file` with every place that makes the arrow.
    arrows: BTreeMap<(usize, usize), BTreeSet<Site>>,
    /// `#[path]` attributes met while building the tree: `(file, line)`.
    path_attrs: Vec<(usize, usize)>,
}

impl Crate {
    fn load(src: &Path) -> Crate {
        let mut krate = Crate {
            files: Vec::new(),
            modules: Vec::new(),
            lib_root: 0,
            scopes: HashMap::new(),
            arrows: BTreeMap::new(),
            path_attrs: Vec::new(),
        };
        krate.lib_root = krate.load_file(src, "lib.rs", "lib", None, false, false);
        krate.load_file(src, "main.rs", "main", None, false, true);
        krate.resolve_arrows();
        krate
    }

    /// Reads `rel`, gives its module and inline modules a place in the tree under
    /// `parent`, loads the files it declares; returns the file's module.
    fn load_file(
        &mut self,
        src: &Path,
        rel: &str,
        top: &str,
        parent: Option<(usize, String)>,
        test: bool,
        bin: bool,
    ) -> usize {
        let text =
            std::fs::read_to_string(src.join(rel)).unwrap_or_else(|e| panic!("src/{rel}: {e}"));
        let mut scan = scan(&text);
        let file = self.files.len();
        let test = test || scan.test;
        let decls = std::mem::take(&mut scan.mods);
        // Only a crate root's own `mod` declarations start top-level modules.
        let crate_root = parent.is_none();
        self.files.push(File {
            rel: rel.to_string(),
            top: top.to_string(),
            test,
            bin,
            scan,
        });
        let root = self.add_module(file, Vec::new(), parent);
        for ModDecl {
            scope,
            name,
            inline,
            test: decl_test,
            path_attr,
            line,
        } in decls
        {
            let owner = self.scopes[&(file, scope.clone())];
            if inline {
                let mut inner = scope;
                inner.push(name.clone());
                self.add_module(file, inner, Some((owner, name)));
                continue;
            }
            let dir = Path::new(rel).parent().unwrap_or(Path::new(""));
            let child_rel = match &path_attr {
                Some(p) => {
                    self.path_attrs.push((file, line));
                    dir.join(p)
                }
                None => {
                    let stem = Path::new(rel).file_stem().and_then(|s| s.to_str());
                    let mut base = match stem {
                        Some("mod" | "lib" | "main") => dir.to_path_buf(),
                        Some(stem) => dir.join(stem),
                        None => dir.to_path_buf(),
                    };
                    base.extend(&scope);
                    let flat = base.join(format!("{name}.rs"));
                    if src.join(&flat).exists() {
                        flat
                    } else {
                        base.join(&name).join("mod.rs")
                    }
                }
            };
            let child_rel = slashed(&child_rel);
            let child_top = if crate_root && scope.is_empty() {
                name.clone()
            } else {
                top.to_string()
            };
            self.load_file(
                src,
                &child_rel,
                &child_top,
                Some((owner, name)),
                test || decl_test,
                bin,
            );
        }
        root
    }

    fn add_module(
        &mut self,
        file: usize,
        scope: Vec<String>,
        parent: Option<(usize, String)>,
    ) -> usize {
        let id = self.modules.len();
        if let Some((p, name)) = &parent {
            self.modules[*p].children.insert(name.clone(), id);
        }
        self.modules.push(Module {
            file,
            scope: scope.clone(),
            parent: parent.map(|(p, _)| p),
            children: BTreeMap::new(),
        });
        self.scopes.insert((file, scope), id);
        id
    }

    fn resolve_arrows(&mut self) {
        let mut arrows: BTreeMap<(usize, usize), BTreeSet<Site>> = BTreeMap::new();
        for (file, f) in self.files.iter().enumerate() {
            let module = |scope: &Vec<String>| self.scopes[&(file, scope.clone())];
            let uses = f.scan.uses.iter().map(|u| {
                let kind = if u.public {
                    Kind::ReExports
                } else {
                    Kind::Needs
                };
                (module(&u.scope), &u.path, kind, u.test, u.line)
            });
            let paths = f
                .scan
                .paths
                .iter()
                .map(|p| (module(&p.scope), &p.path, Kind::Needs, p.test, p.line));
            for (from, path, kind, test, line) in uses.chain(paths) {
                let Some(to) = self.resolve(from, path, 0) else {
                    continue;
                };
                let to = self.modules[to].file;
                if to != file {
                    arrows.entry((file, to)).or_default().insert(Site {
                        line,
                        kind,
                        test: test || f.test,
                    });
                }
            }
        }
        self.arrows = arrows;
    }

    /// The module that defines what `path`, written in module `from`, names; `None` for
    /// paths outside the crate (`std::…`, other crates, local items).
    fn resolve(&self, from: usize, path: &[String], hops: usize) -> Option<usize> {
        // Re-exports that chain further than this are a loop.
        if hops > 16 {
            return None;
        }
        let (first, rest) = path.split_first()?;
        let bin = self.files[self.modules[from].file].bin;
        let start = match first.as_str() {
            "crate" if !bin => self.lib_root,
            "pullkeeper" if bin => self.lib_root,
            "self" => from,
            "super" => self.modules[from].parent?,
            name => match self.modules[from].children.get(name) {
                Some(&child) => child,
                None => {
                    let target = self.imported(from, name)?;
                    let path: Vec<String> = target.iter().chain(rest).cloned().collect();
                    return self.resolve(from, &path, hops + 1);
                }
            },
        };
        let mut at = start;
        for (i, seg) in rest.iter().enumerate() {
            match seg.as_str() {
                "self" => {}
                "super" => at = self.modules[at].parent?,
                name => {
                    if let Some(&child) = self.modules[at].children.get(name) {
                        at = child;
                    } else if let Some(target) = self.imported(at, name) {
                        let path: Vec<String> =
                            target.iter().chain(&rest[i + 1..]).cloned().collect();
                        // Re-exported from outside the crate: the re-export is the end.
                        return self.resolve(at, &path, hops + 1).or(Some(at));
                    } else {
                        break;
                    }
                }
            }
        }
        Some(at)
    }

    /// The path a `use` in `module` brings `name` in by, as written there.
    fn imported(&self, module: usize, name: &str) -> Option<&[String]> {
        let m = &self.modules[module];
        self.files[m.file]
            .scan
            .uses
            .iter()
            .find(|u| u.scope == m.scope && u.name == name)
            .map(|u| u.path.as_slice())
    }

    // --- the rules ---

    fn convention_breaks(&self, src: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let loaded: BTreeSet<&str> = self.files.iter().map(|f| f.rel.as_str()).collect();
        for rel in rust_files(src) {
            if !loaded.contains(rel.as_str()) {
                out.push(format!(
                    "src/{rel}: not reached from lib.rs or main.rs by `mod` declarations"
                ));
            }
            let entry = rel == "mod.rs" || rel.ends_with("/mod.rs");
            if let Some(stem) = rel.strip_suffix(".rs")
                && !entry
                && src.join(stem).is_dir()
            {
                out.push(format!(
                    "src/{rel} beside src/{stem}/: move it to src/{stem}/mod.rs"
                ));
            }
        }
        for &(file, line) in &self.path_attrs {
            out.push(format!(
                "src/{}:{line}: #[path]: declare the module where its file is",
                self.files[file].rel
            ));
        }
        out
    }

    fn cycles(&self) -> Vec<String> {
        // The first place each counted arrow is made.
        let needs: BTreeMap<(usize, usize), Site> = self
            .arrows
            .iter()
            .filter(|&(&(from, to), _)| !self.is_below(to, from))
            .filter_map(|(&arrow, sites)| {
                let site = sites.iter().find(|s| s.kind == Kind::Needs)?;
                Some((arrow, *site))
            })
            .collect();
        let mut graph: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for &(from, to) in needs.keys() {
            graph.entry(from).or_default().push(to);
        }
        strongly_connected(self.files.len(), &graph)
            .into_iter()
            .filter(|component| component.len() > 1)
            .map(|component| {
                let names: Vec<&str> = component
                    .iter()
                    .map(|&f| self.files[f].rel.as_str())
                    .collect();
                let mut text = format!("cycle: {}", names.join(" ↔ "));
                for (&(from, to), site) in &needs {
                    if component.contains(&from) && component.contains(&to) {
                        let _ = write!(
                            text,
                            "\n    src/{}:{} → src/{}{}",
                            self.files[from].rel,
                            site.line,
                            self.files[to].rel,
                            if site.test { " (test)" } else { "" }
                        );
                    }
                }
                text
            })
            .collect()
    }

    /// Whether file `file` is a submodule (at any depth) of file `owner`'s module.
    fn is_below(&self, file: usize, owner: usize) -> bool {
        let owner = self.scopes[&(owner, Vec::new())];
        let mut at = self.modules[self.scopes[&(file, Vec::new())]].parent;
        while let Some(m) = at {
            if m == owner {
                return true;
            }
            at = self.modules[m].parent;
        }
        false
    }

    fn layer_breaks(&self) -> Vec<String> {
        let mut out = Vec::new();
        let leaves: BTreeSet<&str> = self
            .files
            .iter()
            .map(|f| f.top.as_str())
            .filter(|top| {
                self.arrows.iter().all(|(&(from, to), sites)| {
                    self.files[from].top != *top
                        || self.files[to].top == *top
                        || sites.iter().all(|s| s.test)
                })
            })
            .collect();
        let layer = |top: &str| {
            layer_of(top).or_else(|| leaves.contains(top).then_some((0, "vocabulary (leaf)")))
        };
        let mut unknown = BTreeSet::new();
        for f in self.files.iter().filter(|f| !f.test) {
            if layer(&f.top).is_none() && unknown.insert(f.top.as_str()) {
                out.push(format!(
                    "src/{}: top-level module `{}` has no layer: give it one in LAYERS",
                    f.rel, f.top
                ));
            }
        }
        for (&(from, to), sites) in &self.arrows {
            let (f, t) = (&self.files[from], &self.files[to]);
            let (Some((low, low_name)), Some((high, high_name))) = (layer(&f.top), layer(&t.top))
            else {
                continue;
            };
            if low >= high {
                continue;
            }
            for site in sites.iter().filter(|s| !s.test) {
                out.push(format!(
                    "src/{}:{}: {} ({low_name}) → {} ({high_name}): src/{}{}",
                    f.rel,
                    site.line,
                    f.top,
                    t.top,
                    t.rel,
                    if site.kind == Kind::ReExports {
                        " (re-export)"
                    } else {
                        ""
                    }
                ));
            }
        }
        out
    }
}

fn slashed(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Every `.rs` file under `dir`, relative to it, sorted.
fn rust_files(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    let mut rels: Vec<String> = files
        .iter()
        .filter_map(|p| p.strip_prefix(dir).ok().map(slashed))
        .collect();
    rels.sort();
    rels
}

/// Tarjan's strongly connected components of the graph on `0..n`.
fn strongly_connected(n: usize, arrows: &BTreeMap<usize, Vec<usize>>) -> Vec<Vec<usize>> {
    struct Walk<'a> {
        arrows: &'a BTreeMap<usize, Vec<usize>>,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        stack: Vec<usize>,
        on_stack: Vec<bool>,
        next: usize,
        components: Vec<Vec<usize>>,
    }
    impl Walk<'_> {
        fn visit(&mut self, v: usize) {
            self.index[v] = Some(self.next);
            self.low[v] = self.next;
            self.next += 1;
            self.stack.push(v);
            self.on_stack[v] = true;
            for &w in self.arrows.get(&v).into_iter().flatten() {
                match self.index[w] {
                    None => {
                        self.visit(w);
                        self.low[v] = self.low[v].min(self.low[w]);
                    }
                    Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                    Some(_) => {}
                }
            }
            if Some(self.low[v]) == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                component.sort_unstable();
                self.components.push(component);
            }
        }
    }
    let mut walk = Walk {
        arrows,
        index: vec![None; n],
        low: vec![0; n],
        stack: Vec::new(),
        on_stack: vec![false; n],
        next: 0,
        components: Vec::new(),
    };
    for v in 0..n {
        if walk.index[v].is_none() {
            walk.visit(v);
        }
    }
    walk.components
}
