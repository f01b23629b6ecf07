//! The deployment files, checked statically (no Docker engine runs in CI): the compose file
//! parses, its shape is right (KRaft, healthchecks, start order, volumes), and every
//! `footfall` flag and `FOOTFALL_*` variable it uses exists in `footfall <sub> --help`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

fn compose() -> Value {
    let text = std::fs::read_to_string(repo().join("docker-compose.yml")).expect("read compose");
    serde_yaml::from_str(&text).expect("docker-compose.yml is valid YAML")
}

fn help(sub: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_footfall"))
        .args([sub, "--help"])
        .output()
        .expect("run footfall --help");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn str_list(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_flag_and_env_var_the_compose_file_uses_exists() {
    let compose = compose();
    let services = compose["services"].as_mapping().expect("services");
    let mut checked = 0;
    for (name, service) in services {
        let command = str_list(&service["command"]);
        let Some(sub) = command.first() else { continue };
        if !["standalone", "collector", "processor"].contains(&sub.as_str()) {
            continue;
        }
        let help = help(sub);
        for flag in command.iter().filter(|a| a.starts_with("--")) {
            let flag = flag.split('=').next().unwrap_or(flag);
            assert!(
                help.contains(&format!("{flag} ")),
                "{name:?}: `footfall {sub}` has no flag {flag}"
            );
        }
        let env = service["environment"]
            .as_mapping()
            .expect("environment map");
        for key in env.keys().filter_map(Value::as_str) {
            assert!(
                key.starts_with("FOOTFALL_"),
                "{name:?}: unexpected variable {key}"
            );
            assert!(
                help.contains(&format!("[env: {key}=")) || help.contains(&format!("[env: {key}]")),
                "{name:?}: `footfall {sub}` does not read {key}"
            );
            checked += 1;
        }
        // Health and start order.
        let test = str_list(&service["healthcheck"]["test"]).join(" ");
        assert!(test.contains("/readyz"), "{name:?} healthcheck: {test}");
        assert_eq!(
            service["depends_on"]["kafka"]["condition"].as_str(),
            Some("service_healthy"),
            "{name:?} must wait for a healthy Kafka"
        );
        assert_eq!(
            service["build"]["dockerfile"].as_str(),
            Some("deploy/Dockerfile")
        );
    }
    assert!(checked >= 10, "too few variables checked: {checked}");
    assert!(services.contains_key("collector") && services.contains_key("processor"));
}

#[test]
fn kafka_runs_in_kraft_mode_and_data_lives_in_volumes() {
    let compose = compose();
    let kafka = &compose["services"]["kafka"];
    assert!(kafka["image"]
        .as_str()
        .is_some_and(|i| i.starts_with("apache/kafka")));
    let roles = kafka["environment"]["KAFKA_PROCESS_ROLES"]
        .as_str()
        .unwrap_or_default();
    assert!(
        roles.contains("controller"),
        "KRaft: the node is its own controller"
    );
    assert!(compose["services"].get("zookeeper").is_none());
    assert!(kafka["healthcheck"]["test"].is_sequence());
    let volumes = compose["volumes"].as_mapping().expect("volumes");
    for v in ["kafka-data", "mongo-data", "processor-data"] {
        assert!(volumes.contains_key(v), "volume {v}");
    }
    assert_eq!(
        compose["services"]["processor"]["depends_on"]["mongo"]["condition"].as_str(),
        Some("service_healthy")
    );
}

#[test]
fn the_dockerfile_is_multi_stage_and_runs_footfall() {
    let text = std::fs::read_to_string(repo().join("deploy/Dockerfile")).expect("Dockerfile");
    let stages = text.lines().filter(|l| l.starts_with("FROM ")).count();
    assert!(stages >= 2, "multi-stage build");
    assert!(text.contains("ENTRYPOINT [\"footfall\"]"));
    assert!(text.contains("-p footfall"));
    assert!(text.contains("USER footfall"), "runs as non-root");
    assert!(repo().join("deploy/nginx.conf").is_file());
}
