//! `cargo xtask <task>`: project automation in Rust, so it runs wherever cargo does.
//!
//! Tasks (run with no arguments to list them):
//! - `test`: the whole test suite — exactly what CI runs (`.ci/run` calls it).
//! - `standalone`: build everything and run `footfall standalone` (the README's first command).
//! - `dist`: build the tracker, npm package, demo site and dashboard into `dist/`,
//!   precompressed (brotli, gzip), with delivered sizes checked against their budgets.
//! - `dashboard`: build only the Yew dashboard into `dist/dashboard/`.
//! - `codegen`: regenerate committed generated code (time zone → country table).
//!
//! It is a tool, never a dependency of the product crates.

mod codegen;
mod compress;
mod dashboard;
mod dist;
mod test;
mod tracker;
mod wasm;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const TASKS: &[(&str, &str)] = &[
    ("test", "run every test: fmt, clippy, unit + integration tests, fuzz smoke, tracker & browser tests"),
    ("standalone", "build the assets and the release binary (assets embedded), then run `footfall standalone`"),
    ("dist", "build the tracker, npm package, demo and dashboard into dist/, precompressed (fails over the size budgets)"),
    ("dashboard", "build only the Yew dashboard into dist/dashboard/ (fails over its 250 KB delivered budget)"),
    ("codegen", "regenerate protocol/src/tz_table.rs from the system's IANA tzdata"),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(task) = args.first() else {
        eprintln!("usage: cargo xtask <task>\n\ntasks:");
        for (name, help) in TASKS {
            eprintln!("  {name:<11} {help}");
        }
        return ExitCode::SUCCESS;
    };
    let rest = &args[1..];
    let result = match task.as_str() {
        "test" | "ci" => test::run(rest),
        "standalone" => standalone(rest),
        "dist" => dist::run(rest),
        "dashboard" => dashboard::build(),
        "codegen" => codegen::run(),
        other => Err(anyhow::anyhow!(
            "unknown task {other:?}; run `cargo xtask` for the list"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {task}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The repository root (xtask lives one level below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The cargo that runs us, so `cargo +toolchain xtask` stays on that toolchain.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// Runs a command, echoing it, failing on a non-zero exit.
pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("$ {}", display(cmd));
    let status = cmd
        .status()
        .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", display(cmd)))?;
    anyhow::ensure!(status.success(), "`{}` failed ({status})", display(cmd));
    Ok(())
}

fn display(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|s| s.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn standalone(args: &[String]) -> anyhow::Result<()> {
    let root = root();
    // Build prerequisites only (C toolchain, rdkafka's headers, the wasm toolchain).
    run(Command::new("bash")
        .arg(root.join(".ci/install.sh"))
        .arg("build")
        .current_dir(&root))?;
    dist::run(&[])?;
    run(cargo().args(["build", "--release", "-p", "footfall"]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("release").join("footfall");
    // exec-like: the server runs in the foreground until Ctrl-C.
    run(Command::new(bin)
        .arg("standalone")
        .args(args)
        .current_dir(&root))
}
