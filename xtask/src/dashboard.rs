//! `cargo xtask dashboard` (also the second half of `cargo xtask dist`): the Yew dashboard
//! into `dist/dashboard/`, which the processor side serves at `/dashboard/`.
//!
//! ```text
//! dashboard-yew ──cargo build (wasm-release)──▶ .wasm ──wasm-bindgen --target web──▶ glue
//!   ──wasm-opt -Oz──▶ dashboard-<hash>.wasm
//!   glue + bootstrap (start.js: init with the wasm's name) ──esbuild --bundle --minify──▶ dashboard-<hash>.js
//! dashboard-yew/index.html (template) ──names filled in──▶ index.html
//! ```
//! The two big files carry a content hash in their names, so the server may cache them for a
//! year while `index.html` (revalidated on every load) always points at the current pair.
//! Same tools and versions as the tracker (`crate::wasm`). Every file gets its `.br` and
//! `.gz`; fails when what a browser downloads (page + JS + wasm, brotli) passes the budget.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context};

use crate::compress::{precompress, table, Sizes};
use crate::wasm::{
    build_wasm, check_wasm_bindgen, clean, fingerprint, npm_tools, target_dir, WASM_FEATURES,
};
use crate::{root, run as sh};

/// What a browser downloads for the dashboard (page + JS + wasm), delivered (brotli).
const BUDGET_DELIVERED: usize = 250 * 1024;

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
    let out = root.join("dist/dashboard");
    clean(&out)?;
    let wasm = fs::read(&wasm_opt).context("reading optimised wasm")?;
    let wasm_name = format!("dashboard-{}.wasm", fingerprint(&wasm));
    fs::write(out.join(&wasm_name), &wasm)?;
    // The bootstrap is bundled into the glue, not inline in index.html, so the dashboard's
    // CSP allows no inline script. The wasm is named relative to the module, whatever page
    // of the single-page app loaded it.
    let start = glue.join("start.js");
    fs::write(
        &start,
        format!(
            "import init from './dashboard.js'\n\
             init({{ module_or_path: new URL('./{wasm_name}', import.meta.url) }}).catch((e) => {{\n\
             \x20 document.body.textContent = 'The dashboard could not start: ' + e\n\
             }})\n"
        ),
    )?;
    let js_min = glue.join("dashboard.min.js");
    sh(Command::new(tools.join("esbuild"))
        .arg(&start)
        .args([
            "--bundle",
            "--minify",
            "--format=esm",
            "--target=es2020",
            "--log-level=warning",
        ])
        // The bootstrap always passes the wasm URL; the glue's import.meta.url fallback is unused.
        .arg("--log-override:empty-import-meta=silent")
        .arg(format!("--outfile={}", js_min.display())))?;
    let js = fs::read(&js_min).context("reading minified glue")?;
    let js_name = format!("dashboard-{}.js", fingerprint(&js));
    fs::write(out.join(&js_name), &js)?;
    let template = fs::read_to_string(root.join("dashboard-yew/index.html"))
        .context("reading dashboard-yew/index.html")?;
    let html = template
        .replace("__JS__", &js_name)
        .replace("__WASM__", &wasm_name);
    fs::write(out.join("index.html"), &html)?;
    precompress(&out)?;

    report(&out, &["index.html", &js_name, &wasm_name])
}

fn report(dir: &Path, files: &[&str]) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    let mut total = Sizes::default();
    for name in files {
        let sizes = Sizes::of(&dir.join(name))?;
        total = total.plus(sizes);
        rows.push((format!("dashboard/{name}"), sizes));
    }
    table(
        "dashboard (delivered)",
        &rows,
        &[("dashboard: page + js + wasm", total)],
    );
    let ok = total.br <= BUDGET_DELIVERED;
    println!(
        "budget {BUDGET_DELIVERED} B delivered (brotli): {} ({} B; gzip-only clients get {} B)",
        if ok { "ok" } else { "OVER" },
        total.br,
        total.gzip
    );
    ensure!(
        ok,
        "the dashboard is {} B delivered (brotli), over the {BUDGET_DELIVERED} B budget",
        total.br
    );
    Ok(())
}
