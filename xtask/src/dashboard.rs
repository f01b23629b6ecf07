//! `cargo xtask dashboard` (also the last step of `cargo xtask dist`): the Yew dashboard
//! into `dist/dashboard/`, which the processor serves at `/dashboard/`.
//!
//! ```text
//! dashboard-yew ──cargo build (wasm-release)──▶ .wasm ──wasm-bindgen --target web──▶ glue
//!   ──wasm-opt -Oz──▶ dashboard-<hash>.wasm      glue ──esbuild --minify──▶ dashboard-<hash>.js
//! dashboard-yew/index.html (template) ──names filled in──▶ index.html
//! ```
//! The two big files carry a content hash in their names, so the server may cache them for a
//! year while `index.html` (never cached) always points at the current pair. Same tools and
//! versions as the tracker (`crate::dist`). Fails when wasm + JS pass the gzip budget.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context};

use crate::dist::{
    build_wasm, check_wasm_bindgen, clean, gzip_len, npm_tools, target_dir, WASM_FEATURES,
};
use crate::{root, run as sh};

/// What the dashboard may download (wasm + JS glue), gzip: the issue's budget.
const BUDGET_GZIP: usize = 250 * 1024;

pub fn build() -> anyhow::Result<()> {
    let root = root();
    let npm = root.join("npm");
    let tools = npm_tools(&npm, &["wasm-opt", "esbuild"])?;
    check_wasm_bindgen(&root)?;
    let raw = build_wasm(&root, "footfall-dashboard", "footfall-dashboard.wasm")?;
    let target = target_dir(&root);
    let glue = target.join("dashboard-bindgen");
    clean(&glue)?;
    sh(Command::new("wasm-bindgen")
        .args([
            "--target",
            "web",
            "--no-typescript",
            "--out-name",
            "dashboard",
        ])
        .arg("--out-dir")
        .arg(&glue)
        .arg(&raw))?;
    let wasm_opt = glue.join("dashboard.opt.wasm");
    sh(Command::new(tools.join("wasm-opt"))
        .args(["-Oz", "--strip-debug", "--strip-producers"])
        .args(WASM_FEATURES)
        .arg(glue.join("dashboard_bg.wasm"))
        .arg("-o")
        .arg(&wasm_opt))?;
    let js_min = glue.join("dashboard.min.js");
    sh(Command::new(tools.join("esbuild"))
        .arg(glue.join("dashboard.js"))
        .args([
            "--minify",
            "--format=esm",
            "--target=es2020",
            "--log-level=warning",
        ])
        // index.html always passes the wasm URL; the glue's import.meta.url fallback is unused.
        .arg("--log-override:empty-import-meta=silent")
        .arg(format!("--outfile={}", js_min.display())))?;

    let out = root.join("dist/dashboard");
    clean(&out)?;
    let wasm = fs::read(&wasm_opt).context("reading optimised wasm")?;
    let js = fs::read(&js_min).context("reading minified glue")?;
    let wasm_name = format!("dashboard-{}.wasm", fingerprint(&wasm));
    let js_name = format!("dashboard-{}.js", fingerprint(&js));
    fs::write(out.join(&wasm_name), &wasm)?;
    fs::write(out.join(&js_name), &js)?;
    let template = fs::read_to_string(root.join("dashboard-yew/index.html"))
        .context("reading dashboard-yew/index.html")?;
    let html = template
        .replace("__JS__", &js_name)
        .replace("__WASM__", &wasm_name);
    fs::write(out.join("index.html"), &html)?;

    report(&out, &[&js_name, &wasm_name, "index.html"])
}

/// First 10 hex digits of FNV-1a/64: enough to tell builds apart in a file name.
fn fingerprint(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")[..10].to_string()
}

fn report(dir: &Path, files: &[&str]) -> anyhow::Result<()> {
    println!(
        "\n{:<34} {:>9} {:>9}",
        "dashboard artefact", "bytes", "gzip"
    );
    let mut gz = Vec::new();
    for name in files {
        let bytes = fs::read(dir.join(name))?;
        let g = gzip_len(&bytes)?;
        println!("{:<34} {:>9} {:>9}", name, bytes.len(), g);
        gz.push(g);
    }
    let app = gz[0] + gz[1];
    println!("{:<34} {:>9} {:>9}", "dashboard: js + wasm", "", app);
    let ok = app <= BUDGET_GZIP;
    println!(
        "budget {} B gzip: {}",
        BUDGET_GZIP,
        if ok { "ok" } else { "OVER" }
    );
    ensure!(
        ok,
        "dashboard is {app} B gzip, over the {BUDGET_GZIP} B budget"
    );
    Ok(())
}
