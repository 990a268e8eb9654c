//! The contract between the ECS task definition mangactl renders
//! (`stacks/src/stacks/service.rs`) and this runtime and its image
//! (`runtime/Dockerfile`): every variable the template passes is one the
//! runtime reads, the budgets it passes are the environment's, and port,
//! binary path and health check agree with the Dockerfile.

use std::path::PathBuf;

use manga_runtime::config::{env_var_names, read_budgets_from_json};
use serde_json::Value;
use stacks::render::{render, Format};
use stacks::stacks::service::{CONTAINER_NAME, RUNTIME_BINARY};
use stacks::stacks::{Inputs, StackId};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The runtime container definition of `env`'s rendered service stack.
fn container(env_name: &str) -> (stacks::env::Environment, Value) {
    let env = stacks::env::load(&repo().join(format!("environments/{env_name}.yaml")))
        .expect("environment");
    let plan = sizing::size(&env.sizing_input()).expect("sized");
    let rendered = render(&Inputs::new(&env, &plan), Format::Json).expect("rendered");
    let service = rendered
        .stacks
        .iter()
        .find(|s| s.id == StackId::Service)
        .expect("service stack");
    let template = service.template.to_value();
    let defs =
        template["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"].clone();
    let container = defs
        .as_array()
        .and_then(|d| d.iter().find(|c| c["Name"] == CONTAINER_NAME))
        .cloned()
        .expect("runtime container");
    (env, container)
}

#[test]
fn every_variable_the_task_definition_passes_is_read_by_the_runtime() {
    let known = env_var_names();
    for name in ["dev", "staging", "prod", "tokyo"] {
        let (_, c) = container(name);
        let vars = c["Environment"].as_array().expect("environment list");
        assert!(vars.len() >= 10, "{name}: {vars:?}");
        for v in vars {
            let var = v["Name"].as_str().expect("name");
            // AWS_REGION is the AWS SDK's own variable.
            assert!(
                var == "AWS_REGION" || known.iter().any(|k| k == var),
                "{name}: the runtime does not read `{var}`"
            );
        }
    }
}

#[test]
fn the_budgets_passed_are_the_environment_files() {
    for name in ["dev", "staging", "prod", "tokyo"] {
        let (env, c) = container(name);
        let json = c["Environment"]
            .as_array()
            .and_then(|vars| vars.iter().find(|v| v["Name"] == "MANGA_BUDGETS_JSON"))
            .and_then(|v| v["Value"].as_str())
            .expect("MANGA_BUDGETS_JSON");
        let passed = read_budgets_from_json(json).expect("runtime accepts the budgets");
        assert_eq!(passed, env.targets.latency_ms, "{name}");
    }
}

#[test]
fn port_binary_and_health_check_match_the_dockerfile() {
    let dockerfile =
        std::fs::read_to_string(repo().join("runtime/Dockerfile")).expect("Dockerfile");
    let (_, c) = container("prod");
    let port = c["PortMappings"][0]["ContainerPort"]
        .as_u64()
        .expect("port");
    assert!(
        dockerfile.contains(&format!("EXPOSE {port}")),
        "Dockerfile must expose {port}"
    );
    assert!(
        dockerfile.contains(&format!("MANGA_PORT={port}")),
        "Dockerfile must set MANGA_PORT={port}"
    );
    let cli = manga_runtime::config::Cli::load_from(["manga-runtime"], |_| None).expect("defaults");
    assert_eq!(
        u64::from(cli.config.port),
        port,
        "the runtime's default port"
    );

    assert!(
        dockerfile.contains(&format!("/out/manga-runtime {RUNTIME_BINARY}")),
        "the image installs the binary at {RUNTIME_BINARY}"
    );
    let command: Vec<&str> = c["HealthCheck"]["Command"]
        .as_array()
        .expect("command")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(command, ["CMD", RUNTIME_BINARY, "healthcheck"]);
    assert!(
        dockerfile.contains(&format!("CMD [\"{RUNTIME_BINARY}\", \"healthcheck\"]")),
        "HEALTHCHECK uses the same probe"
    );
    assert_eq!(
        c["ReadonlyRootFilesystem"], true,
        "the runtime writes nothing to disk"
    );
}

#[test]
fn the_dashboard_plots_stages_the_runtime_emits() {
    let emitted: Vec<&str> = manga_runtime::metrics::Stage::MEASURED
        .iter()
        .map(|s| s.key())
        .collect();
    for stage in stacks::stacks::observability::plotted_stages().map(|s| s.key()) {
        assert!(
            emitted.contains(&stage),
            "the dashboard plots `{stage}`, which the runtime never emits ({emitted:?})"
        );
    }
    let (_, c) = container("prod");
    let emf = c["Environment"]
        .as_array()
        .and_then(|v| v.iter().find(|e| e["Name"] == "MANGA_EMF"))
        .map(|e| e["Value"].clone());
    assert_eq!(
        emf,
        Some(Value::from("true")),
        "the deployed runtime must emit the EMF lines the dashboard reads"
    );
}
