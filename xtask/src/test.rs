//! `cargo xtask test`: every check and test of the project, in the order that fails fastest.
//! It is exactly what CI runs; if it passes locally, CI is green.

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
        name: "cargo test",
        run: cargo_test,
    },
    Step {
        name: "fuzz smoke",
        run: fuzz_smoke,
    },
    Step {
        name: "tracker",
        run: tracker,
    },
    Step {
        name: "dashboard",
        run: dashboard,
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
    ]))
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

/// The tracker's own suite: size budget, unit tests, wasm tests and browser end-to-end tests.
fn tracker() -> anyhow::Result<()> {
    let script = root().join(".ci/test-tracker.sh");
    anyhow::ensure!(script.is_file(), "{} is missing", script.display());
    sh(Command::new("bash").arg(script).current_dir(root()))
}

/// The dashboard's suite: unit tests, wasm32 clippy, size budget, browser end-to-end tests
/// against `footfall standalone`.
fn dashboard() -> anyhow::Result<()> {
    let script = root().join(".ci/test-dashboard.sh");
    anyhow::ensure!(script.is_file(), "{} is missing", script.display());
    sh(Command::new("bash").arg(script).current_dir(root()))
}
