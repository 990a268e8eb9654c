//! The AWS implementations of the backend traits, selected with `MANGA_BACKEND=aws`
//! ([`crate::app`]): [`dynamodb::DynamoSessionStore`], [`redis_cache::RedisCache`],
//! [`sagemaker::SageMakerIntentModel`], [`opensearch::OpenSearchRetriever`] and
//! [`bedrock::BedrockLlm`].
//!
//! Every SDK client is built from one [`SdkConfig`]: in ECS the standard credential
//! chain (the task role) and `AWS_REGION` from the task definition ([`load`]); in tests
//! an explicit 127.0.0.1 endpoint and static dummy credentials ([`static_config`]).
//! The HTTP client is hyper + rustls on ring ([`http_client`]), the same TLS stack as
//! `reqwest` and mangactl's own SDK clients, so no second crypto library is compiled.
//!
//! Deadlines: the pipeline wraps every call in its stage budget and drops the future on
//! a miss, which cancels the request. The SDK timeouts here are only a backstop for
//! calls made outside a stage (`/readyz`, saving a turn).

pub mod bedrock;
pub mod dax;
pub mod dynamodb;
pub mod elasticache_iam;
pub mod index;
pub mod opensearch;
pub mod redis_cache;
pub mod sagemaker;
pub mod target_health;
pub mod titan;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::Builder;
use std::time::{Duration, SystemTime};

/// The HTTP client for every SDK client: HTTPS through rustls with ring (plain HTTP too,
/// for emulators on 127.0.0.1).
pub fn http_client() -> SharedHttpClient {
    Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Backstop timeouts (see the module docs): stage budgets are far shorter.
fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(3))
        .build()
}

/// Two attempts at most: a retry only helps while the stage budget still has room, and
/// the pipeline's deadline cuts off the rest anyway.
fn retries() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(2)
}

/// The SDK configuration for production: standard credential chain and region
/// (`AWS_REGION`; the ECS task role supplies credentials).
pub async fn load() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .timeout_config(timeouts())
        .retry_config(retries())
        .load()
        .await
}

/// A configuration pointing every client at `endpoint` with static dummy credentials,
/// for emulators and fakes on 127.0.0.1.
pub fn static_config(endpoint: &str, region: &str) -> SdkConfig {
    let credentials = Credentials::new("testing", "testing", None, None, "static");
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .http_client(http_client())
        .timeout_config(timeouts())
        .retry_config(retries())
        .build()
}

/// Full text of an SDK error (the error's `Display` alone is often just "service error").
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string()
}

/// Cached credentials are replaced this long before their expiry, so nothing is signed
/// with credentials about to lapse.
pub const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
#[error("AWS credentials: {0}")]
pub struct CredentialsError(pub String);

/// A credentials provider's credentials, resolved once and reused until
/// [`REFRESH_BEFORE_EXPIRY`] before they expire, for what signs requests itself
/// (OpenSearch Serverless searches, ElastiCache IAM tokens): SDK clients cache
/// identities themselves, but a provider called directly resolves again on every call
/// (on ECS an HTTP request to the container credentials endpoint each time). One
/// resolution at a time (the lock), so a burst at expiry asks the provider once.
#[derive(Debug)]
pub struct CredentialCache {
    provider: SharedCredentialsProvider,
    current: tokio::sync::Mutex<Option<Credentials>>,
}

impl CredentialCache {
    pub fn new(provider: SharedCredentialsProvider) -> CredentialCache {
        CredentialCache {
            provider,
            current: tokio::sync::Mutex::new(None),
        }
    }

    pub async fn get(&self) -> Result<Credentials, CredentialsError> {
        let mut current = self.current.lock().await;
        let fresh = |c: &Credentials| {
            c.expiry()
                .is_none_or(|e| e > SystemTime::now() + REFRESH_BEFORE_EXPIRY)
        };
        if let Some(c) = current.as_ref().filter(|c| fresh(c)) {
            return Ok(c.clone());
        }
        let c = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| CredentialsError(describe(&e)))?;
        *current = Some(c.clone());
        Ok(c)
    }
}
