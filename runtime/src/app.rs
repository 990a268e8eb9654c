//! Wiring: turns a [`Config`] into a servable [`App`] — budgets, bundled data, the
//! backends of `MANGA_BACKEND` (embedded, or AWS from [`crate::backends::aws`]; a test
//! can inject any of them through [`AppBuilder`]), the authenticator, the pipeline and
//! the optional EMF metrics sink. Used by `main.rs`, the integration tests and the bench.

use crate::backends::aws::bedrock::BedrockLlm;
use crate::backends::aws::dax::DaxSessionStore;
use crate::backends::aws::dynamodb::DynamoSessionStore;
use crate::backends::aws::elasticache_iam::{IamCredentialsProvider, IamTokens, SigV4Tokens};
use crate::backends::aws::opensearch::OpenSearchRetriever;
use crate::backends::aws::redis_cache::RedisCache;
use crate::backends::aws::sagemaker::SageMakerIntentModel;
use crate::backends::aws::target_health::{ElbTargetHealth, TargetId};
use crate::backends::aws::titan::TitanEmbedder;
use crate::backends::bm25::Bm25Retriever;
use crate::backends::catalog::CatalogServices;
use crate::backends::classifier::{Evaluation, IntentClassifier, TrainOptions};
use crate::backends::embed::Embedder;
use crate::backends::extractive::ExtractiveResponder;
use crate::backends::filters::FilterParser;
use crate::backends::hybrid::{EmbeddingCache, HybridRetriever};
use crate::backends::memory_store::LruSessionStore;
use crate::backends::minilm::{self, MiniLmEmbedder};
use crate::backends::moka_cache::MokaCache;
use crate::backends::openai::OpenAiCompatible;
use crate::backends::simulated::{Delayed, Profile, SimulatedLlm};
use crate::backends::{IntentModel, Llm, ResponseCache, Retriever, Services, SessionStore};
use crate::config::{BackendFamily, Config, EmbedderKind, LlmBackend};
use crate::data::DataSet;
use crate::emf::EmfSink;
use crate::metrics::{Metrics, Stage};
use crate::pipeline::auth::{Authenticator, RateLimiter};
use crate::pipeline::{Backends, Pipeline, Settings};
use crate::server::{AppState, Limits, TargetHealth};
use sizing::LatencyBudgets;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The default stream cap, in multiples of the `streaming` budget.
const STREAM_CAP_FACTOR: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Catalog(#[from] crate::backends::catalog::CatalogError),
    #[error(transparent)]
    Index(#[from] crate::backends::bm25::IndexError),
    #[error(transparent)]
    Auth(#[from] crate::pipeline::auth::AuthSetupError),
    #[error(transparent)]
    Pipeline(#[from] crate::pipeline::PipelineError),
    #[error("LLM backend: {0}")]
    Llm(crate::backends::BackendError),
    #[error("MANGA_BACKEND=aws: {0}")]
    Aws(String),
    #[error(transparent)]
    Emf(#[from] crate::emf::EmfError),
    #[error(transparent)]
    Simulation(#[from] crate::backends::simulated::ProfileError),
    #[error("document embeddings: {0}")]
    Embeddings(crate::backends::BackendError),
}

/// The embeddings configured ([`Config::embedder_kind`]): `None` for BM25 alone, also
/// when the local model is not installed (said in the log).
pub fn embedder(
    cfg: &Config,
    sdk: Option<&aws_config::SdkConfig>,
) -> Result<Option<Arc<dyn Embedder>>, BuildError> {
    match cfg.embedder_kind() {
        EmbedderKind::None => Ok(None),
        EmbedderKind::Titan => {
            let sdk = sdk.ok_or_else(|| {
                BuildError::Aws(
                    "--embedder titan needs the AWS configuration (MANGA_BACKEND=aws)".into(),
                )
            })?;
            let t = TitanEmbedder::new(sdk, &cfg.embedding_model_id, cfg.embedding_dimensions)
                .map_err(|e| BuildError::Aws(e.to_string()))?;
            Ok(Some(Arc::new(t)))
        }
        EmbedderKind::Local => {
            let Some(dir) = minilm::default_model_dir() else {
                tracing::warn!(
                    "retrieval: BM25 only: no sentence-embedding model (set MANGA_EMBED_MODEL_DIR, \
                     or run scripts/install-test-tools to install all-MiniLM-L6-v2)"
                );
                return Ok(None);
            };
            match minilm::shared(&dir) {
                Ok(model) => Ok(Some(Arc::new(MiniLmEmbedder(model)))),
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "retrieval: BM25 only: the sentence-embedding model did not load");
                    Ok(None)
                }
            }
        }
    }
}

/// The embedded retriever: hybrid BM25 + vectors with an embedder, BM25 alone without.
/// Document vectors are cached beside the local model ([`EmbeddingCache`]).
pub async fn embedded_retriever(
    data: &crate::data::DataSet,
    embedder: Option<Arc<dyn Embedder>>,
) -> Result<HybridRetriever, BuildError> {
    let bm25 = Bm25Retriever::build(&data.catalog, &data.faq)?;
    let Some(embedder) = embedder else {
        return Ok(HybridRetriever::bm25_only(bm25));
    };
    let t0 = Instant::now();
    let cache = minilm::default_model_dir().map(|d| EmbeddingCache {
        dir: d.join("cache"),
    });
    let r = HybridRetriever::build(bm25, Arc::clone(&embedder), cache.as_ref())
        .await
        .map_err(BuildError::Embeddings)?;
    tracing::info!(
        model = %embedder.model_id(),
        docs = r.docs().len(),
        ms = t0.elapsed().as_millis() as u64,
        "retrieval: hybrid BM25 + k-NN (reciprocal rank fusion)"
    );
    Ok(r)
}

/// What start-up did, for the log line and the README numbers.
#[derive(Debug, Clone)]
pub struct StartupReport {
    pub catalog_titles: usize,
    pub faq_entries: usize,
    pub orders: u32,
    /// `None` when a model was injected instead of trained.
    pub classifier_heldout: Option<Evaluation>,
    pub classifier_train_ms: Option<f64>,
    pub budgets: LatencyBudgets,
}

#[derive(Debug)]
pub struct App {
    pub state: Arc<AppState>,
    pub report: StartupReport,
}

/// Builds an [`App`]; every backend not set explicitly is the one `MANGA_BACKEND` names.
pub struct AppBuilder {
    config: Config,
    budgets: Option<LatencyBudgets>,
    sessions: Option<Arc<dyn SessionStore>>,
    model: Option<Arc<dyn IntentModel>>,
    cache: Option<Arc<dyn ResponseCache>>,
    services: Option<Arc<dyn Services>>,
    retriever: Option<Arc<dyn Retriever>>,
    llm: Option<Arc<dyn Llm>>,
    embedder: Option<Arc<dyn Embedder>>,
    aws: Option<aws_config::SdkConfig>,
    emf_writer: Option<Box<dyn std::io::Write + Send>>,
    target_health: Option<Arc<dyn TargetHealth>>,
    redis_tokens: Option<Arc<dyn IamTokens>>,
}

impl std::fmt::Debug for AppBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppBuilder")
            .field("config", &self.config)
            .field("budgets", &self.budgets)
            .field("aws", &self.aws.is_some())
            .field("emf_writer", &self.emf_writer.is_some())
            .field("target_health", &self.target_health)
            .field("redis_tokens", &self.redis_tokens)
            .finish_non_exhaustive()
    }
}

impl AppBuilder {
    pub fn new(config: Config) -> AppBuilder {
        AppBuilder {
            config,
            budgets: None,
            sessions: None,
            model: None,
            cache: None,
            services: None,
            retriever: None,
            llm: None,
            embedder: None,
            aws: None,
            emf_writer: None,
            target_health: None,
            redis_tokens: None,
        }
    }

    /// The drain watcher's source (default: [`ElbTargetHealth`] when
    /// `MANGA_TARGET_GROUP_ARN` is set, else no watcher).
    pub fn target_health(mut self, h: Arc<dyn TargetHealth>) -> Self {
        self.target_health = Some(h);
        self
    }

    /// The Redis IAM tokens when `MANGA_REDIS_USER` is set (default: [`SigV4Tokens`]).
    pub fn redis_tokens(mut self, t: Arc<dyn IamTokens>) -> Self {
        self.redis_tokens = Some(t);
        self
    }

    /// The AWS SDK configuration of the AWS backends (default: [`crate::backends::aws::load`],
    /// the standard chain); tests pass an emulator endpoint with static credentials.
    pub fn aws_config(mut self, c: aws_config::SdkConfig) -> Self {
        self.aws = Some(c);
        self
    }

    /// Where EMF lines go when `MANGA_EMF` is on (default: stdout).
    pub fn emf_writer(mut self, w: Box<dyn std::io::Write + Send>) -> Self {
        self.emf_writer = Some(w);
        self
    }

    pub fn budgets(mut self, b: LatencyBudgets) -> Self {
        self.budgets = Some(b);
        self
    }

    pub fn sessions(mut self, s: Arc<dyn SessionStore>) -> Self {
        self.sessions = Some(s);
        self
    }

    pub fn model(mut self, m: Arc<dyn IntentModel>) -> Self {
        self.model = Some(m);
        self
    }

    pub fn cache(mut self, c: Arc<dyn ResponseCache>) -> Self {
        self.cache = Some(c);
        self
    }

    pub fn services(mut self, s: Arc<dyn Services>) -> Self {
        self.services = Some(s);
        self
    }

    pub fn retriever(mut self, r: Arc<dyn Retriever>) -> Self {
        self.retriever = Some(r);
        self
    }

    pub fn llm(mut self, l: Arc<dyn Llm>) -> Self {
        self.llm = Some(l);
        self
    }

    /// The retrieval embeddings, instead of the configured ones ([`embedder`]).
    pub fn embedder(mut self, e: Arc<dyn Embedder>) -> Self {
        self.embedder = Some(e);
        self
    }

    pub async fn build(self) -> Result<App, BuildError> {
        let cfg = self.config;
        let budgets = match self.budgets {
            Some(b) => b,
            None => cfg.budgets()?,
        };
        let missing = cfg.missing_aws_settings();
        if !missing.is_empty() {
            // Refuse loudly: serving the embedded demo data in a real deployment would look
            // healthy while answering from invented data.
            return Err(BuildError::Aws(format!(
                "missing settings: {}",
                missing.join(", ")
            )));
        }
        let aws = cfg.backend == BackendFamily::Aws;
        let llm_backend = cfg.llm_backend();
        let target_group = cfg.target_group_arn.clone().filter(|a| !a.is_empty());
        let redis_user = cfg.redis_user.clone().filter(|u| !u.is_empty());
        // (Redis IAM tokens are signed with it too; the AWS family loads it anyway.)
        let needs_sdk = aws
            || llm_backend == LlmBackend::Bedrock
            || (cfg.embedder_kind() == EmbedderKind::Titan && self.embedder.is_none())
            || (target_group.is_some() && self.target_health.is_none());
        let sdk = match (self.aws, needs_sdk) {
            (Some(c), _) => Some(c),
            (None, true) => Some(crate::backends::aws::load().await),
            (None, false) => None,
        };
        // Only used when a family needs it; `missing_aws_settings` guarantees the values.
        let setting = |v: &Option<String>| v.clone().unwrap_or_default();
        let data = DataSet::load(cfg.data_dir.as_deref())?;

        let (model, heldout, train_ms): (Arc<dyn IntentModel>, _, _) = match (self.model, &sdk) {
            (Some(m), _) => (m, None, None),
            (None, Some(sdk)) if aws => (
                Arc::new(SageMakerIntentModel::new(
                    sdk,
                    &setting(&cfg.sagemaker_endpoint),
                )),
                None,
                None,
            ),
            (None, _) => {
                let t0 = Instant::now();
                let clf = IntentClassifier::train(&data.train, TrainOptions::default());
                let train_ms = t0.elapsed().as_secs_f64() * 1e3;
                let eval = clf.evaluate(&data.heldout);
                (Arc::new(clf), Some(eval), Some(train_ms))
            }
        };
        // No AWS commerce API exists yet: the AWS family serves catalog and orders from
        // the bundled data too, and says so at start-up.
        let services: Arc<dyn Services> = match self.services {
            Some(s) => s,
            None => {
                if aws {
                    tracing::warn!(
                        "MANGA_BACKEND=aws: catalog, price/stock and order services still come \
                         from the bundled catalog and generated orders (no commerce API yet)"
                    );
                }
                Arc::new(CatalogServices::new(data.catalog.clone(), cfg.orders)?)
            }
        };
        let retriever: Arc<dyn Retriever> = match (self.retriever, &sdk) {
            (Some(r), _) => r,
            (None, Some(sdk)) if aws => {
                let r = OpenSearchRetriever::new(
                    sdk,
                    &setting(&cfg.opensearch_endpoint),
                    &cfg.opensearch_index,
                )
                .map_err(|e| BuildError::Aws(e.to_string()))?;
                let e = match self.embedder.clone() {
                    Some(e) => Some(e),
                    None => embedder(&cfg, Some(sdk))?,
                };
                match e {
                    Some(e) => {
                        tracing::info!(model = %e.model_id(), "retrieval: OpenSearch BM25 + k-NN (reciprocal rank fusion)");
                        Arc::new(r.with_embedder(e))
                    }
                    None => {
                        tracing::warn!("retrieval: OpenSearch BM25 only (no embeddings)");
                        Arc::new(r)
                    }
                }
            }
            (None, _) => {
                let e = match self.embedder.clone() {
                    Some(e) => Some(e),
                    None => embedder(&cfg, sdk.as_ref())?,
                };
                Arc::new(embedded_retriever(&data, e).await?)
            }
        };
        let mut dax_fallbacks = None;
        let sessions: Arc<dyn SessionStore> = match (self.sessions, &sdk) {
            (Some(s), _) => s,
            (None, Some(sdk)) if aws => {
                let table = setting(&cfg.dynamodb_table);
                let ttl = Duration::from_secs(cfg.session_ttl_secs);
                match cfg.dax_endpoint.as_deref().filter(|e| !e.is_empty()) {
                    Some(endpoint) => {
                        let store = DaxSessionStore::new(sdk, endpoint, &table, ttl)
                            .map_err(|e| BuildError::Aws(e.to_string()))?;
                        dax_fallbacks = Some(store.fallbacks());
                        Arc::new(store)
                    }
                    None => Arc::new(DynamoSessionStore::new(sdk, &table, ttl)),
                }
            }
            (None, _) => Arc::new(LruSessionStore::new(
                cfg.session_capacity,
                Duration::from_secs(cfg.session_ttl_secs),
                cfg.history_turns.max(1) * 2,
            )),
        };
        let cache: Arc<dyn ResponseCache> = match self.cache {
            Some(c) => c,
            None if aws => {
                let url = setting(&cfg.redis_url.as_ref().map(|s| s.expose().to_owned()));
                let ttl = Duration::from_secs(cfg.cache_ttl_secs);
                let iam = match (&redis_user, self.redis_tokens) {
                    (None, _) => None,
                    (Some(_), Some(t)) => Some(IamCredentialsProvider::new(t)),
                    (Some(user), None) => {
                        let sdk = sdk.as_ref().ok_or_else(|| {
                            BuildError::Aws("no AWS configuration for Redis IAM auth".into())
                        })?;
                        let group = setting(&cfg.redis_replication_group);
                        let tokens = SigV4Tokens::new(sdk, user, &group)
                            .map_err(|e| BuildError::Aws(e.to_string()))?;
                        Some(IamCredentialsProvider::new(Arc::new(tokens)))
                    }
                };
                let cache =
                    RedisCache::open(&url, &cfg.redis_key_prefix, ttl, cfg.redis_cluster, iam);
                Arc::new(cache.map_err(|e| BuildError::Aws(e.to_string()))?)
            }
            None => Arc::new(MokaCache::new(
                cfg.cache_capacity,
                Duration::from_secs(cfg.cache_ttl_secs),
            )),
        };
        let llm: Arc<dyn Llm> = match self.llm {
            Some(l) => l,
            None => match llm_backend {
                LlmBackend::Extractive => Arc::new(ExtractiveResponder::new(
                    Duration::from_millis(cfg.word_delay_ms),
                )),
                LlmBackend::Openai => Arc::new(
                    OpenAiCompatible::new(
                        &cfg.openai_base_url,
                        &cfg.openai_model,
                        cfg.openai_api_key.as_ref().map(|k| k.expose().to_owned()),
                        cfg.openai_max_tokens,
                    )
                    .map_err(BuildError::Llm)?,
                ),
                LlmBackend::Bedrock => match &sdk {
                    Some(sdk) => Arc::new(BedrockLlm::new(
                        sdk,
                        &setting(&cfg.bedrock_model_id),
                        cfg.bedrock_max_tokens,
                    )),
                    None => return Err(BuildError::Aws("no AWS configuration for Bedrock".into())),
                },
            },
        };

        // Load tests only: every backend behind the profile's waits (backends/simulated.rs).
        let simulation = match &cfg.simulate {
            None => None,
            Some(path) => {
                let p = Profile::load(path)?;
                tracing::warn!(
                    profile = %p.name,
                    model = %p.llm.model_id,
                    "SIMULATION: MANGA_SIMULATE is set; every backend waits as the profile says \
                     and answers are re-timed to it (load tests only)"
                );
                Some(p)
            }
        };
        let (sessions, model, cache, services, retriever, llm) = match &simulation {
            None => (sessions, model, cache, services, retriever, llm),
            Some(p) => (
                Arc::new(Delayed::new(sessions, p.stages)) as Arc<dyn SessionStore>,
                Arc::new(Delayed::new(model, p.stages)) as Arc<dyn IntentModel>,
                Arc::new(Delayed::new(cache, p.stages)) as Arc<dyn ResponseCache>,
                Arc::new(Delayed::new(services, p.stages)) as Arc<dyn Services>,
                Arc::new(Delayed::new(retriever, p.stages)) as Arc<dyn Retriever>,
                Arc::new(SimulatedLlm::new(llm, p.llm.clone())) as Arc<dyn Llm>,
            ),
        };

        let mut metrics = Metrics::new(budgets);
        if cfg.emf {
            let sink = match self.emf_writer {
                Some(w) => EmfSink::to_writer(&cfg.environment, w)?,
                None => EmfSink::stdout(&cfg.environment)?,
            };
            metrics = metrics.with_emf(sink);
        }
        if let Some(f) = dax_fallbacks {
            metrics = metrics.with_dax_fallbacks(f);
        }
        let metrics = Arc::new(metrics);
        let settings = Settings {
            history_turns: cfg.history_turns,
            rules_confidence: cfg.rules_confidence,
            // The `streaming` budget is a p95 of first to last token; an answer
            // four times longer is a runaway, and it holds a stream permit.
            stream_max: cfg
                .stream_max_secs
                .map_or(Stage::Streaming.budget(&budgets) * STREAM_CAP_FACTOR, |s| {
                    Duration::from_secs(s.max(1))
                }),
            save_timeout: Duration::from_millis(cfg.save_timeout_ms.max(1)),
            llm_streams: Arc::new(Semaphore::new(cfg.max_llm_streams.max(1))),
            model_calls: Arc::new(Semaphore::new(cfg.max_model_calls.max(1))),
            filters: Arc::new(FilterParser::new(&data.catalog)),
            simulated: simulation.is_some(),
        };
        // Enough buckets for every connected user; older idle buckets are evicted first.
        let limiter = RateLimiter::new(
            cfg.rate_per_minute,
            cfg.rate_burst,
            cfg.max_connections.max(1024) * 2,
        );
        let backends = Backends {
            sessions,
            model,
            cache,
            services,
            retriever,
            llm,
        };
        let pipeline = Arc::new(Pipeline::new(backends, metrics, settings, limiter)?);
        let authenticator = Arc::new(Authenticator::from_config(&cfg).await?);
        let limits = Limits {
            max_message_bytes: cfg.max_message_bytes,
            max_frame_bytes: cfg.max_frame_bytes,
            max_sessions_per_connection: cfg.max_sessions_per_connection,
            max_connections: cfg.max_connections,
            max_connections_per_user: cfg.max_connections_per_user.max(1),
            ping_interval: Duration::from_secs(cfg.ping_interval_secs),
            drain_timeout: Duration::from_secs(cfg.drain_timeout_secs),
            ready_probe_every: Duration::from_secs(cfg.ready_probe_secs.max(1)),
            drain_poll_every: Duration::from_secs(cfg.drain_poll_secs.max(1)),
            gauge_every: Duration::from_secs(cfg.gauge_secs.max(1)),
        };
        let target_health: Option<Arc<dyn TargetHealth>> =
            match (self.target_health, &target_group) {
                (Some(h), _) => Some(h),
                (None, None) => None,
                (None, Some(arn)) => {
                    let source = match (&cfg.target_id, &cfg.ecs_metadata_uri) {
                        (Some(id), _) if !id.is_empty() => TargetId::Fixed(id.clone()),
                        (_, Some(uri)) if !uri.is_empty() => TargetId::TaskMetadata(uri.clone()),
                        _ => return Err(BuildError::Aws(
                            "MANGA_TARGET_GROUP_ARN is set but the task's target id is unknown: \
                             set MANGA_TARGET_ID or run in ECS (ECS_CONTAINER_METADATA_URI_V4)"
                                .into(),
                        )),
                    };
                    let sdk = sdk.as_ref().ok_or_else(|| {
                        BuildError::Aws("no AWS configuration for the drain watcher".into())
                    })?;
                    let health = ElbTargetHealth::new(sdk, arn, source, cfg.port)
                        .map_err(|e| BuildError::Aws(e.to_string()))?;
                    Some(Arc::new(health))
                }
            };
        let report = StartupReport {
            catalog_titles: data.catalog.len(),
            faq_entries: data.faq.len(),
            orders: cfg.orders,
            classifier_heldout: heldout,
            classifier_train_ms: train_ms,
            budgets,
        };
        let mut state = AppState::new(pipeline, authenticator, limits);
        if let Some(h) = target_health {
            state = state.with_target_health(h);
        }
        Ok(App {
            state: Arc::new(state),
            report,
        })
    }
}
