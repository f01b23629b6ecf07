//! The standalone-only build: `cargo build --no-default-features -p footfall` must need no
//! cmake and no librdkafka (nor MongoDB's driver). Checked on the dependency graph cargo
//! resolves for that build (`cargo tree`, no compilation), so a dependency that sneaks back
//! in fails here rather than on a user's machine without cmake.

use std::path::Path;
use std::process::Command;

fn tree(args: &[&str]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let out = Command::new(env!("CARGO"))
        .current_dir(root)
        .args([
            "tree",
            "-p",
            "footfall",
            "-e",
            "normal,build",
            "--prefix",
            "none",
        ])
        .args(["--format", "{p}"])
        .args(args)
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn crates(tree: &str) -> Vec<String> {
    tree.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_standalone_build_needs_no_cmake_kafka_or_mongodb() {
    let standalone = crates(&tree(&["--no-default-features"]));
    assert!(standalone.iter().any(|c| c == "rusqlite"), "{standalone:?}");
    for forbidden in ["rdkafka", "rdkafka-sys", "cmake", "mongodb"] {
        assert!(
            !standalone.iter().any(|c| c == forbidden),
            "{forbidden} is in the --no-default-features build"
        );
    }
    // And the default build does have them, so the check above checks something.
    let full = crates(&tree(&[]));
    for needed in ["rdkafka-sys", "cmake", "mongodb"] {
        assert!(
            full.iter().any(|c| c == needed),
            "{needed} missing from the default build"
        );
    }
}

/// Kafka client settings are written once, in `footfall-kafka` (issue 14): no product crate
/// builds a librdkafka configuration of its own. (Tests and benchmarks may: they play other
/// clients.)
#[test]
fn kafka_client_settings_live_in_one_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let mut offenders = Vec::new();
    for krate in ["collector", "processor", "footfall", "http", "protocol"] {
        let mut stack = vec![root.join(krate).join("src")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("read src").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).expect("read source");
                    if text.contains("ClientConfig::new(") || text.contains("\"bootstrap.servers\"")
                    {
                        offenders.push(path.display().to_string());
                    }
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "Kafka client settings outside footfall-kafka: {offenders:?}"
    );
}
