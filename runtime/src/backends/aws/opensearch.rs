//! [`OpenSearchRetriever`]: passage retrieval (PO-03) from the `search` stack's
//! OpenSearch Serverless collection. There is no SDK client for the OpenSearch data
//! plane, so this is one `POST /{index}/_search` through `reqwest`, signed with SigV4
//! (service `aoss`, with the `x-amz-content-sha256` header AOSS requires) using the
//! credentials of the shared [`aws_config::SdkConfig`], resolved through the shared
//! [`super::CredentialCache`] (once, reused until [`REFRESH_BEFORE_EXPIRY`] before they
//! expire).
//!
//! Index contract (runtime/README.md): one document per passage with `source_id`
//! (`catalog:<id>` or `faq:<id>`, as the embedded retriever uses), `title`, `text` and
//! `corpus` (`catalog` or `faq`, a keyword). The query is BM25 `multi_match` over
//! `title^2` and `text`, filtered by corpus; vector (k-NN) scoring is not used yet.

use super::CredentialCache;
use crate::backends::{BackendError, Retriever};
use crate::domain::{Corpus, Passage};
use async_trait::async_trait;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
};
use aws_sigv4::sign::v4;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use super::REFRESH_BEFORE_EXPIRY;

/// SigV4 service name of OpenSearch Serverless.
pub const SIGNING_SERVICE: &str = "aoss";

#[derive(Debug, thiserror::Error)]
pub enum OpenSearchError {
    #[error("OpenSearch configuration: {0}")]
    Config(String),
    #[error("OpenSearch credentials: {0}")]
    Credentials(String),
    #[error("OpenSearch request signing: {0}")]
    Signing(String),
    #[error("OpenSearch {url}: {message}")]
    Http { url: String, message: String },
    #[error("OpenSearch {url} answered HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("OpenSearch search response is malformed: {0}")]
    BadResponse(String),
}

impl From<OpenSearchError> for BackendError {
    fn from(e: OpenSearchError) -> Self {
        match e {
            OpenSearchError::BadResponse(_) => BackendError::Invalid(e.to_string()),
            _ => BackendError::Unavailable(e.to_string()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct OpenSearchRetriever {
    http: reqwest::Client,
    search_url: String,
    region: String,
    credentials: Arc<CredentialCache>,
}

impl OpenSearchRetriever {
    /// `endpoint`: the collection endpoint (`https://<id>.<region>.aoss.amazonaws.com`).
    pub fn new(
        config: &aws_config::SdkConfig,
        endpoint: &str,
        index: &str,
    ) -> Result<Self, OpenSearchError> {
        let region = config
            .region()
            .map(|r| r.as_ref().to_string())
            .ok_or_else(|| OpenSearchError::Config("no AWS region (set AWS_REGION)".into()))?;
        let credentials = config
            .credentials_provider()
            .ok_or_else(|| OpenSearchError::Config("no AWS credentials provider".into()))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(1))
            // Backstop only: the retrieval stage's budget cancels far earlier.
            .timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| OpenSearchError::Config(e.to_string()))?;
        Ok(OpenSearchRetriever {
            http,
            search_url: format!("{}/{index}/_search", endpoint.trim_end_matches('/')),
            region,
            credentials: Arc::new(CredentialCache::new(credentials)),
        })
    }

    async fn search(&self, body: &Value) -> Result<Value, OpenSearchError> {
        let body = body.to_string().into_bytes();
        let identity = self
            .credentials
            .get()
            .await
            .map_err(|e| OpenSearchError::Credentials(e.to_string()))?
            .into();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(SIGNING_SERVICE)
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| OpenSearchError::Signing(e.to_string()))?
            .into();
        let headers = [("content-type", "application/json")];
        let signable = SignableRequest::new(
            "POST",
            self.search_url.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| OpenSearchError::Signing(e.to_string()))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| OpenSearchError::Signing(e.to_string()))?
            .into_parts();
        let mut req = self.http.post(&self.search_url);
        for (name, value) in headers {
            req = req.header(name, value);
        }
        for (name, value) in instructions.headers() {
            req = req.header(name, value);
        }
        let http_err = |e: reqwest::Error| OpenSearchError::Http {
            url: self.search_url.clone(),
            message: e.to_string(),
        };
        let resp = req.body(body).send().await.map_err(http_err)?;
        let status = resp.status();
        let text = resp.text().await.map_err(http_err)?;
        if !status.is_success() {
            return Err(OpenSearchError::Status {
                url: self.search_url.clone(),
                status: status.as_u16(),
                body: text.chars().take(300).collect(),
            });
        }
        serde_json::from_str(&text).map_err(|e| OpenSearchError::BadResponse(e.to_string()))
    }
}

/// The `_search` request body for a query.
pub fn search_body(query: &str, k: usize, corpus: Corpus) -> Value {
    let filter = match corpus {
        Corpus::All => json!([]),
        Corpus::Catalog => json!([{ "term": { "corpus": "catalog" } }]),
        Corpus::Faq => json!([{ "term": { "corpus": "faq" } }]),
    };
    json!({
        "size": k,
        "_source": ["source_id", "title", "text"],
        "query": {
            "bool": {
                "must": [{ "multi_match": { "query": query, "fields": ["title^2", "text"] } }],
                "filter": filter
            }
        }
    })
}

/// Passages from a `_search` response (`hits.hits[]._source` and `_score`).
pub fn parse_hits(v: &Value) -> Result<Vec<Passage>, OpenSearchError> {
    let hits = v["hits"]["hits"]
        .as_array()
        .ok_or_else(|| OpenSearchError::BadResponse("no hits.hits array".into()))?;
    hits.iter()
        .map(|h| {
            let src = &h["_source"];
            let field = |name: &str| {
                src[name].as_str().map(str::to_string).ok_or_else(|| {
                    OpenSearchError::BadResponse(format!("hit without _source.{name}: {h}"))
                })
            };
            #[allow(clippy::cast_possible_truncation)] // a relevance score fits f32
            let score = h["_score"].as_f64().unwrap_or(0.0) as f32;
            Ok(Passage {
                source_id: field("source_id")?,
                title: field("title")?,
                text: field("text")?,
                score,
            })
        })
        .collect()
}

#[async_trait]
impl Retriever for OpenSearchRetriever {
    async fn retrieve(
        &self,
        query: &str,
        k: usize,
        corpus: Corpus,
    ) -> Result<Vec<Passage>, BackendError> {
        if k == 0 || query.trim().is_empty() {
            return Ok(Vec::new());
        }
        let v = self.search(&search_body(query, k, corpus)).await?;
        Ok(parse_hits(&v)?)
    }

    async fn ready(&self) -> Result<(), BackendError> {
        self.search(&json!({ "size": 0, "query": { "match_all": {} } }))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_filters_by_corpus() {
        let b = search_body("one piece", 3, Corpus::Faq);
        assert_eq!(b["size"], 3);
        assert_eq!(b["query"]["bool"]["filter"][0]["term"]["corpus"], "faq");
        assert_eq!(
            b["query"]["bool"]["must"][0]["multi_match"]["query"],
            "one piece"
        );
        assert_eq!(
            search_body("x", 1, Corpus::All)["query"]["bool"]["filter"],
            json!([])
        );
    }

    #[test]
    fn hits_become_passages_and_bad_hits_are_refused() {
        let v = json!({"hits": {"hits": [
            {"_score": 3.5, "_source": {"source_id": "faq:returns", "title": "Returns", "text": "30 days."}}
        ]}});
        let p = parse_hits(&v).expect("passages");
        assert_eq!(p[0].source_id, "faq:returns");
        assert!((p[0].score - 3.5).abs() < 1e-6);
        assert!(parse_hits(&json!({"hits": {"hits": [{"_source": {"title": "x"}}]}})).is_err());
        assert!(parse_hits(&json!({"error": "no index"})).is_err());
    }
}
