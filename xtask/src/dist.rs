//! `cargo xtask dist`: the tracker, its npm package and the demo site, into `dist/`; then
//! the dashboard (`crate::dashboard`) into `dist/dashboard/`.
//!
//! ```text
//! sdk-wasm ──cargo build (wasm-release)──▶ .wasm ──wasm-bindgen --target bundler──▶ npm/build/wasm/
//!          ──wasm-opt -Oz──▶ footfall.wasm
//! npm/src/{index,script}.js + glue ──esbuild──▶ npm/dist/index.js (ESM), footfall.script.js (IIFE)
//! ```
//! Outputs: `dist/tracker/footfall.{js,wasm}` (served at `/footfall.js`, `/footfall.wasm`),
//! `dist/demo/` (served at `/demo/`), `dist/npm/footfall-<version>.tgz` (`npm pack`).
//!
//! Reproducible: the wasm-bindgen CLI must be exactly the version in Cargo.lock, wasm-opt,
//! esbuild and terser come pinned from `npm/package-lock.json`. It prints the gzip size of every
//! artefact and fails when what a visitor downloads (script + wasm) passes the budget.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context};

use crate::{cargo, root, run as sh};

/// What a visitor may download, JS + wasm, gzip: issue 7 requires at most 12 KB (aim: 8).
const BUDGET_GZIP: usize = 12 * 1024;

/// Features rustc 1.95 emits for wasm32 that wasm-opt must be told about.
pub(crate) const WASM_FEATURES: &[&str] = &[
    "--enable-bulk-memory",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-reference-types",
    "--enable-multivalue",
    "--enable-mutable-globals",
];

/// `npm/node_modules/.bin`, after `npm ci` if any of `tools` is missing there.
pub(crate) fn npm_tools(npm: &Path, tools: &[&str]) -> anyhow::Result<PathBuf> {
    let bin = npm.join("node_modules/.bin");
    if tools.iter().any(|t| !bin.join(t).is_file()) {
        sh(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(npm))?;
    }
    Ok(bin)
}

/// Builds `package` for wasm32 with the `wasm-release` profile; the path of `artefact`.
pub(crate) fn build_wasm(root: &Path, package: &str, artefact: &str) -> anyhow::Result<PathBuf> {
    sh(cargo().args([
        "build",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        "wasm-release",
        "-p",
        package,
    ]))?;
    Ok(target_dir(root)
        .join("wasm32-unknown-unknown/wasm-release")
        .join(artefact))
}

pub fn run(_args: &[String]) -> anyhow::Result<()> {
    let root = root();
    let npm = root.join("npm");
    let tools = npm_tools(&npm, &["wasm-opt", "esbuild", "terser"])?;
    check_wasm_bindgen(&root)?;
    let raw = build_wasm(&root, "footfall-sdk-wasm", "footfall_sdk_wasm.wasm")?;

    let glue = npm.join("build/wasm");
    let out = npm.join("dist");
    clean(&glue)?;
    clean(&out)?;
    sh(Command::new("wasm-bindgen")
        .args([
            // The bundler target's `footfall_bg.js` holds just the import/export shims;
            // npm/src/load.js instantiates the wasm with it in a few lines, instead of the
            // web target's general-purpose loader (~0.7 KB gzip more).
            "--target",
            "bundler",
            "--no-typescript",
            "--out-name",
            "footfall",
        ])
        // TextEncoder.encodeInto is in every browser the tracker targets.
        .args(["--encode-into", "always"])
        .arg("--out-dir")
        .arg(&glue)
        .arg(&raw))?;
    sh(Command::new(tools.join("wasm-opt"))
        // Restructuring the control flow first (flatten + rereloop) lets -Oz shrink it
        // further: ~110 bytes gzip on this module, measured.
        .args([
            "--flatten",
            "--rereloop",
            "-Oz",
            "-Oz",
            "--converge",
            "--low-memory-unused",
        ])
        // Sections no browser reads (wasm-bindgen needed target_features, already run).
        .args([
            "--strip-debug",
            "--strip-producers",
            "--strip-target-features",
        ])
        .args(WASM_FEATURES)
        .arg(glue.join("footfall_bg.wasm"))
        .arg("-o")
        .arg(out.join("footfall.wasm")))?;
    // esbuild bundles; terser then squeezes the result further (~100 bytes gzip, which the
    // budget needs): several compress passes and top-level name mangling.
    let bundle = |entry: &str, format: &str, outfile: &str| -> anyhow::Result<()> {
        let file = out.join(outfile);
        sh(Command::new(tools.join("esbuild"))
            .arg(npm.join("src").join(entry))
            .args([
                "--bundle",
                "--minify",
                "--target=es2020",
                "--log-level=warning",
            ])
            .arg(format!("--format={format}"))
            .arg(format!("--outfile={}", file.display())))?;
        let mut terser = Command::new(tools.join("terser"));
        // pure_getters: the shell's property reads (location.href, ...) have no side effects.
        terser
            .arg(&file)
            .args(["--compress", "passes=3,pure_getters=true", "--mangle"]);
        terser.arg(if format == "esm" {
            "--module"
        } else {
            "--toplevel"
        });
        sh(terser.arg("--output").arg(&file))
    };
    bundle("index.js", "esm", "index.js")?;
    bundle("script.js", "iife", "footfall.script.js")?;

    // What the footfall binary serves.
    let dist = root.join("dist");
    let tracker = dist.join("tracker");
    clean(&tracker)?;
    fs::copy(out.join("footfall.script.js"), tracker.join("footfall.js"))?;
    fs::copy(out.join("footfall.wasm"), tracker.join("footfall.wasm"))?;
    let demo = dist.join("demo");
    clean(&demo)?;
    copy_dir(&root.join("demo"), &demo)?;
    let packed = dist.join("npm");
    clean(&packed)?;
    sh(Command::new("npm")
        .args(["pack", "--silent", "--pack-destination"])
        .arg(&packed)
        .current_dir(&npm))?;

    report(&[
        (
            "tracker/footfall.js (script tag)",
            tracker.join("footfall.js"),
        ),
        ("tracker/footfall.wasm", tracker.join("footfall.wasm")),
        ("npm dist/index.js (ESM)", out.join("index.js")),
    ])?;
    crate::dashboard::build()
}

/// wasm-bindgen's CLI and library must be the same version, or the glue does not match.
pub(crate) fn check_wasm_bindgen(root: &Path) -> anyhow::Result<()> {
    let lock = fs::read_to_string(root.join("Cargo.lock")).context("reading Cargo.lock")?;
    let locked = lock
        .split("[[package]]")
        .find(|p| p.contains("\nname = \"wasm-bindgen\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"').to_string())
        .context("wasm-bindgen is not in Cargo.lock")?;
    let out = Command::new("wasm-bindgen").arg("--version").output();
    let installed = out
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if !installed.ends_with(&locked) {
        bail!(
            "wasm-bindgen CLI is {installed:?}, Cargo.lock has {locked}: \
             run .ci/install-wasm.sh (or `cargo install wasm-bindgen-cli --version {locked}`)"
        );
    }
    Ok(())
}

pub(crate) fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_relative() { root.join(p) } else { p })
        .unwrap_or_else(|| root.join("target"))
}

pub(crate) fn clean(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            fs::create_dir_all(&dest)?;
            copy_dir(&entry.path(), &dest)?;
        } else {
            fs::copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}

pub(crate) fn gzip_len(bytes: &[u8]) -> anyhow::Result<usize> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes)?;
    Ok(gz.finish()?.len())
}

/// Prints the size table and enforces the budget on the script-tag download.
fn report(files: &[(&str, PathBuf)]) -> anyhow::Result<()> {
    let mut sizes = Vec::new();
    println!("\n{:<34} {:>9} {:>9}", "artefact", "bytes", "gzip");
    for (name, path) in files {
        let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let gz = gzip_len(&bytes)?;
        println!("{name:<34} {:>9} {:>9}", bytes.len(), gz);
        sizes.push(gz);
    }
    let visitor = sizes[0] + sizes[1];
    let npm = sizes[2] + sizes[1];
    let worst = visitor.max(npm);
    println!("{:<34} {:>9} {:>9}", "script tag: js + wasm", "", visitor);
    println!("{:<34} {:>9} {:>9}", "npm: js + wasm", "", npm);
    println!(
        "budget {BUDGET_GZIP} B gzip: {}",
        if worst <= BUDGET_GZIP { "ok" } else { "OVER" }
    );
    ensure!(
        worst <= BUDGET_GZIP,
        "the tracker is {worst} B gzip, over the {BUDGET_GZIP} B budget"
    );
    Ok(())
}
