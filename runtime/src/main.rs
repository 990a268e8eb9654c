//! `manga-runtime` binary: parses configuration ([`manga_runtime::config`]), sets up
//! logging to stderr, builds the app ([`manga_runtime::app`]) and serves it
//! ([`manga_runtime::server`]) until SIGTERM or Ctrl-C. Also `healthcheck` (for the
//! container HEALTHCHECK, since the final image has no curl), `print-config`, and
//! `index` (fills the OpenSearch index, [`manga_runtime::backends::aws::index`]).

use anyhow::Context as _;
use manga_runtime::app::AppBuilder;
use manga_runtime::config::{Cli, Command, Config, ConfigError};
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = match Cli::load() {
        Ok(cli) => cli,
        // --help and --version are "errors" to clap; let it print and pick the exit code.
        Err(ConfigError::Cli(e)) => e.exit(),
        Err(e) => {
            eprintln!("manga-runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("manga-runtime: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Healthcheck => Ok(healthcheck(&cli.config)),
        Command::PrintConfig => {
            let budgets = cli.config.budgets()?;
            let out = serde_json::json!({
                "config": cli.config,
                "llm_in_force": cli.config.llm_backend(),
                "budgets": budgets,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Index => {
            let _log_writer = init_logging();
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            rt.block_on(index(cli.config))
        }
        Command::Serve => {
            // Kept to the end: dropping it flushes the queued lines.
            let _log_writer = init_logging();
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            rt.block_on(serve(cli.config))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Logs to stderr through a non-blocking writer: lines are queued for a
/// writer thread and dropped (not waited for) when the queue is full, so a
/// stalled log pipe cannot stall the request path. Hot-path warnings are also
/// rate-limited per call site ([`manga_runtime::warn_limited`]).
fn init_logging() -> tracing_appender::non_blocking::WorkerGuard {
    // MANGA_LOG first (documented), RUST_LOG as the usual fallback.
    let filter = EnvFilter::try_from_env("MANGA_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // No colour codes when stderr is not a terminal (CloudWatch, files).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .lossy(true)
        .finish(std::io::stderr());
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(ansi)
        .with_env_filter(filter)
        .init();
    guard
}

/// Lines queued towards stderr before new ones are dropped.
const LOG_QUEUE_LINES: usize = 10_000;

async fn serve(config: Config) -> anyhow::Result<()> {
    let addr = SocketAddr::new(config.bind, config.port);
    // One descriptor per WebSocket: a task holding 10,000 sessions needs
    // more than the usual soft limit of 1,024. Raised to the hard limit.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::info!(open_files = n, "open-file limit"),
        Err(e) => tracing::warn!("open-file limit not raised: {e}"),
    }
    let app = AppBuilder::new(config.clone())
        .build()
        .await
        .context("start-up failed")?;
    let r = &app.report;
    tracing::info!(
        titles = r.catalog_titles,
        faq = r.faq_entries,
        orders = r.orders,
        classifier_heldout_accuracy = r.classifier_heldout.map(|e| e.accuracy()),
        classifier_train_ms = r.classifier_train_ms,
        auth = ?config.auth,
        llm = ?config.llm_backend(),
        emf = config.emf,
        environment = %config.environment,
        backend = ?config.backend,
        drain_watcher = config.target_group_arn.is_some(),
        redis_iam_user = config.redis_user.as_deref(),
        "backends ready"
    );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind {addr}"))?;
    tracing::info!(%addr, "listening: GET /healthz /readyz /metrics, WebSocket /v1/chat");
    manga_runtime::server::serve(listener, app.state, shutdown_signal())
        .await
        .context("server failed")?;
    Ok(())
}

/// An indicatif bar on stderr (hidden when stderr is not a terminal, as in ECS, where
/// the notes and the summary go to the log instead).
struct Bar(indicatif::ProgressBar);

impl manga_runtime::backends::aws::index::Progress for Bar {
    fn start(&self, phase: &str, total: usize) {
        self.0.set_length(total as u64);
        self.0.set_position(0);
        self.0.set_message(phase.to_string());
        tracing::info!(phase, total, "index");
    }
    fn advance(&self, n: usize) {
        self.0.inc(n as u64);
    }
    fn note(&self, message: &str) {
        self.0.suspend(|| tracing::info!("{message}"));
    }
}

async fn index(config: Config) -> anyhow::Result<ExitCode> {
    use manga_runtime::backends::aws::index::{IndexOptions, Indexer};
    use manga_runtime::backends::aws::opensearch::AossClient;
    let endpoint = config
        .opensearch_endpoint
        .clone()
        .filter(|e| !e.is_empty())
        .context("index needs MANGA_OPENSEARCH_ENDPOINT")?;
    let sdk = manga_runtime::backends::aws::load().await;
    let data = manga_runtime::data::DataSet::load(config.data_dir.as_deref())?;
    let embedder = manga_runtime::app::embedder(&config, Some(&sdk))?
        .context("index needs embeddings (MANGA_EMBEDDER titan or local)")?;
    let client = AossClient::new(&sdk, &endpoint, Duration::from_secs(30))?;
    let docs = manga_runtime::backends::corpus::documents(&data.catalog, &data.faq);
    let bar = indicatif::ProgressBar::new(docs.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:>9} [{bar:40}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let indexer = Indexer {
        client: &client,
        index: &config.opensearch_index,
        embedder: &*embedder,
        options: IndexOptions {
            // The local model's document vectors are cached beside it; Titan's are not.
            cache: (config.embedder_kind() == manga_runtime::config::EmbedderKind::Local)
                .then(manga_runtime::backends::minilm::default_model_dir)
                .flatten()
                .map(|d| manga_runtime::backends::hybrid::EmbeddingCache {
                    dir: d.join("cache"),
                }),
            ..IndexOptions::default()
        },
    };
    let report = indexer.run(&docs, &Bar(bar.clone())).await?;
    bar.finish_and_clear();
    tracing::info!(
        index = %config.opensearch_index,
        model = %embedder.model_id(),
        created_index = report.created_index,
        unchanged = report.unchanged,
        written = report.written,
        deleted = report.deleted,
        retried_batches = report.retried_batches,
        failed = report.failed,
        "index run finished"
    );
    println!(
        "index {}: {} unchanged, {} written, {} deleted, {} batches retried, {} failed",
        config.opensearch_index,
        report.unchanged,
        report.written,
        report.deleted,
        report.retried_batches,
        report.failed
    );
    // Exit codes contract: 3 = incomplete.
    Ok(if report.complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// GET /healthz over plain TCP (HTTP/1.0, no client library needed); exit 0 on 200.
fn healthcheck(config: &Config) -> ExitCode {
    let ip = if config.bind.is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        config.bind
    };
    let addr = SocketAddr::new(ip, config.port);
    let probe = || -> std::io::Result<bool> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf)?;
        let head = String::from_utf8_lossy(&buf[..n]);
        Ok(head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"))
    };
    match probe() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("healthcheck: {addr}/healthz did not return 200");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("healthcheck: {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}
