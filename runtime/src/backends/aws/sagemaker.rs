//! [`SageMakerIntentModel`]: the ML intent classifier (PO-02) behind the `intent` stack's
//! SageMaker real-time endpoint, called with `InvokeEndpoint`.
//!
//! Contract with the model container (runtime/README.md): request
//! `application/json` `{"inputs": "<customer text>"}` (the Hugging Face inference
//! toolkit's convention); response JSON in one of the shapes text classifiers commonly
//! return — `[{"label": "order_status", "score": 0.93}, …]` (best first, or the best is
//! picked), `{"label": …, "score": …}`, or `{"intent": …, "confidence": …}`. Labels are
//! the runtime's intent names ([`Intent::as_str`]).

use super::describe;
use crate::backends::{BackendError, IntentModel, Prediction};
use crate::domain::Intent;
use async_trait::async_trait;
use aws_sdk_sagemakerruntime::primitives::Blob;
use aws_sdk_sagemakerruntime::Client;
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum SageMakerError {
    #[error("SageMaker InvokeEndpoint {endpoint}: {message}")]
    Call { endpoint: String, message: String },
    #[error(
        "SageMaker endpoint {endpoint} answered something that is not a prediction: {message}"
    )]
    BadResponse { endpoint: String, message: String },
}

impl From<SageMakerError> for BackendError {
    fn from(e: SageMakerError) -> Self {
        match e {
            SageMakerError::Call { .. } => BackendError::Unavailable(e.to_string()),
            SageMakerError::BadResponse { .. } => BackendError::Invalid(e.to_string()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SageMakerIntentModel {
    client: Client,
    endpoint: String,
}

impl SageMakerIntentModel {
    pub fn new(config: &aws_config::SdkConfig, endpoint: &str) -> Self {
        SageMakerIntentModel {
            client: Client::new(config),
            endpoint: endpoint.to_string(),
        }
    }

    async fn invoke(&self, text: &str) -> Result<Prediction, SageMakerError> {
        let out = self
            .client
            .invoke_endpoint()
            .endpoint_name(&self.endpoint)
            .content_type("application/json")
            .accept("application/json")
            .body(Blob::new(json!({ "inputs": text }).to_string()))
            .send()
            .await
            .map_err(|e| SageMakerError::Call {
                endpoint: self.endpoint.clone(),
                message: describe(&e),
            })?;
        let body = out.body().map(Blob::as_ref).unwrap_or_default();
        parse_prediction(body).map_err(|message| SageMakerError::BadResponse {
            endpoint: self.endpoint.clone(),
            message,
        })
    }
}

/// The prediction in a response body (see the module docs for the accepted shapes).
pub fn parse_prediction(body: &[u8]) -> Result<Prediction, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON ({e})"))?;
    let one = |o: &Value| -> Option<(String, f64)> {
        let label = o.get("label").or_else(|| o.get("intent"))?.as_str()?;
        let score = o.get("score").or_else(|| o.get("confidence"))?.as_f64()?;
        Some((label.to_string(), score))
    };
    let best = match &v {
        Value::Array(items) => items
            .iter()
            .filter_map(one)
            .max_by(|a, b| a.1.total_cmp(&b.1)),
        Value::Object(_) => one(&v),
        _ => None,
    };
    let (label, score) = best.ok_or_else(|| format!("no label and score in {v}"))?;
    let intent = Intent::parse(&label).ok_or_else(|| format!("unknown intent label `{label}`"))?;
    if !(0.0..=1.0).contains(&score) {
        return Err(format!("score {score} outside 0..=1"));
    }
    #[allow(clippy::cast_possible_truncation)] // a probability fits f32
    Ok(Prediction {
        intent,
        confidence: score as f32,
    })
}

#[async_trait]
impl IntentModel for SageMakerIntentModel {
    async fn classify(&self, text: &str) -> Result<Prediction, BackendError> {
        Ok(self.invoke(text).await?)
    }

    /// The task role may only invoke the endpoint (no DescribeEndpoint), so readiness is
    /// one small invocation; `/readyz` is polled rarely.
    async fn ready(&self) -> Result<(), BackendError> {
        self.invoke("hello").await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_common_classifier_response_shapes() {
        let hf = br#"[{"label":"greeting","score":0.1},{"label":"order_status","score":0.85}]"#;
        let p = parse_prediction(hf).expect("list");
        assert_eq!(p.intent, Intent::OrderStatus);
        assert!((p.confidence - 0.85).abs() < 1e-6);
        let p = parse_prediction(br#"{"label":"escalation","score":0.6}"#).expect("object");
        assert_eq!(p.intent, Intent::Escalation);
        let p =
            parse_prediction(br#"{"intent":"return_policy","confidence":1.0}"#).expect("intent");
        assert_eq!(p.intent, Intent::ReturnPolicy);
    }

    #[test]
    fn refuses_what_is_not_a_prediction() {
        for body in [
            &b"body"[..],
            br#"{"label":"smalltalk","score":0.9}"#,
            br#"{"label":"greeting","score":7}"#,
            br#"[]"#,
            br#"{"predictions":[0.1,0.9]}"#,
        ] {
            assert!(
                parse_prediction(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
