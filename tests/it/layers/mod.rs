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

mod graph;
mod lex;
mod scan;

use graph::*;
use lex::*;
use scan::*;

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
        &["app", "http", "reload", "scene_feeds", "embedded", "terms"],
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
        "{} architecture findings (rules: tests/it/layers/mod.rs):\n{}",
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
