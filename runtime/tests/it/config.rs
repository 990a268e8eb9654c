//! Configuration: budgets read from the environment files, config-file precedence.

use manga_runtime::config::{read_budgets_from_environment_file, Cli};
use sizing::LatencyBudgets;
use std::ffi::OsString;
use std::path::PathBuf;

fn environments() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../environments")
}

fn temp_file(name: &str, body: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("manga-runtime-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write temp file");
    p
}

#[test]
fn repository_environment_files_carry_the_seed_budgets() {
    for env in ["dev", "staging", "prod", "tokyo"] {
        let path = environments().join(format!("{env}.yaml"));
        let b = read_budgets_from_environment_file(&path).unwrap_or_else(|e| panic!("{env}: {e}"));
        assert_eq!(
            b,
            LatencyBudgets::SEED,
            "{env}.yaml targets.latency_ms differ from the seed values"
        );
    }
}

#[test]
fn budgets_follow_the_file_through_mangactls_parser() {
    let dev = std::fs::read_to_string(environments().join("dev.yaml")).expect("dev.yaml");
    let yaml = dev
        .replace("memory_read: 10", "memory_read: 5")
        .replace("retrieval: 200", "retrieval: 150")
        .replace("first_token: 400", "first_token: 300")
        .replace("end_to_end_p95: 2000", "end_to_end_p95: 1500");
    // The environment name must match the file name, as mangactl requires.
    let write = |tag: &str, body: &str| {
        let dir =
            std::env::temp_dir().join(format!("manga-runtime-it-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let p = dir.join("dev.yaml");
        std::fs::write(&p, body).expect("write");
        p
    };
    let b = read_budgets_from_environment_file(&write("ok", &yaml)).expect("parses");
    assert_eq!(
        (b.memory_read, b.retrieval, b.first_token, b.end_to_end_p95),
        (5, 150, 300, 1500)
    );

    let missing = yaml.replace("    first_token: 300\n", "");
    let err =
        read_budgets_from_environment_file(&write("missing", &missing)).expect_err("missing key");
    assert!(
        err.to_string().contains("missing field `first_token`"),
        "{err}"
    );
    let zero = yaml.replace("cache_hit: 2", "cache_hit: 0");
    let err = read_budgets_from_environment_file(&write("zero", &zero)).expect_err("zero budget");
    assert!(
        err.to_string().contains("targets.latency_ms.cache_hit"),
        "{err}"
    );
    // mangactl's rules apply in full: an unknown field is refused here too.
    let typo = yaml.replace("    cache_hit: 2", "    cache_hit: 2\n    cache_hitt: 2");
    let err = read_budgets_from_environment_file(&write("typo", &typo)).expect_err("unknown field");
    assert!(
        err.to_string().contains("unknown field `cache_hitt`"),
        "{err}"
    );
}

#[test]
fn config_file_is_overridden_by_env_and_flags() {
    let file = temp_file(
        "runtime.env",
        "# comment\nMANGA_PORT=9001\nMANGA_HISTORY_TURNS=3\nexport MANGA_RATE_BURST=\"7\"\n",
    );
    let args = |extra: &[&str]| -> Vec<OsString> {
        let mut v: Vec<OsString> = vec![
            "manga-runtime".into(),
            "--config".into(),
            file.clone().into(),
        ];
        v.extend(extra.iter().map(OsString::from));
        v
    };
    let cli = Cli::load_from(args(&[]), |_| None).expect("loads");
    assert_eq!(
        (
            cli.config.port,
            cli.config.history_turns,
            cli.config.rate_burst
        ),
        (9001, 3, 7)
    );
    // A variable set in the environment is not taken from the file; clap then reads the
    // real environment value (env beats default is clap's own rule). Here the closure
    // claims MANGA_PORT is set while the process environment has none, so the built-in
    // default shows through: proof that the file value was not applied.
    let env = |k: &str| (k == "MANGA_PORT").then(|| OsString::from("9002"));
    let cli = Cli::load_from(args(&[]), env).expect("loads");
    assert_eq!(
        (cli.config.port, cli.config.history_turns),
        (8080, 3),
        "env wins over the file, per key"
    );
    assert_eq!(
        Cli::load_from(args(&["--port", "9003"]), |_| None)
            .expect("loads")
            .config
            .port,
        9003,
        "flag beats file"
    );

    let bad = temp_file("bad.env", "MANGA_PORTT=1\n");
    let err = Cli::load_from(
        ["manga-runtime", "--config", bad.to_str().expect("utf8")],
        |_| None,
    )
    .expect_err("typo");
    assert!(
        err.to_string()
            .contains("bad.env:1: unknown setting MANGA_PORTT"),
        "{err}"
    );
}

#[test]
fn defaults_serve_the_issue_2_contract() {
    let cli = Cli::load_from(["manga-runtime"], |_| None).expect("defaults");
    assert_eq!(cli.config.port, 8080);
    assert_eq!(cli.config.budgets().expect("budgets"), LatencyBudgets::SEED);
}

#[test]
fn budgets_json_as_the_task_definition_passes_it() {
    let json = r#"{"end_to_end_p95":1800,"margin":200,"edge":30,"auth":20,"memory_read":8,"intent_rules":50,"intent_ml":150,"cache_hit":2,"service_calls":200,"retrieval":200,"first_token":350,"streaming":985,"guardrails":50,"delivery":50,"stream_jitter":50}"#;
    let cfg = manga_runtime::config::Config::from_args(&["--budgets-json", json]).expect("config");
    let b = cfg.budgets().expect("budgets");
    assert_eq!(
        (b.memory_read, b.first_token, b.end_to_end_p95),
        (8, 350, 1800)
    );
    let bad = manga_runtime::config::Config::from_args(&["--budgets-json", r#"{"edge":30}"#])
        .expect("config");
    assert!(bad
        .budgets()
        .expect_err("incomplete")
        .to_string()
        .contains("missing field"));
    let both = manga_runtime::config::Config::from_args(&[
        "--budgets-json",
        json,
        "--environment-file",
        "x.yaml",
    ]);
    assert!(both.is_err(), "one source of budgets at a time");
}

#[test]
fn emf_is_off_by_default_and_switched_on_by_manga_emf() {
    // Through a config file: clap reads the real process environment, which tests
    // must not change under each other.
    let load = |value: Option<&str>| {
        let mut args: Vec<OsString> = vec!["manga-runtime".into()];
        if let Some(v) = value {
            let file = temp_file(&format!("emf-{v}.env"), &format!("MANGA_EMF={v}\n"));
            args.extend(["--config".into(), file.into()]);
        }
        Cli::load_from(args, |_| None).expect("config").config.emf
    };
    assert!(!load(None));
    assert!(load(Some("true")));
    assert!(load(Some("1")));
    assert!(!load(Some("false")));
}

#[test]
fn aws_family_defaults_to_bedrock() {
    use manga_runtime::config::{Config, LlmBackend};
    let cfg = Config::from_args(&["--backend", "aws"]).expect("config");
    assert_eq!(cfg.llm_backend(), LlmBackend::Bedrock);
    let cfg = Config::from_args(&["--backend", "aws", "--llm", "openai"]).expect("config");
    assert_eq!(cfg.llm_backend(), LlmBackend::Openai);
    assert_eq!(
        Config::from_args(&[]).expect("config").llm_backend(),
        LlmBackend::Extractive
    );
}

#[test]
fn readme_documents_every_environment_variable() {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .expect("README");
    let names = manga_runtime::config::env_var_names();
    assert!(names.len() > 20);
    for name in names {
        assert!(
            readme.contains(&format!("`{name}`")) || readme.contains(&format!("{name}`")),
            "README lacks {name}"
        );
    }
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let c = crate::support::config(&[
        "--auth",
        "hs256",
        "--jwt-secret",
        "s3cr3t-jwt",
        "--openai-api-key",
        "sk-topsecret",
        "--redis-url",
        "rediss://user:p4ssw0rd@cache:6379",
    ]);
    let shown = format!("{c:?}");
    for secret in ["s3cr3t-jwt", "sk-topsecret", "p4ssw0rd"] {
        assert!(!shown.contains(secret), "{secret} leaked: {shown}");
    }
    assert!(shown.contains("Secret(***)"));
    assert_eq!(
        c.jwt_secret.as_ref().map(|s| s.expose()),
        Some("s3cr3t-jwt")
    );
}

#[test]
fn drain_watcher_and_redis_iam_settings_are_checked() {
    let c = crate::support::config(&[]);
    assert_eq!(c.drain_poll_secs, 5);
    assert_eq!(c.target_group_arn, None);
    assert_eq!(c.redis_user, None);
    let c = crate::support::config(&[
        "--target-group-arn",
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/manga/0123456789abcdef",
        "--target-id",
        "10.0.1.23",
        "--drain-poll-secs",
        "2",
        "--redis-user",
        "manga-runtime",
        "--redis-replication-group",
        "manga-cache",
    ]);
    assert_eq!(c.target_id.as_deref(), Some("10.0.1.23"));
    assert_eq!(c.drain_poll_secs, 2);
    assert_eq!(c.redis_replication_group.as_deref(), Some("manga-cache"));
    let err = manga_runtime::config::Config::from_args(&["--redis-user", "manga-runtime"])
        .expect_err("IAM auth without the replication group");
    assert!(
        err.to_string().contains("MANGA_REDIS_REPLICATION_GROUP"),
        "{err}"
    );
    let err = manga_runtime::config::Config::from_args(&["--drain-poll-secs", "0"])
        .expect_err("a zero poll interval");
    assert!(err.to_string().contains("MANGA_DRAIN_POLL_SECS"), "{err}");
}
