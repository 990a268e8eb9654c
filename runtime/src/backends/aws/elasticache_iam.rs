//! ElastiCache IAM authentication for the Redis response cache (`MANGA_REDIS_USER`).
//!
//! What the ElastiCache User Guide ("Authenticating with IAM",
//! docs.aws.amazon.com/AmazonElastiCache/latest/dg/auth-iam.html) requires, and how each
//! point is met here:
//! - "IAM Authentication for ElastiCache works by providing a short-lived IAM
//!   authentication token instead of a long-lived ElastiCache user password in the
//!   Valkey or Redis OSS `AUTH` or `HELLO` command": the client authenticates as
//!   `AUTH <user id> <token>` (the `redis` crate's username + password).
//! - The token is "an AWS SigV4 pre-signed request": the guide's `IAMAuthTokenRequest`
//!   presigns `GET http://<cache name>/` with `Action=connect` and `User=<user id>`
//!   (plus `ResourceType=ServerlessCache` for serverless caches only, so not here) for
//!   service `elasticache` in the cache's region, `TOKEN_EXPIRY_SECONDS = 900`, then
//!   drops the `http://` prefix: [`presign_token`]. For a replication group the cache
//!   name is its id, hence `MANGA_REDIS_REPLICATION_GROUP`; "Cache names are converted
//!   to lowercase at cache creation time. Ensure authenticating code supplies the cache
//!   name in lowercase", so it is lower-cased.
//! - "For IAM-enabled ElastiCache users the username and user id properties must be
//!   identical": one setting, the user id, serves as both.
//! - "The IAM authentication token is valid for 15 minutes. For long-lived connections,
//!   we recommend using a ... client that supports a credentials provider interface":
//!   [`IamCredentialsProvider`] is the `redis` crate's `StreamingCredentialsProvider`;
//!   every connection the `ConnectionManager` or the cluster client opens (first
//!   connect, reconnect, each cluster node) takes a freshly signed token from it.
//! - "An IAM authenticated connection ... will automatically be disconnected after 12
//!   hours. The connection can be prolonged for 12 hours by sending an `AUTH` or `HELLO`
//!   command with a new IAM authentication token": the same provider feeds each live
//!   connection a new token every [`REAUTH_EVERY`] (10 h), which the crate sends as
//!   `AUTH`; if that ever fails, the connection is closed at 12 h and the manager
//!   reconnects with a fresh token.
//! - "IAM authentication is not supported inside `MULTI`/`EXEC` blocks": the cache uses
//!   single commands only (`GET`, `SET … EX`, `PING`), no transactions.
//!
//! The AWS credentials that sign tokens are the SDK configuration's, through the shared
//! [`super::CredentialCache`] (the task role's credentials are fetched once and reused
//! until near their expiry). Tokens themselves are never cached: each is signed at the
//! moment it is presented.

use super::CredentialCache;
use async_trait::async_trait;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use futures_util::StreamExt;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use redis::auth::{BasicAuth, StreamingCredentialsProvider};
use redis::{ErrorKind, RedisError, RedisResult};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// SigV4 service name of the token.
pub const SIGNING_SERVICE: &str = "elasticache";
/// `TOKEN_EXPIRY_SECONDS = 900` of the guide's example: tokens are valid 15 minutes.
pub const TOKEN_EXPIRY: Duration = Duration::from_secs(900);
/// Live connections re-authenticate this often with a new token: well inside the 12
/// hours after which ElastiCache closes an IAM-authenticated connection, leaving two
/// hours for retries.
pub const REAUTH_EVERY: Duration = Duration::from_secs(10 * 3600);
/// After a token could not be made (credentials unavailable), the next try.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);

/// SigV4's unreserved characters (`A-Z a-z 0-9 - _ . ~`) stay, everything else is encoded.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[derive(Debug, thiserror::Error)]
pub enum IamAuthError {
    #[error("ElastiCache IAM auth configuration: {0}")]
    Config(String),
    #[error("ElastiCache IAM token: {0}")]
    Credentials(String),
    #[error("ElastiCache IAM token signing: {0}")]
    Signing(String),
}

/// The IAM authentication token for `user_id` on `cache_name` at `time`: the guide's
/// `IAMAuthTokenRequest.toSignedRequestUri` (see the module docs), i.e.
/// `<cache>/?Action=connect&User=<user>&X-Amz-Algorithm=…&X-Amz-Credential=…&
/// X-Amz-Date=…&X-Amz-Expires=900&X-Amz-SignedHeaders=host[&X-Amz-Security-Token=…]&
/// X-Amz-Signature=…`.
pub fn presign_token(
    user_id: &str,
    cache_name: &str,
    region: &str,
    credentials: &Credentials,
    time: SystemTime,
) -> Result<String, IamAuthError> {
    let url = format!(
        "http://{cache_name}/?Action=connect&User={}",
        utf8_percent_encode(user_id, QUERY_VALUE)
    );
    let identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_EXPIRY);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SIGNING_SERVICE)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| IamAuthError::Signing(e.to_string()))?
        .into();
    let signable = SignableRequest::new(
        "GET",
        url.as_str(),
        std::iter::empty(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| IamAuthError::Signing(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| IamAuthError::Signing(e.to_string()))?
        .into_parts();
    let mut token = url;
    for (name, value) in instructions.params() {
        token.push('&');
        token.push_str(name);
        token.push('=');
        token.extend(utf8_percent_encode(value, QUERY_VALUE));
    }
    Ok(token
        .strip_prefix("http://")
        .map(str::to_string)
        .unwrap_or(token))
}

/// Makes the token each connection presents; a trait so tests can supply tokens a
/// local redis-server accepts.
#[async_trait]
pub trait IamTokens: Send + Sync + std::fmt::Debug {
    /// The ElastiCache user id (== user name) the tokens are for.
    fn user(&self) -> &str;
    /// The cache the tokens are for (for messages).
    fn cache(&self) -> &str;
    /// A new token, valid from now.
    async fn token(&self) -> Result<String, IamAuthError>;
}

/// [`IamTokens`] signed with the SDK configuration's credentials ([`presign_token`]).
#[derive(Debug)]
pub struct SigV4Tokens {
    user: String,
    cache: String,
    region: String,
    credentials: Arc<CredentialCache>,
}

impl SigV4Tokens {
    pub fn new(
        config: &aws_config::SdkConfig,
        user_id: &str,
        replication_group: &str,
    ) -> Result<SigV4Tokens, IamAuthError> {
        let region = config
            .region()
            .map(|r| r.as_ref().to_string())
            .ok_or_else(|| IamAuthError::Config("no AWS region (set AWS_REGION)".into()))?;
        let provider = config
            .credentials_provider()
            .ok_or_else(|| IamAuthError::Config("no AWS credentials provider".into()))?;
        if user_id.is_empty() || replication_group.is_empty() {
            return Err(IamAuthError::Config(
                "the user id and the replication group id must not be empty".into(),
            ));
        }
        Ok(SigV4Tokens {
            user: user_id.to_string(),
            cache: replication_group.to_lowercase(),
            region,
            credentials: Arc::new(CredentialCache::new(provider)),
        })
    }
}

#[async_trait]
impl IamTokens for SigV4Tokens {
    fn user(&self) -> &str {
        &self.user
    }

    fn cache(&self) -> &str {
        &self.cache
    }

    async fn token(&self) -> Result<String, IamAuthError> {
        let credentials = self
            .credentials
            .get()
            .await
            .map_err(|e| IamAuthError::Credentials(e.to_string()))?;
        presign_token(
            &self.user,
            &self.cache,
            &self.region,
            &credentials,
            SystemTime::now(),
        )
    }
}

/// The `redis` crate's credentials provider over [`IamTokens`]: each subscription (the
/// crate subscribes once for a connection's first `AUTH` and once more for its
/// re-authentications) yields a token at once and then one every `reauth_every`; after
/// a failure the next try comes after [`RETRY_AFTER_FAILURE`]. A subscription cannot
/// tell which of the two it serves, so a new connection also re-authenticates once
/// right after connecting, with another fresh token: one extra `AUTH` per connect.
#[derive(Debug, Clone)]
pub struct IamCredentialsProvider {
    tokens: Arc<dyn IamTokens>,
    reauth_every: Duration,
}

impl IamCredentialsProvider {
    pub fn new(tokens: Arc<dyn IamTokens>) -> IamCredentialsProvider {
        IamCredentialsProvider::with_reauth_every(tokens, REAUTH_EVERY)
    }

    pub fn with_reauth_every(
        tokens: Arc<dyn IamTokens>,
        reauth_every: Duration,
    ) -> IamCredentialsProvider {
        IamCredentialsProvider {
            tokens,
            reauth_every,
        }
    }

    pub fn user(&self) -> &str {
        self.tokens.user()
    }

    pub fn cache(&self) -> &str {
        self.tokens.cache()
    }
}

type CredentialStream = Pin<Box<dyn futures_util::Stream<Item = RedisResult<BasicAuth>> + Send>>;

impl StreamingCredentialsProvider for IamCredentialsProvider {
    fn subscribe(&self) -> CredentialStream {
        let every = self.reauth_every;
        futures_util::stream::unfold(
            (self.tokens.clone(), None::<Duration>),
            move |(tokens, wait)| async move {
                if let Some(wait) = wait {
                    tokio::time::sleep(wait).await;
                }
                let item = match tokens.token().await {
                    Ok(token) => Ok(BasicAuth::new(tokens.user().to_string(), token)),
                    Err(e) => {
                        crate::warn_limited!("Redis IAM authentication: {e}");
                        Err(RedisError::from((
                            ErrorKind::AuthenticationFailed,
                            "no ElastiCache IAM token",
                            e.to_string(),
                        )))
                    }
                };
                let next = if item.is_ok() {
                    every
                } else {
                    RETRY_AFTER_FAILURE
                };
                Some((item, (tokens, Some(next))))
            },
        )
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const USER: &str = "iam-user-01";
    const CACHE: &str = "replication-group-01";
    // 2026-01-02T03:04:05Z
    const EPOCH_SECS: u64 = 1_767_323_045;

    fn credentials(session: Option<&str>) -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session.map(str::to_string),
            None,
            "fixed",
        )
    }

    fn at() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH_SECS)
    }

    fn decode(v: &str) -> String {
        percent_encoding::percent_decode_str(v)
            .decode_utf8()
            .expect("utf-8")
            .into_owned()
    }

    /// Query parameters of a token, decoded.
    fn query(token: &str) -> (String, BTreeMap<String, String>) {
        let (head, q) = token.split_once('?').expect("a query");
        let params = q
            .split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').expect("k=v");
                (decode(k), decode(v))
            })
            .collect();
        (head.to_string(), params)
    }

    fn hmac(key: &[u8], data: &str) -> Vec<u8> {
        let mut m = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
        m.update(data.as_bytes());
        m.finalize().into_bytes().to_vec()
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn enc(s: &str) -> String {
        utf8_percent_encode(s, QUERY_VALUE).to_string()
    }

    /// The signature SigV4's query-string authentication gives these parameters
    /// (canonical request, string to sign, derived key), computed here independently of
    /// aws-sigv4, as the service recomputes it.
    fn expected_signature(params: &BTreeMap<String, String>, secret: &str) -> String {
        let canonical_query = params
            .iter()
            .filter(|(k, _)| k.as_str() != "X-Amz-Signature")
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        let empty_hash = hex(&Sha256::digest(b""));
        let canonical = format!("GET\n/\n{canonical_query}\nhost:{CACHE}\n\nhost\n{empty_hash}");
        let date = &params["X-Amz-Date"];
        let scope = format!("{}/us-east-1/elasticache/aws4_request", &date[..8]);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let k_date = hmac(format!("AWS4{secret}").as_bytes(), &date[..8]);
        let k_region = hmac(&k_date, "us-east-1");
        let k_service = hmac(&k_region, "elasticache");
        let k_signing = hmac(&k_service, "aws4_request");
        hex(&hmac(&k_signing, &to_sign))
    }

    #[test]
    fn the_token_is_the_documented_presigned_connect_request() {
        let token =
            presign_token(USER, CACHE, "us-east-1", &credentials(None), at()).expect("token");
        assert!(
            !token.starts_with("http://"),
            "the scheme is stripped: {token}"
        );
        assert!(
            token.starts_with("replication-group-01/?Action=connect&User=iam-user-01&"),
            "{token}"
        );
        let (head, p) = query(&token);
        assert_eq!(head, "replication-group-01/");
        let keys: Vec<&str> = p.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "Action",
                "User",
                "X-Amz-Algorithm",
                "X-Amz-Credential",
                "X-Amz-Date",
                "X-Amz-Expires",
                "X-Amz-Signature",
                "X-Amz-SignedHeaders"
            ]
        );
        assert_eq!(p["Action"], "connect");
        assert_eq!(p["User"], USER);
        assert_eq!(p["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
        assert_eq!(
            p["X-Amz-Credential"],
            "AKIDEXAMPLE/20260102/us-east-1/elasticache/aws4_request"
        );
        assert_eq!(p["X-Amz-Date"], "20260102T030405Z");
        assert_eq!(p["X-Amz-Expires"], "900");
        assert_eq!(p["X-Amz-SignedHeaders"], "host");
        assert_eq!(
            p["X-Amz-Signature"],
            expected_signature(&p, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
        );
        // Fixed credentials and time: the same token every time.
        assert_eq!(
            presign_token(USER, CACHE, "us-east-1", &credentials(None), at()).expect("token"),
            token
        );
        // Another second, another signature.
        let later = presign_token(
            USER,
            CACHE,
            "us-east-1",
            &credentials(None),
            at() + Duration::from_secs(1),
        )
        .expect("token");
        assert_ne!(query(&later).1["X-Amz-Signature"], p["X-Amz-Signature"]);
    }

    #[test]
    fn a_session_token_is_signed_into_the_query() {
        let token = presign_token(
            USER,
            CACHE,
            "us-east-1",
            &credentials(Some("session/token+=")),
            at(),
        )
        .expect("token");
        let (_, p) = query(&token);
        assert_eq!(p["X-Amz-Security-Token"], "session/token+=");
        assert!(
            token.contains("X-Amz-Security-Token=session%2Ftoken%2B%3D"),
            "{token}"
        );
        assert_eq!(
            p["X-Amz-Signature"],
            expected_signature(&p, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
        );
    }

    #[derive(Debug, Default)]
    struct Counting(AtomicUsize);

    #[async_trait]
    impl IamTokens for Counting {
        fn user(&self) -> &str {
            USER
        }
        fn cache(&self) -> &str {
            CACHE
        }
        async fn token(&self) -> Result<String, IamAuthError> {
            let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(format!("token-{n}"))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn each_subscription_yields_a_fresh_token_now_and_again_before_twelve_hours() {
        let tokens = Arc::new(Counting::default());
        let provider = IamCredentialsProvider::new(tokens.clone());
        let mut stream = provider.subscribe();
        let start = tokio::time::Instant::now();
        let first = stream.next().await.expect("item").expect("credentials");
        assert_eq!(first.username(), USER);
        assert_eq!(first.password(), "token-1");
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "the first token comes at once"
        );
        let second = stream.next().await.expect("item").expect("credentials");
        assert_eq!(second.password(), "token-2");
        assert_eq!(start.elapsed(), REAUTH_EVERY);
        assert!(REAUTH_EVERY < Duration::from_secs(12 * 3600));
        // A second subscription (a reconnect) signs its own token.
        let again = provider
            .subscribe()
            .next()
            .await
            .expect("item")
            .expect("ok");
        assert_eq!(again.password(), "token-3");
    }
}
