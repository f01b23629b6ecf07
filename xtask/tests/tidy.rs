//! Tidy checks: the rules of `docs/ARCHITECTURE.md` that a machine can hold, run by
//! `cargo test` (so by CI) like rust-analyzer's tidy tests.
//!
//! - **Crate layering**, read from `cargo metadata`: which workspace crate may depend on which,
//!   and where server-only and Kafka/MongoDB/SQLite crates may appear.
//! - **No module cycles**: inside every crate, the modules under one parent form a DAG. A
//!   cycle (`store` uses `history`, which uses `store`) means neither can change or be
//!   understood alone; the fix is to move the shared piece down, not to live with it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use syn::visit::Visit;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ has a parent")
        .to_path_buf()
}

// ---------------------------------------------------------------------------------------------
// Crate layering

/// One dependency edge as `cargo metadata` states it.
#[derive(Debug)]
struct Dep {
    name: String,
    /// `normal`, `dev` or `build`.
    kind: String,
    optional: bool,
    features: Vec<String>,
    default_features: bool,
}

fn workspace_deps() -> BTreeMap<String, Vec<Dep>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata is JSON");
    let mut crates = BTreeMap::new();
    for package in meta["packages"].as_array().expect("packages") {
        let name = package["name"].as_str().expect("name").to_string();
        let deps = package["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .map(|d| Dep {
                name: d["name"].as_str().expect("dep name").to_string(),
                kind: d["kind"].as_str().unwrap_or("normal").to_string(),
                optional: d["optional"].as_bool().unwrap_or(false),
                features: d["features"]
                    .as_array()
                    .map(|f| {
                        f.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
                default_features: d["uses_default_features"].as_bool().unwrap_or(true),
            })
            .collect();
        crates.insert(name, deps);
    }
    crates
}

const PROTOCOL: &str = "footfall-protocol";
const HTTP: &str = "footfall-http";
const COLLECTOR: &str = "footfall-collector";
const PROCESSOR: &str = "footfall-processor";
const BINARY: &str = "footfall";
const TRACKER: &str = "footfall-sdk-wasm";
const DASHBOARD: &str = "footfall-dashboard";
/// Kafka client settings per role, shared by the collector and the processor.
const KAFKA: &str = "footfall-kafka";
/// Tools: never a dependency of anything.
const TOOLS: &[&str] = &["xtask", "footfall-bench"];
/// What only a server may link: async runtime, HTTP server, WebSockets, stores, Kafka.
const SERVER_ONLY: &[&str] = &[
    "tokio",
    "hyper",
    "hyper-util",
    "fastwebsockets",
    "rdkafka",
    "mongodb",
    "rusqlite",
];
/// Crates whose types must stay inside the module implementing the sink, source or store.
const BACKENDS: &[&str] = &["rdkafka", "mongodb"];

/// Every rule broken by `crates`, as sentences naming the rule from docs/ARCHITECTURE.md.
fn layering_violations(crates: &BTreeMap<String, Vec<Dep>>) -> Vec<String> {
    let ours: BTreeSet<&str> = crates.keys().map(String::as_str).collect();
    let mut broken = Vec::new();
    for (krate, deps) in crates {
        let runtime = deps.iter().filter(|d| d.kind != "dev");
        for dep in runtime {
            let d = dep.name.as_str();
            let mut rule = |why: &str| broken.push(format!("{krate} → {d}: {why}"));
            if TOOLS.contains(&d) {
                rule("tools (xtask, bench) are never dependencies");
            }
            if d == BINARY {
                rule("the binary composes the parts; nothing depends on it");
            }
            match krate.as_str() {
                PROTOCOL if ours.contains(d) => {
                    rule("protocol depends on no other workspace crate");
                }
                PROTOCOL if SERVER_ONLY.contains(&d) => {
                    rule("protocol depends on nothing server-only (it is shared with wasm)");
                }
                HTTP if ours.contains(d) && d != PROTOCOL => {
                    rule("the HTTP crate knows only protocol: no events, sinks or stores");
                }
                HTTP if BACKENDS.contains(&d) || d == "rusqlite" => {
                    rule("the HTTP crate knows no store or queue");
                }
                KAFKA if ours.contains(d) => {
                    rule("footfall-kafka holds Kafka client settings only: no workspace crate");
                }
                KAFKA if d == "mongodb" || d == "rusqlite" => {
                    rule("footfall-kafka knows Kafka only");
                }
                COLLECTOR if d == PROCESSOR => rule("the collector never depends on the processor"),
                PROCESSOR if d == COLLECTOR => rule("the processor never depends on the collector"),
                TRACKER | DASHBOARD if ours.contains(d) && d != PROTOCOL => {
                    rule("browser code depends on no server crate");
                }
                TRACKER | DASHBOARD if SERVER_ONLY.contains(&d) => {
                    rule("browser code links nothing server-only");
                }
                DASHBOARD if d == PROTOCOL && (dep.default_features || has_enrich(dep)) => {
                    rule("the dashboard takes protocol's serde types only (default-features = false, no `enrich`)");
                }
                _ => {}
            }
            if (BACKENDS.contains(&d) || d == KAFKA)
                && (krate == COLLECTOR || krate == PROCESSOR)
                && !dep.optional
            {
                rule("Kafka and MongoDB are behind cargo features, so a standalone build links neither");
            }
            let kafka_settings = krate == KAFKA && d == "rdkafka";
            if BACKENDS.contains(&d)
                && !kafka_settings
                && ![COLLECTOR, PROCESSOR, "footfall-bench"].contains(&krate.as_str())
            {
                rule("Kafka and MongoDB clients live only in the collector's and processor's backend modules");
            }
        }
    }
    broken
}

fn has_enrich(dep: &Dep) -> bool {
    dep.features.iter().any(|f| f == "enrich")
}

#[test]
fn crates_keep_the_layering_of_architecture_md() {
    let crates = workspace_deps();
    for name in [
        PROTOCOL, HTTP, COLLECTOR, PROCESSOR, BINARY, TRACKER, DASHBOARD,
    ] {
        assert!(
            crates.contains_key(name),
            "workspace crate {name} is missing"
        );
    }
    let broken = layering_violations(&crates);
    assert!(
        broken.is_empty(),
        "dependency rules of docs/ARCHITECTURE.md broken:\n  {}",
        broken.join("\n  ")
    );
}

/// The check itself catches what it is for: a forbidden edge added to the real metadata.
#[test]
fn the_layering_check_catches_a_forbidden_dependency() {
    let mut crates = workspace_deps();
    let edge = |name: &str| Dep {
        name: name.into(),
        kind: "normal".into(),
        optional: false,
        features: Vec::new(),
        default_features: true,
    };
    crates
        .get_mut(PROTOCOL)
        .expect("protocol")
        .push(edge("tokio"));
    crates
        .get_mut(COLLECTOR)
        .expect("collector")
        .push(edge(PROCESSOR));
    let broken = layering_violations(&crates);
    assert_eq!(broken.len(), 2, "{broken:#?}");
    assert!(broken[0].contains("footfall-collector → footfall-processor"));
    assert!(broken[1].contains("footfall-protocol → tokio"));
}

// ---------------------------------------------------------------------------------------------
// Module cycles

/// Module path of a source file: `src/lib.rs` → [], `src/a.rs` and `src/a/mod.rs` → [a],
/// `src/a/b.rs` → [a, b].
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("file under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    match last.as_str() {
        "lib.rs" | "main.rs" | "mod.rs" => {}
        other => parts.push(other.trim_end_matches(".rs").to_string()),
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            // `src/bin/*` are other crate roots; they only use the library's public API.
            if path.file_name().is_some_and(|n| n != "bin") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Collects, for one file, every path that names a module of this crate.
struct Refs<'a> {
    /// The module being walked (the file's, plus inline `mod x { .. }` blocks entered).
    here: Vec<String>,
    /// Every module of the crate, to resolve edition-2018 relative `use child::..` paths and
    /// to drop paths that end in items rather than modules.
    modules: &'a BTreeSet<Vec<String>>,
    found: Vec<(Vec<String>, Vec<String>)>,
}

impl Refs<'_> {
    fn resolve(&mut self, segments: &[String]) {
        let Some(first) = segments.first() else {
            return;
        };
        match first.as_str() {
            "crate" => self.record(Vec::new(), &segments[1..]),
            "self" => self.record(self.here.clone(), &segments[1..]),
            "super" => {
                let mut base = self.here.clone();
                let mut rest = segments;
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop();
                    rest = &rest[1..];
                }
                self.record(base, rest);
            }
            _ => {
                // `use child::x` inside a module: a relative path when `child` is a module.
                let mut child = self.here.clone();
                child.push(first.clone());
                if self.modules.contains(&child) {
                    self.record(self.here.clone(), segments);
                }
            }
        }
    }

    fn record(&mut self, mut target: Vec<String>, rest: &[String]) {
        // Keep the longest prefix that is a module: the rest names items.
        for segment in rest {
            target.push(segment.clone());
            if !self.modules.contains(&target) {
                target.pop();
                break;
            }
        }
        self.found.push((self.here.clone(), target));
    }
}

fn flatten_use(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten_use(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let mut path = prefix.clone();
            path.push(n.ident.to_string());
            out.push(path);
        }
        syn::UseTree::Rename(r) => {
            let mut path = prefix.clone();
            path.push(r.ident.to_string());
            out.push(path);
        }
        syn::UseTree::Glob(_) => out.push(prefix.clone()),
        syn::UseTree::Group(g) => {
            for item in &g.items {
                flatten_use(item, prefix, out);
            }
        }
    }
}

impl<'ast> Visit<'ast> for Refs<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        // Test-only code (`#[cfg(test)] fn sample()`) may use any fixture.
        let attrs = match item {
            syn::Item::Fn(i) => &i.attrs,
            syn::Item::Use(i) => &i.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Const(i) => &i.attrs,
            syn::Item::Static(i) => &i.attrs,
            syn::Item::Struct(i) => &i.attrs,
            syn::Item::Enum(i) => &i.attrs,
            _ => return syn::visit::visit_item(self, item),
        };
        if !is_cfg_test(attrs) {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        let mut paths = Vec::new();
        flatten_use(&item.tree, &mut Vec::new(), &mut paths);
        for path in paths {
            self.resolve(&path);
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if segments.len() > 1 {
            self.resolve(&segments);
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if item.content.is_some() && !is_cfg_test(&item.attrs) {
            self.here.push(item.ident.to_string());
            syn::visit::visit_item_mod(self, item);
            self.here.pop();
        }
    }
}

/// Cycles among sibling modules of `src`, each as the modules on it.
fn module_cycles(src: &Path) -> Vec<Vec<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let parsed: Vec<(Vec<String>, syn::File)> = files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).expect("read source");
            let ast = syn::parse_file(&text)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", f.display()));
            (module_path(src, f), ast)
        })
        .collect();
    let mut modules: BTreeSet<Vec<String>> = parsed.iter().map(|(m, _)| m.clone()).collect();
    // Inline modules are modules too; `#[cfg(test)]` ones (inline or in their own file) are
    // left out: tests may use any fixture, which is no dependency of the product code.
    let mut test_modules = BTreeSet::new();
    for (module, ast) in &parsed {
        collect_inline(module, &ast.items, &mut modules, &mut test_modules);
    }
    let parsed: Vec<_> = parsed
        .into_iter()
        .filter(|(m, _)| !test_modules.iter().any(|t| m.starts_with(t)))
        .collect();

    // Sibling edges: a reference from inside `a` to inside `b`, where `a` and `b` share the
    // parent `p`, is the edge `a → b` in the graph of `p`'s children.
    let mut graphs: BTreeMap<Vec<String>, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (module, ast) in &parsed {
        let mut refs = Refs {
            here: module.clone(),
            modules: &modules,
            found: Vec::new(),
        };
        refs.visit_file(ast);
        for (from, to) in refs.found {
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common < from.len() && common < to.len() {
                graphs
                    .entry(from[..common].to_vec())
                    .or_default()
                    .entry(from[common].clone())
                    .or_default()
                    .insert(to[common].clone());
            }
        }
    }
    let mut cycles = Vec::new();
    for (parent, graph) in graphs {
        for scc in strongly_connected(&graph) {
            if scc.len() > 1 {
                cycles.push(
                    scc.into_iter()
                        .map(|m| {
                            let mut p = parent.clone();
                            p.push(m);
                            p.join("::")
                        })
                        .collect(),
                );
            }
        }
    }
    cycles
}

fn collect_inline(
    parent: &[String],
    items: &[syn::Item],
    out: &mut BTreeSet<Vec<String>>,
    tests: &mut BTreeSet<Vec<String>>,
) {
    for item in items {
        if let syn::Item::Mod(m) = item {
            let mut path = parent.to_vec();
            path.push(m.ident.to_string());
            if is_cfg_test(&m.attrs) {
                tests.insert(path.clone());
            }
            if let Some((_, inner)) = &m.content {
                out.insert(path.clone());
                collect_inline(&path, inner, out, tests);
            }
        }
    }
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Meta>()
                .is_ok_and(|m| m.path().is_ident("test"))
    })
}

/// Tarjan's strongly connected components.
fn strongly_connected(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        if let Some(next) = s.graph.get(v) {
            for w in next {
                let w = w.as_str();
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let lw = s.low[w];
                    let lv = s.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if s.on_stack.contains(w) {
                    let iw = s.index[w];
                    let lv = s.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                scc.push(w.to_string());
                if w == v {
                    break;
                }
            }
            scc.sort();
            s.out.push(scc);
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[test]
fn no_module_cycles_in_any_crate() {
    let root = workspace_root();
    let crates = [
        "protocol",
        "http",
        "collector",
        "processor",
        "footfall",
        "sdk-wasm",
        "dashboard-yew",
        "xtask",
        "bench",
    ];
    let mut found = Vec::new();
    for krate in crates {
        for cycle in module_cycles(&root.join(krate).join("src")) {
            found.push(format!("{krate}: {}", cycle.join(" ↔ ")));
        }
    }
    assert!(
        found.is_empty(),
        "module cycles (move the shared piece into a module both can use):\n  {}",
        found.join("\n  ")
    );
}

/// The cycle finder on a made-up crate: `a` uses `b` through `crate::`, `b` uses `a` through
/// `super::`, and a child of `c` using its parent is no cycle.
#[test]
fn the_cycle_check_finds_a_cycle() {
    let dir = std::env::temp_dir().join(format!("footfall-tidy-{}", std::process::id()));
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("c")).expect("mkdir");
    std::fs::write(src.join("lib.rs"), "mod a; mod b; mod c;").expect("write");
    std::fs::write(
        src.join("a.rs"),
        "use crate::b::thing; pub fn f() { thing() }",
    )
    .expect("write");
    std::fs::write(src.join("b.rs"), "pub fn thing() { super::a::f(); }").expect("write");
    std::fs::write(src.join("c/mod.rs"), "mod d; pub struct S;").expect("write");
    std::fs::write(src.join("c/d.rs"), "use super::S; fn g(_: S) {}").expect("write");
    let cycles = module_cycles(&src);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(cycles, vec![vec!["a".to_string(), "b".to_string()]]);
}
