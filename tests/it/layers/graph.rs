//! The crate: files, the module tree over them, and the arrows between files.

use super::*;

pub(super) struct File {
    /// Relative to `src/`, with `/` separators.
    pub(super) rel: String,
    /// The top-level module the file belongs to: `config` for `config/scenes.rs`, `lib`
    /// and `main` for the roots.
    pub(super) top: String,
    /// Declared under `#[cfg(test)]`, or below such a module.
    pub(super) test: bool,
    /// The binary's root, which names the library `pullkeeper::`.
    pub(super) bin: bool,
    pub(super) scan: Scan,
}

pub(super) struct Module {
    pub(super) file: usize,
    pub(super) scope: Vec<String>,
    pub(super) parent: Option<usize>,
    pub(super) children: BTreeMap<String, usize>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    /// A `use` or a path in code: the file needs the target.
    Needs,
    /// A `pub use`: the file hands the target's item on.
    ReExports,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Site {
    pub(super) line: usize,
    pub(super) kind: Kind,
    pub(super) test: bool,
}

pub(super) struct Crate {
    pub(super) files: Vec<File>,
    pub(super) modules: Vec<Module>,
    pub(super) lib_root: usize,
    /// `(file, scope)` → module.
    pub(super) scopes: HashMap<(usize, Vec<String>), usize>,
    /// `from file → to file` with every place that makes the arrow.
    pub(super) arrows: BTreeMap<(usize, usize), BTreeSet<Site>>,
    /// `#[path]` attributes met while building the tree: `(file, line)`.
    pub(super) path_attrs: Vec<(usize, usize)>,
}

impl Crate {
    pub(super) fn load(src: &Path) -> Crate {
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
    pub(super) fn load_file(
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

    pub(super) fn add_module(
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

    pub(super) fn resolve_arrows(&mut self) {
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
    pub(super) fn resolve(&self, from: usize, path: &[String], hops: usize) -> Option<usize> {
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
    pub(super) fn imported(&self, module: usize, name: &str) -> Option<&[String]> {
        let m = &self.modules[module];
        self.files[m.file]
            .scan
            .uses
            .iter()
            .find(|u| u.scope == m.scope && u.name == name)
            .map(|u| u.path.as_slice())
    }

    // --- the rules ---

    pub(super) fn convention_breaks(&self, src: &Path) -> Vec<String> {
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

    pub(super) fn cycles(&self) -> Vec<String> {
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
    pub(super) fn is_below(&self, file: usize, owner: usize) -> bool {
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

    pub(super) fn layer_breaks(&self) -> Vec<String> {
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

pub(super) fn slashed(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Every `.rs` file under `dir`, relative to it, sorted.
pub(super) fn rust_files(dir: &Path) -> Vec<String> {
    pub(super) fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
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
pub(super) fn strongly_connected(
    n: usize,
    arrows: &BTreeMap<usize, Vec<usize>>,
) -> Vec<Vec<usize>> {
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
