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
//! `corpus` (`catalog` or `faq`, a keyword), and the keyword/number fields of
//! [`crate::backends::corpus::IndexDoc`] that the question's [`Filters`] test
//! (`demographic`, `genres`, `volumes`, `price_cents`). The query is BM25 `multi_match`
//! over `title^2` and `text` in a `bool` whose `filter` holds the corpus and the
//! question's constraints ([`filter_clauses`]).

use super::CredentialCache;
use crate::backends::embed::Embedder;
use crate::backends::filters::Filters;
use crate::backends::hybrid::{fuse, CANDIDATES};
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

/// A SigV4-signed (service `aoss`) HTTP client for one collection endpoint: the
/// retriever's searches and `manga-runtime index`'s requests ([`super::index`]).
#[derive(Debug, Clone)]
pub struct AossClient {
    http: reqwest::Client,
    endpoint: String,
    region: String,
    credentials: Arc<CredentialCache>,
}

/// An answer: HTTP status and body (every status: callers decide what is an error).
#[derive(Debug, Clone)]
pub struct AossResponse {
    pub status: u16,
    pub body: String,
}

impl AossClient {
    /// `endpoint`: the collection endpoint (`https://<id>.<region>.aoss.amazonaws.com`).
    pub fn new(
        config: &aws_config::SdkConfig,
        endpoint: &str,
        timeout: Duration,
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
            .timeout(timeout)
            .build()
            .map_err(|e| OpenSearchError::Config(e.to_string()))?;
        Ok(AossClient {
            http,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            region,
            credentials: Arc::new(CredentialCache::new(credentials)),
        })
    }

    /// One signed request; `path` starts with `/` and may carry a query.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<AossResponse, OpenSearchError> {
        let url = format!("{}{path}", self.endpoint);
        let (content_type, body) = body.unwrap_or(("application/json", Vec::new()));
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
        let headers = [("content-type", content_type)];
        let signable = SignableRequest::new(
            method,
            url.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| OpenSearchError::Signing(e.to_string()))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| OpenSearchError::Signing(e.to_string()))?
            .into_parts();
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| OpenSearchError::Config(e.to_string()))?;
        let mut req = self.http.request(method, &url);
        for (name, value) in headers {
            req = req.header(name, value);
        }
        for (name, value) in instructions.headers() {
            req = req.header(name, value);
        }
        let http_err = |e: reqwest::Error| OpenSearchError::Http {
            url: url.clone(),
            message: e.to_string(),
        };
        let resp = req.body(body).send().await.map_err(http_err)?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(http_err)?;
        Ok(AossResponse { status, body })
    }

    /// A JSON request whose answer must be 2xx JSON.
    pub async fn json(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, OpenSearchError> {
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        let r = self.send(method, path, body).await?;
        if !(200..300).contains(&r.status) {
            return Err(OpenSearchError::Status {
                url: format!("{}{path}", self.endpoint),
                status: r.status,
                body: r.body.chars().take(300).collect(),
            });
        }
        serde_json::from_str(&r.body).map_err(|e| OpenSearchError::BadResponse(e.to_string()))
    }
}

/// Name of the vector field in the index mapping ([`super::index::mapping`]).
pub const VECTOR_FIELD: &str = "embedding";

#[derive(Debug, Clone)]
pub struct OpenSearchRetriever {
    client: AossClient,
    search_path: String,
    /// With an embedder, BM25 and k-NN are fused (RRF, as the embedded retriever does);
    /// without, BM25 alone.
    embedder: Option<Arc<dyn Embedder>>,
}

impl OpenSearchRetriever {
    /// `endpoint`: the collection endpoint (`https://<id>.<region>.aoss.amazonaws.com`).
    pub fn new(
        config: &aws_config::SdkConfig,
        endpoint: &str,
        index: &str,
    ) -> Result<Self, OpenSearchError> {
        Ok(OpenSearchRetriever {
            // Backstop only: the retrieval stage's budget cancels far earlier.
            client: AossClient::new(config, endpoint, Duration::from_secs(3))?,
            search_path: format!("/{index}/_search"),
            embedder: None,
        })
    }

    /// Hybrid retrieval: the index must hold vectors of this embedder's model.
    pub fn with_embedder(mut self, embedder: Arc<dyn Embedder>) -> Self {
        self.embedder = Some(embedder);
        self
    }

    async fn search(&self, body: &Value) -> Result<Value, OpenSearchError> {
        self.client
            .json("POST", &self.search_path, Some(body))
            .await
    }
}

/// The `bool.filter` clauses for a corpus and a question's constraints: the same
/// admission rule as [`crate::backends::corpus::IndexDoc::admitted_by`] (FAQ passages
/// have no demographic, genre or price, so those clauses exclude them; a volume number
/// alone does not).
pub fn filter_clauses(corpus: Corpus, f: &Filters) -> Vec<Value> {
    let mut out = Vec::new();
    match corpus {
        Corpus::All => {}
        Corpus::Catalog => out.push(json!({ "term": { "corpus": "catalog" } })),
        Corpus::Faq => out.push(json!({ "term": { "corpus": "faq" } })),
    }
    if let Some(d) = &f.demographic {
        out.push(json!({ "term": { "demographic": d } }));
    }
    for g in &f.genres {
        out.push(json!({ "term": { "genres": g } }));
    }
    if f.min_price_cents.is_some() || f.max_price_cents.is_some() {
        let mut range = serde_json::Map::new();
        if let Some(p) = f.min_price_cents {
            range.insert("gte".into(), json!(p));
        }
        if let Some(p) = f.max_price_cents {
            range.insert("lte".into(), json!(p));
        }
        out.push(json!({ "range": { "price_cents": range } }));
    }
    if let Some(v) = f.volume {
        out.push(json!({ "bool": { "should": [
            { "range": { "volumes": { "gte": v } } },
            { "term": { "corpus": "faq" } }
        ], "minimum_should_match": 1 } }));
    }
    out
}

/// The `_search` request body for a query.
pub fn search_body(query: &str, k: usize, corpus: Corpus, filters: &Filters) -> Value {
    json!({
        "size": k,
        "_source": ["source_id", "title", "text"],
        "query": {
            "bool": {
                "must": [{ "multi_match": { "query": query, "fields": ["title^2", "text"] } }],
                "filter": filter_clauses(corpus, filters)
            }
        }
    })
}

/// The k-NN `_search` body: the `knn` query with the question's constraints as its
/// `filter` (faiss HNSW filters during the graph search, so `k` results survive it).
pub fn knn_body(vector: &[f32], k: usize, corpus: Corpus, filters: &Filters) -> Value {
    let mut knn = json!({ "vector": vector, "k": k });
    let clauses = filter_clauses(corpus, filters);
    if !clauses.is_empty() {
        knn["filter"] = json!({ "bool": { "filter": clauses } });
    }
    json!({
        "size": k,
        "_source": ["source_id", "title", "text"],
        "query": { "knn": { VECTOR_FIELD: knn } }
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
        filters: &Filters,
    ) -> Result<Vec<Passage>, BackendError> {
        if k == 0 || query.trim().is_empty() {
            return Ok(Vec::new());
        }
        let Some(embedder) = &self.embedder else {
            let v = self.search(&search_body(query, k, corpus, filters)).await?;
            return Ok(parse_hits(&v)?);
        };
        let vector = embedder
            .embed(&[query.to_string()])
            .await?
            .pop()
            .ok_or_else(|| BackendError::Invalid("no query embedding".into()))?;
        let lexical_body = search_body(query, CANDIDATES, corpus, filters);
        let knn = knn_body(&vector, CANDIDATES, corpus, filters);
        let (lexical, semantic) = tokio::join!(self.search(&lexical_body), self.search(&knn));
        let (lexical, semantic) = (parse_hits(&lexical?)?, parse_hits(&semantic?)?);
        // Fused by position, as the embedded retriever does (backends/hybrid.rs).
        let mut passages: Vec<Passage> = Vec::new();
        let mut ranked = |hits: Vec<Passage>| -> Vec<(usize, f32)> {
            hits.into_iter()
                .map(|p| {
                    let i = match passages.iter().position(|q| q.source_id == p.source_id) {
                        Some(i) => i,
                        None => {
                            passages.push(p);
                            passages.len() - 1
                        }
                    };
                    (i, 0.0)
                })
                .collect()
        };
        let (a, b) = (ranked(lexical), ranked(semantic));
        Ok(fuse(&[&a, &b], k)
            .into_iter()
            .map(|(i, score)| Passage {
                score,
                ..passages[i].clone()
            })
            .collect())
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
        let none = Filters::default();
        let b = search_body("one piece", 3, Corpus::Faq, &none);
        assert_eq!(b["size"], 3);
        assert_eq!(b["query"]["bool"]["filter"][0]["term"]["corpus"], "faq");
        assert_eq!(
            b["query"]["bool"]["must"][0]["multi_match"]["query"],
            "one piece"
        );
        assert_eq!(
            search_body("x", 1, Corpus::All, &none)["query"]["bool"]["filter"],
            json!([])
        );
        let f = Filters {
            demographic: Some("seinen".into()),
            genres: vec!["thriller".into()],
            max_price_cents: Some(999),
            ..Filters::default()
        };
        let clauses = filter_clauses(Corpus::Catalog, &f);
        assert_eq!(clauses[1], json!({"term": {"demographic": "seinen"}}));
        assert_eq!(clauses[2], json!({"term": {"genres": "thriller"}}));
        assert_eq!(clauses[3], json!({"range": {"price_cents": {"lte": 999}}}));
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
