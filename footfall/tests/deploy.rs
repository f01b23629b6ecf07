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

/// Every document of every manifest under `deploy/k8s/` (multi-document YAML).
fn k8s_documents() -> Vec<(String, Value)> {
    let dir = repo().join("deploy/k8s");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("deploy/k8s")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read manifest");
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Documents are separated by `---` lines (all these files use nothing fancier).
        let mut chunk = String::new();
        for line in text.lines().chain(std::iter::once("---")) {
            if line.trim_end() != "---" {
                chunk.push_str(line);
                chunk.push('\n');
                continue;
            }
            let value: Value = serde_yaml::from_str(&chunk)
                .unwrap_or_else(|e| panic!("{name} is not valid YAML: {e}"));
            if !value.is_null() {
                docs.push((name.clone(), value));
            }
            chunk.clear();
        }
    }
    docs
}

fn of_kind<'a>(docs: &'a [(String, Value)], kind: &str) -> Vec<&'a Value> {
    docs.iter()
        .filter(|(_, d)| d["kind"].as_str() == Some(kind))
        .map(|(_, d)| d)
        .collect()
}

/// The Kubernetes manifests: valid YAML; a collector and a processor Deployment whose every
/// `FOOTFALL_*` variable exists in `footfall <sub> --help` and that set at least what the
/// compose file sets; liveness on /livez, readiness on /readyz, CPU and memory requests; an
/// HPA that scales the collectors; the kustomization lists every manifest.
#[test]
fn kubernetes_manifests_use_real_settings_probes_and_an_hpa() {
    let docs = k8s_documents();
    let compose = compose();
    let mut components = Vec::new();
    for deployment in of_kind(&docs, "Deployment") {
        let name = deployment["metadata"]["name"].as_str().expect("name");
        let containers = deployment["spec"]["template"]["spec"]["containers"]
            .as_sequence()
            .expect("containers");
        for c in containers {
            let args = str_list(&c["args"]);
            let sub = args.first().expect("a footfall subcommand").clone();
            let help = help(&sub);
            for flag in args.iter().filter(|a| a.starts_with("--")) {
                let flag = flag.split('=').next().unwrap_or(flag);
                assert!(help.contains(&format!("{flag} ")), "{name}: no flag {flag}");
            }
            let env: Vec<String> = c["env"]
                .as_sequence()
                .expect("env")
                .iter()
                .filter_map(|e| e["name"].as_str().map(str::to_string))
                .collect();
            for key in &env {
                assert!(
                    key.starts_with("FOOTFALL_"),
                    "{name}: unexpected variable {key}"
                );
                assert!(
                    help.contains(&format!("[env: {key}="))
                        || help.contains(&format!("[env: {key}]")),
                    "{name}: `footfall {sub}` does not read {key}"
                );
            }
            let composed = compose["services"][sub.as_str()]["environment"]
                .as_mapping()
                .expect("the compose file has this service");
            for key in composed.keys().filter_map(Value::as_str) {
                assert!(
                    env.iter().any(|k| k == key),
                    "{name}: {key} of the compose file is missing"
                );
            }
            assert_eq!(
                c["livenessProbe"]["httpGet"]["path"].as_str(),
                Some("/livez"),
                "{name}"
            );
            assert_eq!(
                c["readinessProbe"]["httpGet"]["path"].as_str(),
                Some("/readyz"),
                "{name}"
            );
            for resource in ["cpu", "memory"] {
                assert!(
                    !c["resources"]["requests"][resource].is_null(),
                    "{name}: no {resource} request"
                );
            }
            assert!(
                !c["resources"]["limits"]["memory"].is_null(),
                "{name}: no memory limit"
            );
            components.push(sub);
        }
    }
    components.sort();
    assert_eq!(components, ["collector", "processor"]);

    let hpas = of_kind(&docs, "HorizontalPodAutoscaler");
    assert!(
        hpas.iter()
            .any(
                |h| h["spec"]["scaleTargetRef"]["name"].as_str() == Some("footfall-collector")
                    && h["spec"]["maxReplicas"].as_u64() > h["spec"]["minReplicas"].as_u64()
            ),
        "no HPA scales the collectors"
    );
    let services: Vec<&str> = of_kind(&docs, "Service")
        .iter()
        .filter_map(|s| s["metadata"]["name"].as_str())
        .collect();
    assert!(services.contains(&"footfall-collector") && services.contains(&"footfall-processor"));

    let kustomization: Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo().join("deploy/k8s/kustomization.yaml")).expect("read"),
    )
    .expect("kustomization is valid YAML");
    let listed = str_list(&kustomization["resources"]);
    for (file, _) in &docs {
        if file != "kustomization.yaml" {
            assert!(
                listed.contains(file),
                "kustomization.yaml does not list {file}"
            );
        }
    }
}
