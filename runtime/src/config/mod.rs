//! Runtime configuration: command-line flags and `MANGA_*` environment variables
//! ([`Cli`], [`Config`]), their validation and the settings derived from them
//! ([`Config::llm_backend`], [`Config::missing_aws_settings`], [`Config::is_production`]),
//! and [`env_var_names`], the list of every variable the runtime reads.
//!
//! Precedence: flag > environment variable > config file > built-in default. The config
//! file uses the same `MANGA_*` names as the environment, so one list of names serves the
//! ECS task definition, `docker run -e` and local files alike (12-factor).
//!
//! Neighbours:
//! - `file.rs`: the `--config` / `MANGA_CONFIG` file of `MANGA_NAME=value` lines, overlaid
//!   as defaults by [`Cli::load_from`];
//! - `budgets.rs`: [`read_budgets_from_environment_file`] (an `environments/*.yaml` read
//!   with mangactl's own parser, `stacks::env::load`) and [`read_budgets_from_json`]
//!   (`MANGA_BUDGETS_JSON`), both giving the sizing crate's [`sizing::LatencyBudgets`];
//!   [`Config::budgets`] picks between them.
//!
//! Used by `main.rs` and [`crate::app`].

mod budgets;
mod file;

pub use budgets::{read_budgets_from_environment_file, read_budgets_from_json};

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use serde::Serialize;
use sizing::LatencyBudgets;
use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Cli(#[from] clap::Error),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    ConfigFile {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    EnvironmentFile { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Which backend family serves the traits of [`crate::backends`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendFamily {
    /// In-process implementations over the bundled data (no cloud).
    Embedded,
    /// DynamoDB sessions, ElastiCache Redis cache, SageMaker intent endpoint, OpenSearch
    /// Serverless retrieval, Bedrock LLM ([`crate::backends::aws`]). Start-up refuses it when
    /// a setting it needs is missing rather than silently serving the embedded demo data.
    Aws,
}

/// Every environment variable the runtime reads (from the clap definitions, so it cannot
/// drift), plus `MANGA_LOG` read by the logger and `AWS_REGION`, the one AWS SDK variable
/// the AWS backends need (the SDK's other `AWS_*` variables are its own business). For
/// docs and for checking a task definition against the runtime.
pub fn env_var_names() -> Vec<String> {
    let mut names: Vec<String> = Cli::command()
        .get_arguments()
        .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
        .collect();
    names.push("MANGA_LOG".into());
    names.push("AWS_REGION".into());
    names.sort();
    names
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// No authentication (development only: refused with `MANGA_ENVIRONMENT=prod`, and
    /// unless bound to a loopback address).
    Off,
    /// JWT signed with a shared secret (`MANGA_JWT_SECRET`).
    Hs256,
    /// JWT signed with RSA keys published as a JWKS (`MANGA_JWKS_URL` or `MANGA_JWKS_FILE`).
    Rs256,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LlmBackend {
    /// Grounded extractive responder: composes answers from tool results and passages.
    Extractive,
    /// An OpenAI-compatible server (`/v1/chat/completions`, SSE), e.g. llama.cpp or vLLM.
    Openai,
    /// Amazon Bedrock ConverseStream with `MANGA_BEDROCK_MODEL_ID`.
    Bedrock,
}

/// MangaAssist runtime: serves the chat pipeline over WebSocket at /v1/chat.
///
/// Every option can also be set with the environment variable shown, or in a config file
/// (`--config`) of `MANGA_NAME=value` lines. Precedence: flag > env > config file > default.
#[derive(Debug, Clone, Parser)]
#[command(name = "manga-runtime", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Serve HTTP and WebSocket (the default).
    Serve,
    /// GET /healthz on the configured port; exit 0 when healthy (container health check).
    Healthcheck,
    /// Print the effective configuration, budgets included, as JSON and exit.
    PrintConfig,
    /// Create the OpenSearch index (`MANGA_OPENSEARCH_ENDPOINT`, `MANGA_OPENSEARCH_INDEX`)
    /// and fill it with the catalog and FAQ passages and their embeddings, idempotently;
    /// exit 0 when complete, 3 when some documents could not be written.
    Index,
}

/// Which sentence-embedding model retrieval uses (the index and the queries must agree).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbedderKind {
    /// all-MiniLM-L6-v2 in process (384 dimensions; `MANGA_EMBED_MODEL_DIR`).
    Local,
    /// Amazon Titan Text Embeddings V2 through Bedrock (`MANGA_EMBEDDING_MODEL_ID`).
    Titan,
    /// No embeddings: BM25 alone.
    None,
}

/// A setting that must never be printed (a secret, or a URL that may carry
/// a password): its `Debug` shows `Secret(***)`, so neither a `{:?}` of
/// [`Config`] nor a log line can leak it. [`Secret::expose`] is the one way
/// to the value, at the place that uses it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

/// Settings of the AWS backends (`MANGA_BACKEND=aws`, [`crate::backends::aws`]).
const AWS_HEADING: &str = "AWS backends (MANGA_BACKEND=aws)";

#[derive(Debug, Clone, Args, Serialize)]
pub struct Config {
    /// Config file of MANGA_NAME=value lines (same names as the environment variables).
    #[arg(long = "config", env = "MANGA_CONFIG", value_name = "PATH")]
    pub config_file: Option<PathBuf>,
    /// Address to bind (use 0.0.0.0 in containers).
    #[arg(long, env = "MANGA_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// HTTP/WebSocket port.
    #[arg(long, env = "MANGA_PORT", default_value_t = 8080)]
    pub port: u16,
    /// Environment name (dev, staging, prod, …); `prod`/`production` refuse `--auth off`.
    #[arg(long, env = "MANGA_ENVIRONMENT", default_value = "dev")]
    pub environment: String,
    /// Environment file (environments/NAME.yaml) whose targets.latency_ms are the budgets.
    #[arg(
        long,
        env = "MANGA_ENVIRONMENT_FILE",
        value_name = "PATH",
        conflicts_with = "budgets_json"
    )]
    pub environment_file: Option<PathBuf>,
    /// The budgets as a JSON object with the keys of targets.latency_ms (how the ECS task
    /// definition passes them); alternative to --environment-file.
    #[arg(long, env = "MANGA_BUDGETS_JSON", value_name = "JSON")]
    pub budgets_json: Option<String>,
    /// Backend family for sessions, cache, intent model, retrieval, services and LLM.
    #[arg(long, env = "MANGA_BACKEND", value_enum, default_value_t = BackendFamily::Embedded)]
    pub backend: BackendFamily,
    /// Authentication of WebSocket clients.
    #[arg(long, env = "MANGA_AUTH", value_enum, default_value_t = AuthMode::Off)]
    pub auth: AuthMode,
    /// HS256 shared secret.
    #[arg(long, env = "MANGA_JWT_SECRET", hide_env_values = true)]
    #[serde(skip)]
    pub jwt_secret: Option<Secret>,
    /// JWKS URL for RS256 (fetched at start).
    #[arg(long, env = "MANGA_JWKS_URL")]
    pub jwks_url: Option<String>,
    /// How often the JWKS URL is fetched again (0 = never).
    #[arg(long, env = "MANGA_JWKS_REFRESH_SECS", default_value_t = 900)]
    pub jwks_refresh_secs: u64,
    /// JWKS file for RS256.
    #[arg(long, env = "MANGA_JWKS_FILE", value_name = "PATH")]
    pub jwks_file: Option<PathBuf>,
    /// Required `iss` claim, if set.
    #[arg(long, env = "MANGA_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim, if set.
    #[arg(long, env = "MANGA_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Sustained messages per minute per user (token bucket refill).
    #[arg(long, env = "MANGA_RATE_PER_MINUTE", default_value_t = 30)]
    pub rate_per_minute: u32,
    /// Burst size of the per-user token bucket.
    #[arg(long, env = "MANGA_RATE_BURST", default_value_t = 10)]
    pub rate_burst: u32,
    /// Largest accepted chat message (bytes of the JSON frame); larger ones get
    /// `message_too_large` and the connection stays open.
    #[arg(long, env = "MANGA_MAX_MESSAGE_BYTES", default_value_t = 4096)]
    pub max_message_bytes: usize,
    /// Hard WebSocket frame limit; larger frames close the connection (code 1009).
    #[arg(long, env = "MANGA_MAX_FRAME_BYTES", default_value_t = 65536)]
    pub max_frame_bytes: usize,
    /// Distinct session ids one connection may use.
    #[arg(long, env = "MANGA_MAX_SESSIONS_PER_CONNECTION", default_value_t = 4)]
    pub max_sessions_per_connection: usize,
    /// Concurrent WebSocket connections per process; more get HTTP 503.
    #[arg(long, env = "MANGA_MAX_CONNECTIONS", default_value_t = 10000)]
    pub max_connections: usize,
    /// Concurrent WebSocket connections per user (token subject, or client
    /// address with auth off) per process; more get HTTP 429.
    #[arg(long, env = "MANGA_MAX_CONNECTIONS_PER_USER", default_value_t = 8)]
    pub max_connections_per_user: usize,
    /// Interval of the background backend probes `/readyz` answers from.
    #[arg(long, env = "MANGA_READY_PROBE_SECS", default_value_t = 5)]
    pub ready_probe_secs: u64,
    /// Server WebSocket ping interval; keep it below the ALB idle timeout.
    #[arg(long, env = "MANGA_PING_INTERVAL_SECS", default_value_t = 20)]
    pub ping_interval_secs: u64,
    /// On SIGTERM, how long in-flight streams may take to finish (keep below the ECS
    /// stopTimeout and the target group's deregistration delay).
    #[arg(long, env = "MANGA_DRAIN_TIMEOUT_SECS", default_value_t = 25)]
    pub drain_timeout_secs: u64,
    /// Target group of the task's ALB target: when set, the runtime polls
    /// DescribeTargetHealth for its own target and starts draining as soon as the ALB
    /// does (`draining`), before ECS sends SIGTERM (runtime/README.md, Shutdown).
    #[arg(long, env = "MANGA_TARGET_GROUP_ARN")]
    pub target_group_arn: Option<String>,
    /// The task's own target id (its private IPv4 address) in the target group
    /// [default: read from the ECS task metadata endpoint v4]; the port is MANGA_PORT.
    #[arg(long, env = "MANGA_TARGET_ID")]
    pub target_id: Option<String>,
    /// Interval of the DescribeTargetHealth polls (with MANGA_TARGET_GROUP_ARN).
    #[arg(long, env = "MANGA_DRAIN_POLL_SECS", default_value_t = 5)]
    pub drain_poll_secs: u64,
    /// The ECS task metadata endpoint v4, injected by the ECS agent into every
    /// container; `${URI}/task` gives the task's private IP (MANGA_TARGET_ID overrides).
    #[arg(long, env = "ECS_CONTAINER_METADATA_URI_V4")]
    pub ecs_metadata_uri: Option<String>,
    /// Conversation turns loaded as context.
    #[arg(long, env = "MANGA_HISTORY_TURNS", default_value_t = 6)]
    pub history_turns: usize,
    /// Sessions kept by the in-memory session store (LRU).
    #[arg(long, env = "MANGA_SESSION_CAPACITY", default_value_t = 10000)]
    pub session_capacity: usize,
    /// Idle session lifetime in the in-memory store.
    #[arg(long, env = "MANGA_SESSION_TTL_SECS", default_value_t = 1800)]
    pub session_ttl_secs: u64,
    /// Entries in the in-memory response cache.
    #[arg(long, env = "MANGA_CACHE_CAPACITY", default_value_t = 10000)]
    pub cache_capacity: u64,
    /// Response cache entry lifetime.
    #[arg(long, env = "MANGA_CACHE_TTL_SECS", default_value_t = 600)]
    pub cache_ttl_secs: u64,
    /// Directory with catalog.tsv, faq.tsv and intents/{train,heldout}.tsv; default: the
    /// copies compiled into the binary.
    #[arg(long, env = "MANGA_DATA_DIR", value_name = "PATH")]
    pub data_dir: Option<PathBuf>,
    /// Number of generated orders (MA-100000 upwards) served by the embedded services.
    #[arg(long, env = "MANGA_ORDERS", default_value_t = 1000)]
    pub orders: u32,
    /// Rule-based intent confidence at or above which the ML model is skipped.
    #[arg(long, env = "MANGA_RULES_CONFIDENCE", default_value_t = 0.8)]
    pub rules_confidence: f32,
    /// Response generator [default: extractive; bedrock with MANGA_BACKEND=aws].
    #[arg(long, env = "MANGA_LLM", value_enum)]
    pub llm: Option<LlmBackend>,
    /// Base URL of the OpenAI-compatible server (…/v1).
    #[arg(
        long,
        env = "MANGA_OPENAI_BASE_URL",
        default_value = "http://127.0.0.1:8000/v1"
    )]
    pub openai_base_url: String,
    /// Model name sent to the OpenAI-compatible server.
    #[arg(long, env = "MANGA_OPENAI_MODEL", default_value = "local")]
    pub openai_model: String,
    /// Bearer token for the OpenAI-compatible server, if it needs one.
    #[arg(long, env = "MANGA_OPENAI_API_KEY", hide_env_values = true)]
    #[serde(skip)]
    pub openai_api_key: Option<Secret>,
    /// max_tokens for the OpenAI-compatible server.
    #[arg(long, env = "MANGA_OPENAI_MAX_TOKENS", default_value_t = 400)]
    pub openai_max_tokens: u32,
    /// Pause between words of the extractive responder (0 = as fast as possible; a few
    /// tens of ms make the stream visible in a demo).
    #[arg(long, env = "MANGA_WORD_DELAY_MS", default_value_t = 0)]
    pub word_delay_ms: u64,
    /// Hard cap on one streamed answer; longer streams end with `stream_timeout`
    /// [default: 4 × the `streaming` budget].
    #[arg(long, env = "MANGA_STREAM_MAX_SECS")]
    pub stream_max_secs: Option<u64>,
    /// Deadline of one turn save (the session store write before `done`).
    #[arg(long, env = "MANGA_SAVE_TIMEOUT_MS", default_value_t = 1000)]
    pub save_timeout_ms: u64,
    /// LLM streams this process relays at once; a message that gets no permit
    /// before its first-token deadline is answered with the fallback (`llm_busy`).
    /// The task definition sets sizing's `max_streams_per_task`.
    #[arg(long, env = "MANGA_MAX_LLM_STREAMS", default_value_t = 250)]
    pub max_llm_streams: usize,
    /// Intent-model calls in flight at once; beyond it (until the `intent_ml`
    /// deadline) the rules' best guess is used (`intent_model_skipped`).
    #[arg(long, env = "MANGA_MAX_MODEL_CALLS", default_value_t = 64)]
    pub max_model_calls: usize,
    /// Per-message stage timings as CloudWatch Embedded Metric Format lines on stdout
    /// (namespace MangaAssist, metrics StageLatency and BudgetMiss, dimensions
    /// Environment and Stage); the ECS awslogs driver ships them to CloudWatch.
    #[arg(
        long,
        env = "MANGA_EMF",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new(),
        value_name = "BOOL"
    )]
    pub emf: bool,
    /// LOAD TESTS ONLY: a simulated timing profile (YAML, e.g.
    /// runtime/profiles/claude-3-5-sonnet-bedrock.yaml). Every backend waits as the
    /// profile says and the LLM answer is re-timed to the profile's model; `done`
    /// then carries `simulated_ms`. Never set in a deployment.
    #[arg(long, env = "MANGA_SIMULATE", value_name = "PROFILE")]
    pub simulate: Option<PathBuf>,
    /// How often the per-task gauges (connected sessions, LLM streams in flight) are
    /// written as EMF lines when MANGA_EMF is on: the service scales on them.
    #[arg(long, env = "MANGA_GAUGE_SECS", default_value_t = 10)]
    pub gauge_secs: u64,

    /// DynamoDB conversation table (session store).
    #[arg(long, env = "MANGA_DYNAMODB_TABLE", help_heading = AWS_HEADING)]
    pub dynamodb_table: Option<String>,
    /// DAX cluster discovery endpoint (`daxs://…`) in front of the table: conversation
    /// memory then goes through DAX (mangactl-dax), DynamoDB directly when DAX is
    /// unreachable (runtime/README.md, "Conversation memory on DAX").
    #[arg(long, env = "MANGA_DAX_ENDPOINT", help_heading = AWS_HEADING)]
    pub dax_endpoint: Option<String>,
    /// ElastiCache Redis URL (rediss://host:port) for the response cache.
    #[arg(long, env = "MANGA_REDIS_URL", help_heading = AWS_HEADING, hide_env_values = true)]
    #[serde(skip)] // may carry a password
    pub redis_url: Option<Secret>,
    /// `true`: MANGA_REDIS_URL is the configuration endpoint of a cluster-mode-enabled
    /// group (more than one shard), reached through the Redis cluster client; the
    /// service stack sets it from the cache stack.
    #[arg(
        long,
        env = "MANGA_REDIS_CLUSTER",
        help_heading = AWS_HEADING,
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new(),
        value_name = "BOOL"
    )]
    pub redis_cluster: bool,
    /// ElastiCache user id (== user name) authenticated with IAM: every connection sends
    /// `AUTH <user> <token>` with a fresh SigV4-presigned token (needs
    /// MANGA_REDIS_REPLICATION_GROUP and a rediss:// URL without a password).
    #[arg(long, env = "MANGA_REDIS_USER", help_heading = AWS_HEADING)]
    pub redis_user: Option<String>,
    /// Replication group id of the cache, the host the IAM token is presigned for
    /// (required with MANGA_REDIS_USER).
    #[arg(long, env = "MANGA_REDIS_REPLICATION_GROUP", help_heading = AWS_HEADING)]
    pub redis_replication_group: Option<String>,
    /// Prefix of every response-cache key in Redis (lets environments share a cluster).
    #[arg(
        long,
        env = "MANGA_REDIS_KEY_PREFIX",
        help_heading = AWS_HEADING,
        default_value = "manga:answer:"
    )]
    pub redis_key_prefix: String,
    /// OpenSearch Serverless collection endpoint (retrieval).
    #[arg(long, env = "MANGA_OPENSEARCH_ENDPOINT", help_heading = AWS_HEADING)]
    pub opensearch_endpoint: Option<String>,
    /// OpenSearch index holding the catalog and FAQ passages.
    #[arg(
        long,
        env = "MANGA_OPENSEARCH_INDEX",
        help_heading = AWS_HEADING,
        default_value = "manga-passages"
    )]
    pub opensearch_index: String,
    /// SageMaker endpoint name of the intent classifier.
    #[arg(long, env = "MANGA_SAGEMAKER_ENDPOINT", help_heading = AWS_HEADING)]
    pub sagemaker_endpoint: Option<String>,
    /// Bedrock model id of the LLM.
    #[arg(long, env = "MANGA_BEDROCK_MODEL_ID", help_heading = AWS_HEADING)]
    pub bedrock_model_id: Option<String>,
    /// Per-tier models, `tier=model` comma-separated (`simple_llm=amazon.nova-micro-v1:0`);
    /// a tier not listed answers with MANGA_BEDROCK_MODEL_ID. mangactl's service stack sets
    /// it from the environment file's `llm.tiers`.
    #[arg(long, env = "MANGA_BEDROCK_TIER_MODELS", help_heading = AWS_HEADING)]
    pub bedrock_tier_models: Option<String>,
    /// Embeddings for retrieval and `index`: `titan` is the default with
    /// MANGA_BACKEND=aws, `local` otherwise (BM25 alone when the model is not installed).
    #[arg(long, env = "MANGA_EMBEDDER", value_enum, help_heading = AWS_HEADING)]
    pub embedder: Option<EmbedderKind>,
    /// Bedrock model id of the embeddings (`--embedder titan`).
    #[arg(
        long,
        env = "MANGA_EMBEDDING_MODEL_ID",
        help_heading = AWS_HEADING,
        default_value = "amazon.titan-embed-text-v2:0"
    )]
    pub embedding_model_id: String,
    /// Titan V2 output dimensions: 1024, 512 or 256.
    #[arg(
        long,
        env = "MANGA_EMBEDDING_DIMENSIONS",
        help_heading = AWS_HEADING,
        default_value_t = 1024
    )]
    pub embedding_dimensions: usize,
    /// maxTokens of each Bedrock answer.
    #[arg(
        long,
        env = "MANGA_BEDROCK_MAX_TOKENS",
        help_heading = AWS_HEADING,
        default_value_t = 400
    )]
    pub bedrock_max_tokens: u32,
}

impl Cli {
    /// Parses the process arguments, applying `--config`/`MANGA_CONFIG` as defaults.
    pub fn load() -> Result<Cli, ConfigError> {
        Self::load_from(std::env::args_os(), |k| std::env::var_os(k))
    }

    /// Testable core of [`Cli::load`]: `env` looks up environment variables.
    pub fn load_from<I, T>(
        args: I,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Cli, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let cmd = file::overlay_defaults(Cli::command(), &args, &env)?;
        let matches = cmd.try_get_matches_from(args)?;
        let cli = Cli::from_arg_matches(&matches)?;
        cli.config.validate()?;
        Ok(cli)
    }
}

impl Config {
    /// Parses flags only (no config file, no process environment), for tests and benches.
    pub fn from_args(args: &[&str]) -> Result<Config, ConfigError> {
        let argv = std::iter::once("manga-runtime").chain(args.iter().copied());
        Ok(Cli::load_from(argv, |_| None)?.config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if self.is_production() && self.auth == AuthMode::Off {
            return bad("MANGA_AUTH=off is refused with MANGA_ENVIRONMENT=prod");
        }
        // Without authentication anyone who reaches the port is every
        // customer: only a loopback listener may run that way.
        if self.auth == AuthMode::Off && !self.bind.is_loopback() {
            return bad("MANGA_AUTH=off is refused unless MANGA_BIND is a loopback address (127.0.0.1 or ::1)");
        }
        // Outside dev a token must be this store's: any client of the same
        // identity provider could otherwise sign in as any customer.
        if self.auth != AuthMode::Off
            && self.environment != "dev"
            && (self.jwt_issuer.as_deref().is_none_or(str::is_empty)
                || self.jwt_audience.as_deref().is_none_or(str::is_empty))
        {
            return bad("MANGA_JWT_ISSUER and MANGA_JWT_AUDIENCE are required outside MANGA_ENVIRONMENT=dev");
        }
        if self.auth == AuthMode::Hs256 && self.jwt_secret.as_ref().is_none_or(Secret::is_empty) {
            return bad("MANGA_AUTH=hs256 needs MANGA_JWT_SECRET");
        }
        if self.auth == AuthMode::Rs256 && self.jwks_url.is_none() && self.jwks_file.is_none() {
            return bad("MANGA_AUTH=rs256 needs MANGA_JWKS_URL or MANGA_JWKS_FILE");
        }
        if self.rate_burst == 0 || self.rate_per_minute == 0 {
            return bad("MANGA_RATE_PER_MINUTE and MANGA_RATE_BURST must be > 0");
        }
        if self.max_message_bytes == 0 || self.max_message_bytes > self.max_frame_bytes {
            return bad("MANGA_MAX_MESSAGE_BYTES must be in 1..=MANGA_MAX_FRAME_BYTES");
        }
        if self.max_sessions_per_connection == 0 || self.max_connections == 0 {
            return bad("session and connection limits must be > 0");
        }
        if self.ping_interval_secs == 0 {
            return bad("MANGA_PING_INTERVAL_SECS must be > 0");
        }
        if self.drain_poll_secs == 0 {
            return bad("MANGA_DRAIN_POLL_SECS must be > 0");
        }
        if self.target_group_arn.as_deref().is_some_and(str::is_empty) {
            return bad("MANGA_TARGET_GROUP_ARN must not be empty when set");
        }
        if self.redis_user.as_deref().is_some_and(|u| !u.is_empty())
            && self
                .redis_replication_group
                .as_deref()
                .is_none_or(str::is_empty)
        {
            return bad(
                "MANGA_REDIS_USER (IAM authentication) needs MANGA_REDIS_REPLICATION_GROUP",
            );
        }
        if !(0.0..=1.0).contains(&self.rules_confidence) {
            return bad("MANGA_RULES_CONFIDENCE must be within 0..=1");
        }
        Ok(())
    }

    /// The response generator in force: `MANGA_LLM` when set, else Bedrock for the AWS
    /// family and the extractive responder for the embedded one.
    pub fn llm_backend(&self) -> LlmBackend {
        match (self.llm, self.backend) {
            (Some(l), _) => l,
            (None, BackendFamily::Aws) => LlmBackend::Bedrock,
            (None, BackendFamily::Embedded) => LlmBackend::Extractive,
        }
    }

    /// The embeddings in force: `MANGA_EMBEDDER` when set, else Titan for the AWS family
    /// and the local model for the embedded one.
    pub fn embedder_kind(&self) -> EmbedderKind {
        match (self.embedder, self.backend) {
            (Some(e), _) => e,
            (None, BackendFamily::Aws) => EmbedderKind::Titan,
            (None, BackendFamily::Embedded) => EmbedderKind::Local,
        }
    }

    /// The AWS settings that are required but unset (by variable name), for a start-up
    /// error that names all of them at once.
    pub fn missing_aws_settings(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.backend == BackendFamily::Aws {
            let required = [
                ("MANGA_DYNAMODB_TABLE", &self.dynamodb_table),
                (
                    "MANGA_REDIS_URL",
                    &self.redis_url.clone().map(|s| s.expose().to_owned()),
                ),
                ("MANGA_OPENSEARCH_ENDPOINT", &self.opensearch_endpoint),
                ("MANGA_SAGEMAKER_ENDPOINT", &self.sagemaker_endpoint),
            ];
            for (name, value) in required {
                if value.as_deref().is_none_or(str::is_empty) {
                    missing.push(name);
                }
            }
        }
        if self.llm_backend() == LlmBackend::Bedrock
            && self.bedrock_model_id.as_deref().is_none_or(str::is_empty)
        {
            missing.push("MANGA_BEDROCK_MODEL_ID");
        }
        missing
    }

    pub fn is_production(&self) -> bool {
        sizing::is_production(&self.environment)
    }

    /// The stage budgets: from `MANGA_BUDGETS_JSON` or the environment file when given,
    /// else the seed defaults.
    pub fn budgets(&self) -> Result<LatencyBudgets, ConfigError> {
        match (&self.budgets_json, &self.environment_file) {
            (Some(json), _) => read_budgets_from_json(json),
            (None, Some(path)) => read_budgets_from_environment_file(path),
            (None, None) => Ok(LatencyBudgets::SEED),
        }
    }
}
