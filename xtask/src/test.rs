//! `cargo xtask test`: every check and test of the project, in the order that fails fastest.
//! It is exactly what CI runs; if it passes locally, CI is green.
//!
//! Each artefact is built once: `dist` builds the tracker and the dashboard (wasm) before
//! `cargo test`, so the debug `footfall` binary the integration tests build already embeds
//! them, and the browser steps start that same binary. Host unit tests of the tracker and
//! the dashboard run inside `cargo test --workspace`; only what needs wasm32 or a browser runs
//! outside it.

use std::process::Command;

use crate::{cargo, root, run as sh};

struct Step {
    name: &'static str,
    run: fn() -> anyhow::Result<()>,
}

const STEPS: &[Step] = &[
    Step {
        name: "install",
        run: install,
    },
    Step {
        name: "fmt",
        run: fmt,
    },
    Step {
        name: "clippy",
        run: clippy,
    },
    Step {
        name: "dist",
        run: dist,
    },
    Step {
        name: "cargo test",
        run: cargo_test,
    },
    Step {
        name: "fuzz smoke",
        run: fuzz_smoke,
    },
    Step {
        name: "tracker wasm",
        run: tracker_wasm,
    },
    Step {
        name: "tracker browser",
        run: tracker_browser,
    },
    Step {
        name: "dashboard browser",
        run: dashboard_browser,
    },
];

/// `cargo xtask test [step ...]`: all steps, or only the named ones.
pub fn run(only: &[String]) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    for step in STEPS {
        if !only.is_empty() && !only.iter().any(|o| o == step.name) {
            continue;
        }
        eprintln!("\n==> {}", step.name);
        if let Err(e) = (step.run)() {
            eprintln!("==> {} FAILED: {e:#}", step.name);
            failed.push(step.name);
        }
    }
    anyhow::ensure!(failed.is_empty(), "failed steps: {}", failed.join(", "));
    eprintln!("\n==> all steps succeeded");
    Ok(())
}

/// Tools and servers the tests need, installed idempotently (skipped when present, or when
/// `FOOTFALL_SKIP_INSTALL=1`).
fn install() -> anyhow::Result<()> {
    if std::env::var_os("FOOTFALL_SKIP_INSTALL").is_some_and(|v| v == "1") {
        return Ok(());
    }
    sh(Command::new("bash")
        .arg(root().join(".ci/install.sh"))
        .current_dir(root()))
}

fn fmt() -> anyhow::Result<()> {
    sh(cargo().args(["fmt", "--all", "--", "--check"]))
}

fn clippy() -> anyhow::Result<()> {
    sh(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The standalone-only build (no Kafka, no MongoDB): its `cfg`s must compile too.
    sh(cargo().args([
        "clippy",
        "-p",
        "footfall",
        "--no-default-features",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The browser edges of the tracker and the dashboard only compile for wasm32.
    for package in ["footfall-sdk-wasm", "footfall-dashboard"] {
        sh(cargo().args([
            "clippy",
            "-p",
            package,
            "--all-targets",
            "--target",
            "wasm32-unknown-unknown",
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    Ok(())
}

/// The tracker, npm package, demo and dashboard into `dist/`, failing over the delivered-size
/// budgets (`cargo xtask dist`).
fn dist() -> anyhow::Result<()> {
    crate::dist::run(&[])
}

fn cargo_test() -> anyhow::Result<()> {
    sh(cargo().args(["test", "--workspace", "--no-fail-fast"]))
}

/// A short run of the batch-decoder fuzz target; longer runs are by hand
/// (`cargo fuzz run batch_decoder`). Needs cargo-fuzz (installed by `.ci/run`).
fn fuzz_smoke() -> anyhow::Result<()> {
    let secs = std::env::var("FOOTFALL_FUZZ_SECS").unwrap_or_else(|_| "30".into());
    let fuzz_dir = root().join("fuzz");
    for target in ["batch_decoder", "event_decoder"] {
        // New inputs go to the (ignored) corpus folder; committed seeds are read-only input.
        let corpus = fuzz_dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus)?;
        let mut cmd = cargo();
        cmd.current_dir(&fuzz_dir)
            // cargo-fuzz passes -Z sanitizer flags; this lets the stable toolchain accept them.
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", "--sanitizer", "none", target])
            .arg(&corpus);
        let seeds = fuzz_dir.join("seeds").join(target);
        if seeds.is_dir() {
            cmd.arg(seeds);
        }
        sh(cmd.arg("--").arg(format!("-max_total_time={secs}")))?;
    }
    Ok(())
}

/// The tracker's browser edge in headless Chromium (`wasm-bindgen-test`).
fn tracker_wasm() -> anyhow::Result<()> {
    let chromedriver =
        std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    sh(cargo().env("CHROMEDRIVER", chromedriver).args([
        "test",
        "-p",
        "footfall-sdk-wasm",
        "--target",
        "wasm32-unknown-unknown",
    ]))
}

/// End to end in Chromium: the tracker against a stand-in collector and the real binary, a
/// page on another origin, behind nginx, the npm package packed and imported.
fn tracker_browser() -> anyhow::Result<()> {
    node_tests("test/", root().join("npm"))
}

/// The dashboard in Chromium against the real `footfall standalone`; screenshots in
/// `artifacts/`.
fn dashboard_browser() -> anyhow::Result<()> {
    node_tests("npm/test-dashboard/", root())
}

/// `node --test` on `dir` with the debug binary `cargo test` built (which embeds `dist/`). A
/// per-test timeout makes a hung browser fail its test instead of the whole run.
fn node_tests(dir: &str, cwd: std::path::PathBuf) -> anyhow::Result<()> {
    // Exactly the build of the `cargo test` step (same packages, so the same unified
    // features): a no-op after it, and the right binary when a browser step runs alone.
    // `cargo build -p footfall` would resolve features differently and rebuild it.
    sh(cargo().args(["test", "--workspace", "--no-run"]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let bin = std::env::var_os("FOOTFALL_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| target.join("debug/footfall"));
    sh(Command::new("node")
        .args(["--test", "--test-timeout=120000", dir])
        .env("FOOTFALL_BIN", bin)
        .current_dir(cwd))
}
