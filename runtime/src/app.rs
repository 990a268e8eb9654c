//! Wiring: turns a [`Config`] into a servable [`App`] — budgets, bundled data, embedded
//! backends (or the ones a test or a future AWS build injects through [`AppBuilder`]),
//! the authenticator and the pipeline. Used by `main.rs`, the integration tests and the
//! bench.

use crate::backends::bm25::Bm25Retriever;
use crate::backends::catalog::CatalogServices;
use crate::backends::classifier::{Evaluation, IntentClassifier, TrainOptions};
use crate::backends::extractive::ExtractiveResponder;
use crate::backends::memory_store::LruSessionStore;
use crate::backends::moka_cache::MokaCache;
use crate::backends::openai::OpenAiCompatible;
use crate::backends::{IntentModel, Llm, ResponseCache, Retriever, Services, SessionStore};
use crate::config::{BackendFamily, Budgets, Config, LlmBackend};
use crate::data::DataSet;
use crate::metrics::Metrics;
use crate::pipeline::auth::{Authenticator, RateLimiter};
use crate::pipeline::{Backends, Pipeline, Settings};
use crate::server::{AppState, Limits};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    #[error("{0}")]
    Unsupported(&'static str),
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
    pub budgets: Budgets,
}

#[derive(Debug)]
pub struct App {
    pub state: Arc<AppState>,
    pub report: StartupReport,
}

/// Builds an [`App`]; every backend not set explicitly is the embedded default.
#[derive(Debug)]
pub struct AppBuilder {
    config: Config,
    budgets: Option<Budgets>,
    sessions: Option<Arc<dyn SessionStore>>,
    model: Option<Arc<dyn IntentModel>>,
    cache: Option<Arc<dyn ResponseCache>>,
    services: Option<Arc<dyn Services>>,
    retriever: Option<Arc<dyn Retriever>>,
    llm: Option<Arc<dyn Llm>>,
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
        }
    }

    pub fn budgets(mut self, b: Budgets) -> Self {
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

    pub async fn build(self) -> Result<App, BuildError> {
        let cfg = self.config;
        let budgets = match self.budgets {
            Some(b) => b,
            None => cfg.budgets()?,
        };
        if cfg.backend == BackendFamily::Aws {
            // Refuse loudly: serving the embedded demo catalog in a real deployment would
            // look healthy while answering from invented data.
            return Err(BuildError::Unsupported(
                "MANGA_BACKEND=aws: the AWS backends (DynamoDB, Redis, SageMaker, OpenSearch, Bedrock) are not implemented yet",
            ));
        }
        let data = DataSet::load(cfg.data_dir.as_deref())?;

        let (model, heldout, train_ms): (Arc<dyn IntentModel>, _, _) = match self.model {
            Some(m) => (m, None, None),
            None => {
                let t0 = Instant::now();
                let clf = IntentClassifier::train(&data.train, TrainOptions::default());
                let train_ms = t0.elapsed().as_secs_f64() * 1e3;
                let eval = clf.evaluate(&data.heldout);
                (Arc::new(clf), Some(eval), Some(train_ms))
            }
        };
        let services: Arc<dyn Services> = match self.services {
            Some(s) => s,
            None => Arc::new(CatalogServices::new(data.catalog.clone(), cfg.orders)?),
        };
        let retriever: Arc<dyn Retriever> = match self.retriever {
            Some(r) => r,
            None => Arc::new(Bm25Retriever::build(&data.catalog, &data.faq)?),
        };
        let sessions: Arc<dyn SessionStore> = self.sessions.unwrap_or_else(|| {
            Arc::new(LruSessionStore::new(
                cfg.session_capacity,
                Duration::from_secs(cfg.session_ttl_secs),
                cfg.history_turns.max(1) * 2,
            ))
        });
        let cache: Arc<dyn ResponseCache> = self.cache.unwrap_or_else(|| {
            Arc::new(MokaCache::new(
                cfg.cache_capacity,
                Duration::from_secs(cfg.cache_ttl_secs),
            ))
        });
        let llm: Arc<dyn Llm> = match self.llm {
            Some(l) => l,
            None => match cfg.llm {
                LlmBackend::Extractive => Arc::new(ExtractiveResponder::new(
                    Duration::from_millis(cfg.word_delay_ms),
                )),
                LlmBackend::Openai => Arc::new(
                    OpenAiCompatible::new(
                        &cfg.openai_base_url,
                        &cfg.openai_model,
                        cfg.openai_api_key.clone(),
                        cfg.openai_max_tokens,
                    )
                    .map_err(BuildError::Llm)?,
                ),
            },
        };

        let metrics = Arc::new(Metrics::new(budgets));
        let settings = Settings {
            history_turns: cfg.history_turns,
            rules_confidence: cfg.rules_confidence,
            stream_max: Duration::from_secs(cfg.stream_max_secs.max(1)),
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
            ping_interval: Duration::from_secs(cfg.ping_interval_secs),
            drain_timeout: Duration::from_secs(cfg.drain_timeout_secs),
        };
        let report = StartupReport {
            catalog_titles: data.catalog.len(),
            faq_entries: data.faq.len(),
            orders: cfg.orders,
            classifier_heldout: heldout,
            classifier_train_ms: train_ms,
            budgets,
        };
        Ok(App {
            state: Arc::new(AppState::new(pipeline, authenticator, limits)),
            report,
        })
    }
}
