//! Stage 1: authentication and per-user rate limiting.
//!
//! [`Authenticator`] verifies the JWT once per WebSocket connection (HS256 with a shared
//! secret, or RS256 against a JWKS); [`crate::server`] calls it at upgrade time because
//! browsers cannot set headers on WebSocket requests, so the token may come in the
//! `Authorization` header or the `token` query parameter.
//!
//! JWKS: fetched at start, refreshed every `MANGA_JWKS_REFRESH_SECS`, and refetched at
//! once when a token names a `kid` the set does not have (the provider rotated keys
//! since the last refresh) — at most once per [`REFETCH_INTERVAL`], one fetch at a
//! time, so tokens with made-up `kid`s cannot turn into a flood of fetches. Keys the
//! set holds that cannot verify RS256 tokens (another algorithm, `use: enc`, a
//! malformed entry) are skipped; the set fails only when no usable key is left. Per message, [`admit`] checks
//! that the token has not expired since and takes one token from the user's
//! [`RateLimiter`] bucket.

use super::Run;
use crate::config::{AuthMode, Config};
use crate::domain::Scope;
use crate::metrics::Stage;
use crate::protocol::ErrorCode;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use lru::LruCache;
use serde::Deserialize;
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// Who is talking. `subject` scopes session keys so one user cannot read another's
/// conversation by guessing a session id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub subject: String,
    /// Unix seconds; `None` when auth is off.
    pub expires_at: Option<u64>,
}

impl Principal {
    /// With auth off, callers are told apart by address only (dev mode).
    pub fn anonymous(peer: &str) -> Principal {
        Principal {
            subject: format!("anon:{peer}"),
            expires_at: None,
        }
    }

    pub fn session_key(&self, session_id: &str) -> String {
        format!("{}/{}", self.subject, session_id)
    }

    /// Whose orders this caller may read: an authenticated customer their
    /// own (the token's `sub`); with auth off, which only a loopback bind
    /// allows, the developer sees the demo data.
    pub fn scope(&self) -> Scope<'_> {
        match self.subject.strip_prefix("user:") {
            Some(sub) if self.expires_at.is_some() => Scope::Customer(sub),
            _ => Scope::Developer,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing token: send Authorization: Bearer <jwt> or ?token=<jwt>")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("token expired")]
    Expired,
    #[error("rate limit exceeded")]
    RateLimited { retry_after: Duration },
}

impl AuthError {
    pub fn code(&self) -> ErrorCode {
        match self {
            AuthError::Missing | AuthError::Invalid(_) => ErrorCode::Unauthorized,
            AuthError::Expired => ErrorCode::TokenExpired,
            AuthError::RateLimited { .. } => ErrorCode::RateLimited,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            AuthError::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("cannot read JWKS file {0}: {1}")]
    Read(String, std::io::Error),
    #[error("cannot fetch JWKS from {0}: {1}")]
    Fetch(String, String),
    #[error("invalid JWKS: {0}")]
    Jwks(String),
    #[error("{0}")]
    Config(String),
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
}

type KeySet = Arc<RwLock<HashMap<String, DecodingKey>>>;

enum Keys {
    None,
    Secret(DecodingKey),
    /// RS256 keys by `kid`, replaced wholesale when the JWKS is refreshed.
    Jwks(KeySet),
}

pub struct Authenticator {
    mode: AuthMode,
    keys: Keys,
    validation: Validation,
    /// Where the JWKS comes from, for refetches on an unknown `kid`.
    jwks_url: Option<String>,
    refetch: RefetchGate,
}

/// The shortest time between two refetches of the JWKS for unknown `kid`s.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// A refetch happens on the upgrade path, so it gets less time than the start-up fetch.
const REFETCH_TIMEOUT: Duration = Duration::from_secs(3);
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Single-flight and rate limit of JWKS refetches.
#[derive(Default)]
struct RefetchGate {
    one_at_a_time: tokio::sync::Mutex<()>,
    last: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Authenticator")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    pub fn disabled() -> Authenticator {
        Authenticator {
            mode: AuthMode::Off,
            keys: Keys::None,
            validation: Validation::default(),
            jwks_url: None,
            refetch: RefetchGate::default(),
        }
    }

    pub fn hs256(secret: &[u8], issuer: Option<&str>, audience: Option<&str>) -> Authenticator {
        Authenticator {
            mode: AuthMode::Hs256,
            keys: Keys::Secret(DecodingKey::from_secret(secret)),
            validation: validation(Algorithm::HS256, issuer, audience),
            jwks_url: None,
            refetch: RefetchGate::default(),
        }
    }

    pub fn rs256(
        jwks_json: &str,
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> Result<Authenticator, AuthSetupError> {
        let keys = parse_jwks(jwks_json)?;
        Ok(Authenticator {
            mode: AuthMode::Rs256,
            keys: Keys::Jwks(Arc::new(RwLock::new(keys))),
            validation: validation(Algorithm::RS256, issuer, audience),
            jwks_url: None,
            refetch: RefetchGate::default(),
        })
    }

    /// RS256 with the JWKS fetched from `url` now, and again on an unknown `kid`.
    pub async fn rs256_from_url(
        url: &str,
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> Result<Authenticator, AuthSetupError> {
        let mut auth =
            Authenticator::rs256(&fetch_jwks(url, FETCH_TIMEOUT).await?, issuer, audience)?;
        auth.jwks_url = Some(url.to_string());
        Ok(auth)
    }

    /// Replaces the RS256 key set (JWKS rotation); returns the number of keys. A JWKS
    /// that does not parse leaves the current keys in place.
    pub fn replace_jwks(&self, jwks_json: &str) -> Result<usize, AuthSetupError> {
        let Keys::Jwks(set) = &self.keys else {
            return Err(AuthSetupError::Config("not an RS256 authenticator".into()));
        };
        let keys = parse_jwks(jwks_json)?;
        let n = keys.len();
        *set.write().unwrap_or_else(|p| p.into_inner()) = keys;
        Ok(n)
    }

    /// Builds the authenticator the config asks for; fetches the JWKS once at start-up.
    pub async fn from_config(cfg: &Config) -> Result<Authenticator, AuthSetupError> {
        let iss = cfg.jwt_issuer.as_deref();
        let aud = cfg.jwt_audience.as_deref();
        match cfg.auth {
            AuthMode::Off => Ok(Authenticator::disabled()),
            AuthMode::Hs256 => {
                let secret = cfg
                    .jwt_secret
                    .as_ref()
                    .map(crate::config::Secret::expose)
                    .ok_or_else(|| AuthSetupError::Config("MANGA_JWT_SECRET missing".into()))?;
                Ok(Authenticator::hs256(secret.as_bytes(), iss, aud))
            }
            AuthMode::Rs256 => {
                if let Some(path) = &cfg.jwks_file {
                    let json = std::fs::read_to_string(path)
                        .map_err(|e| AuthSetupError::Read(path.display().to_string(), e))?;
                    return Authenticator::rs256(&json, iss, aud);
                }
                let Some(url) = cfg.jwks_url.clone() else {
                    return Err(AuthSetupError::Config(
                        "MANGA_JWKS_URL or MANGA_JWKS_FILE missing".into(),
                    ));
                };
                let auth = Authenticator::rs256_from_url(&url, iss, aud).await?;
                if let (Keys::Jwks(set), true) = (&auth.keys, cfg.jwks_refresh_secs > 0) {
                    // Identity providers rotate keys; refetch periodically and keep the
                    // old set when a refresh fails.
                    let set = Arc::downgrade(set);
                    let every = Duration::from_secs(cfg.jwks_refresh_secs);
                    tokio::spawn(async move {
                        let mut tick =
                            tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                        loop {
                            tick.tick().await;
                            let Some(set) = set.upgrade() else { return };
                            match fetch_jwks(&url, FETCH_TIMEOUT)
                                .await
                                .and_then(|j| parse_jwks(&j))
                            {
                                Ok(keys) => *set.write().unwrap_or_else(|p| p.into_inner()) = keys,
                                Err(e) => {
                                    tracing::warn!(error = %e, "JWKS refresh failed; keeping the current keys")
                                }
                            }
                        }
                    });
                }
                Ok(auth)
            }
        }
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// Verifies a connection's token. `peer` identifies anonymous callers in dev mode.
    /// Waits only when the token's `kid` is unknown and the JWKS is refetched.
    pub async fn verify(&self, token: Option<&str>, peer: &str) -> Result<Principal, AuthError> {
        let key = match &self.keys {
            Keys::None => return Ok(Principal::anonymous(peer)),
            Keys::Secret(k) => {
                let token = token.ok_or(AuthError::Missing)?;
                return self.decode(token, k);
            }
            Keys::Jwks(keys) => {
                let token = token.ok_or(AuthError::Missing)?;
                let header = jsonwebtoken::decode_header(token)
                    .map_err(|e| AuthError::Invalid(e.to_string()))?;
                let kid = header
                    .kid
                    .ok_or_else(|| AuthError::Invalid("token has no kid".into()))?;
                let key = match lookup(keys, &kid) {
                    Some(k) => k,
                    None => self.refetch_for(keys, &kid).await?,
                };
                (token, key)
            }
        };
        self.decode(key.0, &key.1)
    }

    /// Refetches the JWKS for a `kid` it lacks (rate-limited, single-flight).
    async fn refetch_for(&self, keys: &KeySet, kid: &str) -> Result<DecodingKey, AuthError> {
        let unknown = || AuthError::Invalid(format!("unknown kid {kid}"));
        let Some(url) = &self.jwks_url else {
            return Err(unknown());
        };
        let _one = self.refetch.one_at_a_time.lock().await;
        // Another connection may have refetched while this one waited.
        if let Some(k) = lookup(keys, kid) {
            return Ok(k);
        }
        {
            let mut last = self.refetch.last.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < REFETCH_INTERVAL) {
                return Err(unknown());
            }
            *last = Some(Instant::now());
        }
        match fetch_jwks(url, REFETCH_TIMEOUT)
            .await
            .and_then(|j| parse_jwks(&j))
        {
            Ok(fresh) => *keys.write().unwrap_or_else(|p| p.into_inner()) = fresh,
            Err(e) => {
                crate::warn_limited!(error = %e, kid, "JWKS refetch for an unknown kid failed; keeping the current keys")
            }
        }
        lookup(keys, kid).ok_or_else(unknown)
    }

    fn decode(&self, token: &str, key: &DecodingKey) -> Result<Principal, AuthError> {
        match jsonwebtoken::decode::<Claims>(token, key, &self.validation) {
            Ok(data) => Ok(Principal {
                subject: format!("user:{}", data.claims.sub),
                expires_at: Some(data.claims.exp),
            }),
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
                Err(AuthError::Expired)
            }
            Err(e) => Err(AuthError::Invalid(e.to_string())),
        }
    }
}

/// The key for `kid`, cloned out so the lock is not held while verifying.
fn lookup(keys: &KeySet, kid: &str) -> Option<DecodingKey> {
    keys.read()
        .unwrap_or_else(|p| p.into_inner())
        .get(kid)
        .cloned()
}

/// The RS256 signing keys of a JWKS by `kid`. Entries are read one by one,
/// so one this library cannot read (an unknown `kty`, a malformed modulus)
/// or that cannot verify RS256 signatures is skipped, not fatal.
fn parse_jwks(json: &str) -> Result<HashMap<String, DecodingKey>, AuthSetupError> {
    #[derive(Deserialize)]
    struct RawSet {
        keys: Vec<serde_json::Value>,
    }
    let set: RawSet =
        serde_json::from_str(json).map_err(|e| AuthSetupError::Jwks(e.to_string()))?;
    let mut keys = HashMap::new();
    let mut skipped = Vec::new();
    for (i, raw) in set.keys.into_iter().enumerate() {
        let jwk: Jwk = match serde_json::from_value(raw) {
            Ok(j) => j,
            Err(e) => {
                skipped.push(format!("key {i}: {e}"));
                continue;
            }
        };
        let Some(kid) = jwk.common.key_id.clone() else {
            skipped.push(format!("key {i}: no kid"));
            continue;
        };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            skipped.push(format!("{kid}: use enc"));
            continue;
        }
        if jwk
            .common
            .key_algorithm
            .is_some_and(|a| a != KeyAlgorithm::RS256)
            || !matches!(jwk.algorithm, AlgorithmParameters::RSA(_))
        {
            skipped.push(format!("{kid}: not an RS256 key"));
            continue;
        }
        match DecodingKey::from_jwk(&jwk) {
            Ok(key) => {
                keys.insert(kid, key);
            }
            Err(e) => skipped.push(format!("{kid}: {e}")),
        }
    }
    if !skipped.is_empty() {
        tracing::warn!(skipped = skipped.join("; "), "JWKS keys skipped");
    }
    if keys.is_empty() {
        return Err(AuthSetupError::Jwks(format!(
            "no usable RS256 key with a kid ({})",
            if skipped.is_empty() {
                "the set is empty".to_string()
            } else {
                skipped.join("; ")
            }
        )));
    }
    Ok(keys)
}

async fn fetch_jwks(url: &str, limit: Duration) -> Result<String, AuthSetupError> {
    let fetch = async {
        let resp = reqwest::get(url).await.map_err(|e| e.to_string())?;
        resp.error_for_status()
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())
    };
    tokio::time::timeout(limit, fetch)
        .await
        .map_err(|_| AuthSetupError::Fetch(url.to_string(), "timed out".into()))?
        .map_err(|e| AuthSetupError::Fetch(url.to_string(), e))
}

fn validation(alg: Algorithm, issuer: Option<&str>, audience: Option<&str>) -> Validation {
    let mut v = Validation::new(alg);
    v.leeway = 5;
    // A token not yet valid is refused (jsonwebtoken does not check `nbf`
    // unless told to).
    v.validate_nbf = true;
    // jsonwebtoken checks `iss` and `aud` only when the token has them: a
    // configured claim must also be required, or a token without it passes.
    let mut required = vec!["exp", "sub"];
    if let Some(iss) = issuer {
        v.set_issuer(&[iss]);
        required.push("iss");
    }
    match audience {
        Some(aud) => {
            v.set_audience(&[aud]);
            required.push("aud");
        }
        None => v.validate_aud = false,
    }
    v.set_required_spec_claims(&required);
    v
}

/// Per-user token buckets, bounded by an LRU so abusive key churn cannot grow memory.
#[derive(Debug)]
pub struct RateLimiter {
    buckets: Mutex<LruCache<String, Bucket>>,
    per_sec: f64,
    burst: f64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    pub fn new(per_minute: u32, burst: u32, max_users: usize) -> RateLimiter {
        let cap = NonZeroUsize::new(max_users.max(1)).unwrap_or(NonZeroUsize::MIN);
        RateLimiter {
            buckets: Mutex::new(LruCache::new(cap)),
            per_sec: f64::from(per_minute.max(1)) / 60.0,
            burst: f64::from(burst.max(1)),
        }
    }

    /// Takes one token for `key`, or says how long until one is available.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        // A poisoned lock only means another thread panicked mid-update; the buckets are
        // still usable numbers, so keep limiting rather than failing open or closed.
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = buckets.get_or_insert_mut(key.to_string(), || Bucket {
            tokens: self.burst,
            last: now,
        });
        let refill = now.saturating_duration_since(b.last).as_secs_f64() * self.per_sec;
        b.tokens = (b.tokens + refill).min(self.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.per_sec))
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Stage 1 per message: the token must still be valid and the user within their rate.
pub fn admit(
    limiter: &RateLimiter,
    principal: &Principal,
    run: &mut Run<'_>,
) -> Result<(), AuthError> {
    let start = Instant::now();
    let result = match principal.expires_at {
        Some(exp) if exp < unix_now() => Err(AuthError::Expired),
        _ => limiter
            .check(&principal.subject, start)
            .map_err(|retry_after| AuthError::RateLimited { retry_after }),
    };
    run.record(Stage::Auth, start.elapsed(), false);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refills() {
        let l = RateLimiter::new(60, 2, 10);
        let t0 = Instant::now();
        assert!(l.check("u", t0).is_ok());
        assert!(l.check("u", t0).is_ok());
        let wait = l
            .check("u", t0)
            .expect_err("third message in the same instant is limited");
        assert!(wait <= Duration::from_secs(1) && wait > Duration::ZERO);
        assert!(l.check("other", t0).is_ok(), "buckets are per user");
        assert!(l.check("u", t0 + Duration::from_millis(1100)).is_ok());
    }

    #[tokio::test]
    async fn hs256_tokens_are_verified() {
        use jsonwebtoken::{encode, EncodingKey, Header};
        #[derive(serde::Serialize)]
        struct C<'a> {
            sub: &'a str,
            exp: u64,
        }
        let auth = Authenticator::hs256(b"s3cret", None, None);
        let good = encode(
            &Header::default(),
            &C {
                sub: "alice",
                exp: unix_now() + 600,
            },
            &EncodingKey::from_secret(b"s3cret"),
        )
        .expect("encode");
        let p = auth.verify(Some(&good), "peer").await.expect("valid token");
        assert_eq!(p.subject, "user:alice");
        let wrong = encode(
            &Header::default(),
            &C {
                sub: "alice",
                exp: unix_now() + 600,
            },
            &EncodingKey::from_secret(b"other"),
        )
        .expect("encode");
        assert!(matches!(
            auth.verify(Some(&wrong), "peer").await,
            Err(AuthError::Invalid(_))
        ));
        let old = encode(
            &Header::default(),
            &C {
                sub: "alice",
                exp: unix_now() - 600,
            },
            &EncodingKey::from_secret(b"s3cret"),
        )
        .expect("encode");
        assert_eq!(
            auth.verify(Some(&old), "peer").await,
            Err(AuthError::Expired)
        );
        assert_eq!(auth.verify(None, "peer").await, Err(AuthError::Missing));
    }

    #[tokio::test]
    async fn issuer_and_audience_must_match_when_configured() {
        use jsonwebtoken::{encode, EncodingKey, Header};
        let auth = Authenticator::hs256(b"k", Some("https://auth.example/"), Some("chat"));
        let sign = |claims: serde_json::Value| {
            encode(&Header::default(), &claims, &EncodingKey::from_secret(b"k")).expect("encode")
        };
        let exp = unix_now() + 600;
        let cases = [
            (
                serde_json::json!({"sub": "a", "exp": exp}),
                false,
                "no iss, no aud",
            ),
            (
                serde_json::json!({"sub": "a", "exp": exp, "aud": "chat"}),
                false,
                "no iss",
            ),
            (
                serde_json::json!({"sub": "a", "exp": exp, "iss": "https://auth.example/"}),
                false,
                "no aud",
            ),
            (
                serde_json::json!({"sub": "a", "exp": exp, "iss": "https://evil.example/", "aud": "chat"}),
                false,
                "wrong iss",
            ),
            (
                serde_json::json!({"sub": "a", "exp": exp, "iss": "https://auth.example/", "aud": "other-app"}),
                false,
                "wrong aud",
            ),
            (
                serde_json::json!({"sub": "a", "exp": exp, "iss": "https://auth.example/", "aud": "chat", "nbf": unix_now() + 300}),
                false,
                "future nbf",
            ),
            (
                serde_json::json!({"sub": "a", "exp": exp, "iss": "https://auth.example/", "aud": ["x", "chat"]}),
                true,
                "aud list holding ours",
            ),
            (
                serde_json::json!({"sub": "a", "exp": exp, "iss": "https://auth.example/", "aud": "chat"}),
                true,
                "both right",
            ),
        ];
        for (claims, ok, what) in cases {
            let got = auth.verify(Some(&sign(claims)), "p").await;
            assert_eq!(got.is_ok(), ok, "{what}: {got:?}");
            if !ok {
                assert!(matches!(got, Err(AuthError::Invalid(_))), "{what}: {got:?}");
            }
        }
    }

    #[test]
    fn unusable_jwks_entries_are_skipped_and_an_unusable_set_is_refused() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures");
        let jwks: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("rs256-test-jwks.json")).expect("jwks"),
        )
        .expect("json");
        let good = jwks["keys"][0].clone();
        let junk = serde_json::json!([
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            {"kty": "XYZ", "kid": "unknown-type"},
            {"kty": "RSA", "n": good["n"], "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": good["n"], "e": "AQAB"},
            {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": good["n"], "e": "AQAB"},
            "not even an object",
        ]);
        let mut with_good = junk.as_array().expect("array").clone();
        with_good.push(good);
        let keys = parse_jwks(&serde_json::json!({ "keys": with_good }).to_string())
            .expect("one usable key is enough");
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["test-key-1"]);
        let Err(err) = parse_jwks(&serde_json::json!({ "keys": junk }).to_string()) else {
            panic!("a set with nothing usable was accepted");
        };
        assert!(err.to_string().contains("no usable RS256 key"), "{err}");
        assert!(
            err.to_string().contains("broken"),
            "says what was skipped: {err}"
        );
    }

    #[tokio::test]
    async fn rs256_key_rotation_replaces_the_key_set() {
        use jsonwebtoken::{encode, EncodingKey, Header};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures");
        let jwks = std::fs::read_to_string(dir.join("rs256-test-jwks.json")).expect("jwks");
        let pem = std::fs::read(dir.join("rs256-test-key.pem")).expect("pem");
        #[derive(serde::Serialize)]
        struct C {
            sub: &'static str,
            exp: u64,
        }
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("test-key-1".into());
        let token = encode(
            &header,
            &C {
                sub: "bob",
                exp: unix_now() + 600,
            },
            &EncodingKey::from_rsa_pem(&pem).expect("key"),
        )
        .expect("sign");
        let auth = Authenticator::rs256(&jwks, None, None).expect("jwks");
        assert_eq!(
            auth.verify(Some(&token), "p").await.expect("valid").subject,
            "user:bob"
        );
        assert!(auth.replace_jwks("{not json").is_err());
        assert!(
            auth.verify(Some(&token), "p").await.is_ok(),
            "a bad refresh keeps the old keys"
        );
        assert_eq!(
            auth.replace_jwks(&jwks.replace("test-key-1", "rotated"))
                .expect("rotate"),
            1
        );
        assert!(
            matches!(auth.verify(Some(&token), "p").await, Err(AuthError::Invalid(m)) if m.contains("unknown kid"))
        );
    }
}
