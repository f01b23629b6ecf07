//! The tracker, its npm package and the demo site, into `dist/` (the first half of
//! `cargo xtask dist`).
//!
//! ```text
//! sdk-wasm ──cargo build (wasm-release)──▶ .wasm ──wasm-opt -Oz──▶ footfall.wasm
//! npm/src/{index,script}.js ──esbuild──▶ npm/dist/index.js (ESM), footfall.script.js (IIFE)
//! ```
//! Outputs: `dist/tracker/footfall.js` + `footfall-<hash>.wasm` (served at `/footfall.js` and
//! next to it; the script names the wasm by its content hash, so the wasm is cached for a
//! year and the script, cached for an hour, never meets a wasm of another build),
//! `dist/demo/` (served at `/demo/`), `dist/npm/footfall-<version>.tgz` (`npm pack`, whose
//! wasm keeps the plain name `footfall.wasm`: bundlers fingerprint it themselves). Every
//! served file gets its `.br` and `.gz` (`crate::compress`).
//!
//! No wasm-bindgen: the tracker's wasm interface is hand-written (`sdk-wasm/src/web/abi.rs`,
//! `npm/src/load.js`), smaller than the generated glue. Reproducible: wasm-opt, esbuild and
//! terser come pinned from `npm/package-lock.json`. It prints the delivered size
//! of every artefact and fails when what a visitor downloads (script + wasm, brotli — what a
//! browser sending `Accept-Encoding: br, gzip` receives) passes the budget.

use std::fs;
use std::process::Command;

use anyhow::{ensure, Context};

use crate::compress::{precompress, table, Sizes};
use crate::wasm::WASM_FEATURES;
use crate::wasm::{build_wasm, clean, copy_dir, fingerprint, npm_tools};
use crate::{root, run as sh};

/// What a visitor may download, JS + wasm, as delivered (brotli): at most 10 KB (issue 15).
const BUDGET_DELIVERED: usize = 10 * 1024;

pub fn build() -> anyhow::Result<()> {
    let root = root();
    let npm = root.join("npm");
    let tools = npm_tools(&npm, &["wasm-opt", "esbuild", "terser"])?;
    let raw = build_wasm(&root, "footfall-sdk-wasm", "footfall_sdk_wasm.wasm")?;

    let out = npm.join("dist");
    clean(&out)?;
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
        // Sections no browser reads, and the linker's `__heap_base`/`__data_end` exports,
        // which npm/src/load.js does not use.
        .args([
            "--strip-debug",
            "--strip-producers",
            "--strip-target-features",
            "--remove-exports=__*",
        ])
        .args(WASM_FEATURES)
        .arg(&raw)
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

    // What the footfall binary serves: the wasm under its content hash, and the script
    // pointing at that name.
    let dist = root.join("dist");
    let tracker = dist.join("tracker");
    clean(&tracker)?;
    let wasm = fs::read(out.join("footfall.wasm")).context("reading footfall.wasm")?;
    let wasm_name = format!("footfall-{}.wasm", fingerprint(&wasm));
    fs::write(tracker.join(&wasm_name), &wasm)?;
    let script = fs::read_to_string(out.join("footfall.script.js"))?;
    fs::write(tracker.join("footfall.js"), name_wasm(&script, &wasm_name)?)?;
    let demo = dist.join("demo");
    clean(&demo)?;
    copy_dir(&root.join("demo"), &demo)?;
    precompress(&tracker)?;
    precompress(&demo)?;
    let packed = dist.join("npm");
    clean(&packed)?;
    sh(Command::new("npm")
        .args(["pack", "--silent", "--pack-destination"])
        .arg(&packed)
        .current_dir(&npm))?;

    // The npm files are served by the site's own server: measured as it would deliver them.
    let npm_sizes = npm.join("build/sizes");
    clean(&npm_sizes)?;
    for file in ["index.js", "footfall.wasm"] {
        fs::copy(out.join(file), npm_sizes.join(file))?;
    }
    precompress(&npm_sizes)?;
    let wasm_sizes = Sizes::of(&tracker.join(&wasm_name))?;
    report(
        Sizes::of(&tracker.join("footfall.js"))?,
        (wasm_name, wasm_sizes),
        Sizes::of(&npm_sizes.join("index.js"))?,
    )
}

/// The script with the wasm's plain name replaced by its hashed one. The name appears once,
/// as a string literal (`new URL('footfall.wasm', src)` in `npm/src/script.js`); anything
/// else means the bundle changed shape and the replacement would be a guess.
fn name_wasm(script: &str, hashed: &str) -> anyhow::Result<String> {
    let found: Vec<_> = ["\"footfall.wasm\"", "'footfall.wasm'"]
        .iter()
        .filter(|lit| script.contains(**lit))
        .collect();
    let total: usize = found.iter().map(|lit| script.matches(**lit).count()).sum();
    ensure!(
        total == 1,
        "expected the script bundle to name 'footfall.wasm' exactly once, found {total}"
    );
    let lit = found[0];
    let quote = &lit[..1];
    Ok(script.replace(*lit, &format!("{quote}{hashed}{quote}")))
}

/// Prints the size table and enforces the budget on what a visitor downloads.
fn report(script: Sizes, (wasm_name, wasm): (String, Sizes), npm_js: Sizes) -> anyhow::Result<()> {
    let visitor = script.plus(wasm);
    let npm = npm_js.plus(wasm);
    table(
        "tracker (delivered)",
        &[
            ("tracker/footfall.js (script tag)".to_string(), script),
            (format!("tracker/{wasm_name}"), wasm),
            ("npm dist/index.js (ESM)".to_string(), npm_js),
        ],
        &[("script tag: js + wasm", visitor), ("npm: js + wasm", npm)],
    );
    let worst = visitor.br.max(npm.br);
    println!(
        "budget {BUDGET_DELIVERED} B delivered (brotli): {} ({worst} B; gzip-only clients get {} B)",
        if worst <= BUDGET_DELIVERED { "ok" } else { "OVER" },
        visitor.gzip.max(npm.gzip)
    );
    ensure!(
        worst <= BUDGET_DELIVERED,
        "the tracker is {worst} B delivered (brotli), over the {BUDGET_DELIVERED} B budget"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wasm_is_renamed_exactly_once() {
        let hashed = "footfall-0123456789.wasm";
        assert_eq!(
            name_wasm(r#"a(new URL("footfall.wasm",s))"#, hashed).expect("renamed"),
            r#"a(new URL("footfall-0123456789.wasm",s))"#
        );
        assert!(name_wasm("no wasm here", hashed).is_err());
        assert!(name_wasm(r#""footfall.wasm";'footfall.wasm'"#, hashed).is_err());
    }
}
