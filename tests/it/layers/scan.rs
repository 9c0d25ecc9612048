//! One file's declarations: its `mod`s, its `use` leaves and the paths in its code, each in
//! the scope (chain of inline modules) it appears in.

use super::*;

#[derive(Debug)]
pub(super) struct ModDecl {
    pub(super) scope: Vec<String>,
    pub(super) name: String,
    pub(super) inline: bool,
    pub(super) test: bool,
    pub(super) path_attr: Option<String>,
    pub(super) line: usize,
}

/// One leaf of a `use` tree: `use a::{b, c as d}` gives `a::b` named `b` and `a::c` named
/// `d`; a glob `a::*` gives `a` named `*`.
#[derive(Debug)]
pub(super) struct UseLeaf {
    pub(super) scope: Vec<String>,
    pub(super) path: Vec<String>,
    pub(super) name: String,
    pub(super) public: bool,
    pub(super) test: bool,
    pub(super) line: usize,
}

#[derive(Debug)]
pub(super) struct PathRef {
    pub(super) scope: Vec<String>,
    pub(super) path: Vec<String>,
    pub(super) test: bool,
    pub(super) line: usize,
}

#[derive(Debug, Default)]
pub(super) struct Scan {
    /// `#![cfg(test)]` at the top of the file.
    pub(super) test: bool,
    pub(super) mods: Vec<ModDecl>,
    pub(super) uses: Vec<UseLeaf>,
    pub(super) paths: Vec<PathRef>,
}

pub(super) fn ident(tokens: &[Token], k: usize) -> Option<&str> {
    match tokens.get(k).map(|t| &t.tok) {
        Some(Tok::Ident(s)) => Some(s),
        _ => None,
    }
}

pub(super) fn is(tokens: &[Token], k: usize, tok: &Tok) -> bool {
    tokens.get(k).is_some_and(|t| &t.tok == tok)
}

pub(super) fn words(tokens: &[Token]) -> Vec<&Tok> {
    tokens.iter().map(|t| &t.tok).collect()
}

/// `cfg(test)`, the inside of `#[cfg(test)]`.
pub(super) fn is_cfg_test(attr: &[Token]) -> bool {
    matches!(
        words(attr)[..],
        [Tok::Ident(c), Tok::Punct('('), Tok::Ident(t), Tok::Punct(')')]
            if c == "cfg" && t == "test"
    )
}

/// The index just past the bracket that closes the one at `open`.
pub(super) fn past_closing(tokens: &[Token], open: usize, (l, r): (char, char)) -> usize {
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

pub(super) fn scan(text: &str) -> Scan {
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
pub(super) fn use_tree(
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
