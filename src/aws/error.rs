//! One home for a failed AWS call: what the user reads and what the code
//! decides from.
//!
//! Every SDK error of every service the CLI calls becomes an [`AwsError`]
//! through [`AwsError::from_sdk`]: the service, the operation, the resource
//! it was about, the service's error code and message, the HTTP status and
//! the request id (what AWS Support asks for). An answer without a code or a
//! message (an emulator that does not implement an operation answers a bare
//! HTTP 404 or 501) says so instead of printing `Unknown: (no message)`.
//!
//! [`ErrorClass`] sorts failures into what callers act on (retry a
//! throttle, report a check as incomplete on a timeout, tell the user to
//! fix permissions, treat "not found" as absence, name an emulator gap), so
//! no command matches on message strings. The trait implementations
//! (`cloudformation.rs`, `opensearch.rs`) and the fakes (`src/fakes/`)
//! build their errors here.

use std::fmt;

use aws_sdk_cloudformation::config::http::HttpResponse;
use aws_sdk_cloudformation::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cloudformation::operation::RequestId;

/// What kind of failure a call met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The service throttled the call (HTTP 429 or a throttling code); try again later.
    Throttled,
    /// No answer in time (connect, read or operation timeout).
    TimedOut,
    /// The caller may not do this (missing permission, bad or expired credentials).
    AccessDenied,
    /// The resource does not exist.
    NotFound,
    /// The endpoint does not implement the operation (typically an emulator).
    NotImplemented,
    /// Anything else: read the code and message.
    Other,
}

/// A failed AWS call, with everything needed to say what went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct AwsError {
    /// The service, as people name it (`CloudFormation`, `OpenSearch Serverless`).
    pub service: &'static str,
    /// The API operation (`CreateChangeSet`).
    pub operation: &'static str,
    /// What the call was about (a stack name); `None` for account-wide calls.
    pub resource: Option<Box<str>>,
    /// The service's error code; `None` when the answer carried none or
    /// there was no answer.
    pub code: Option<Box<str>>,
    /// The service's message, or what kept the call from being answered.
    pub message: String,
    /// The HTTP status of the answer; `None` when no answer came (network,
    /// credentials, timeout before any response).
    pub http_status: Option<u16>,
    /// The request id of the answer, if one came.
    pub request_id: Option<Box<str>>,
    /// What kind of failure this is.
    pub class: ErrorClass,
}

/// Throttling codes across the AWS query and JSON protocols.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "ProvisionedThroughputExceededException",
];

/// Codes that mean the caller is not allowed (permissions or credentials).
const ACCESS_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "AuthFailure",
    "MissingAuthenticationToken",
];

/// Codes that mean the resource is not there.
const NOT_FOUND_CODES: &[&str] = &[
    "ResourceNotFoundException",
    "NotFound",
    "NotFoundException",
    "StackNotFoundException",
    "ChangeSetNotFound",
    "ChangeSetNotFoundException",
    // ECS DescribeServices, ElastiCache DescribeReplicationGroups, DAX
    // DescribeClusters (their API references' error lists).
    "ClusterNotFoundException",
    "ServiceNotFoundException",
    "ReplicationGroupNotFoundFault",
    "ClusterNotFoundFault",
    // ECR DescribeImages, S3 (HeadObject answers a bare 404 as well).
    "RepositoryNotFoundException",
    "ImageNotFoundException",
    "NoSuchKey",
    "NoSuchBucket",
];

/// Codes that mean the endpoint does not know the operation.
const NOT_IMPLEMENTED_CODES: &[&str] = &[
    "NotImplemented",
    "InvalidAction",
    "UnknownOperationException",
    "UnsupportedOperation",
];

impl AwsError {
    /// An error the service answered with (for fakes and tests: the shape
    /// an SDK error takes once converted).
    pub fn service(
        service: &'static str,
        operation: &'static str,
        resource: Option<&str>,
        code: &str,
        message: impl Into<String>,
    ) -> AwsError {
        let message = message.into();
        let code = Some(Box::from(code));
        AwsError {
            service,
            operation,
            resource: resource.map(Box::from),
            class: classify(code.as_deref(), &message, Some(400)),
            code,
            message,
            http_status: Some(400),
            request_id: None,
        }
    }

    /// A call that got no answer (for fakes and tests).
    pub fn unanswered(
        service: &'static str,
        operation: &'static str,
        resource: Option<&str>,
        message: impl Into<String>,
        class: ErrorClass,
    ) -> AwsError {
        AwsError {
            service,
            operation,
            resource: resource.map(Box::from),
            code: None,
            message: message.into(),
            http_status: None,
            request_id: None,
            class,
        }
    }

    /// Converts an SDK error of any AWS SDK for Rust client. Every SDK
    /// crate shares `SdkError` and its HTTP response type with the
    /// CloudFormation crate's re-exports used here.
    pub fn from_sdk<E>(
        service: &'static str,
        operation: &'static str,
        resource: Option<&str>,
        err: SdkError<E, HttpResponse>,
    ) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let http_status = err.raw_response().map(|r| r.status().as_u16());
        let request_id = err.request_id().map(Box::from);
        match &err {
            SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
                let code = err.code().filter(|c| !c.is_empty()).map(Box::from);
                let message = err
                    .message()
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .unwrap_or_default();
                AwsError {
                    service,
                    operation,
                    resource: resource.map(Box::from),
                    class: classify(code.as_deref(), &message, http_status),
                    code,
                    message,
                    http_status,
                    request_id,
                }
            }
            SdkError::TimeoutError(_) => Self::unanswered(
                service,
                operation,
                resource,
                DisplayErrorContext(&err).to_string(),
                ErrorClass::TimedOut,
            ),
            SdkError::DispatchFailure(d) => {
                let class = if d.is_timeout() {
                    ErrorClass::TimedOut
                } else {
                    ErrorClass::Other
                };
                Self::unanswered(
                    service,
                    operation,
                    resource,
                    DisplayErrorContext(&err).to_string(),
                    class,
                )
            }
            _ => Self::unanswered(
                service,
                operation,
                resource,
                DisplayErrorContext(&err).to_string(),
                ErrorClass::Other,
            ),
        }
    }

    /// The service's error code, if the answer had one.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The service's message (or why there was no answer).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The code and message as one line, for per-resource failure lists:
    /// `ValidationError: Template format error`, or `HTTP 404 with no error
    /// code or message` for a bare answer.
    pub fn reason(&self) -> String {
        match (&self.code, self.message.is_empty()) {
            (Some(code), false) => format!("{code}: {}", self.message),
            (Some(code), true) => format!("{code} (no message)"),
            (None, false) => self.message.clone(),
            (None, true) => match self.http_status {
                Some(s) => format!("HTTP {s} with no error code or message"),
                None => "no answer".to_owned(),
            },
        }
    }

    /// Whether the endpoint answered with an error of its own (it was
    /// reached and understood the call) rather than no answer.
    pub fn is_answer(&self) -> bool {
        self.http_status.is_some()
    }
}

/// Classifies an answered error from its code, message and HTTP status.
fn classify(code: Option<&str>, message: &str, status: Option<u16>) -> ErrorClass {
    let is = |list: &[&str]| code.is_some_and(|c| list.contains(&c));
    if is(THROTTLING_CODES) || status == Some(429) {
        ErrorClass::Throttled
    } else if is(ACCESS_CODES) || (code.is_none() && status == Some(403)) {
        ErrorClass::AccessDenied
    } else if is(NOT_IMPLEMENTED_CODES)
        || status == Some(501)
        || (code.is_none() && message.is_empty() && matches!(status, Some(404 | 405 | 500)))
    {
        // An answer with neither code nor message: AWS's error responses
        // always carry a code, so this endpoint does not speak the
        // operation's protocol (moto answers an operation it lacks with a
        // bare HTML 404 or 500).
        ErrorClass::NotImplemented
    } else if is(NOT_FOUND_CODES)
        || status == Some(404)
        // CloudFormation reports a missing stack as a ValidationError whose
        // message says it does not exist (there is no dedicated code).
        || (code == Some("ValidationError") && message.contains("does not exist"))
        // SageMaker likewise: DescribeEndpoint of a missing endpoint is a
        // ValidationException "Could not find endpoint ...".
        || (code == Some("ValidationException") && message.starts_with("Could not find"))
    {
        ErrorClass::NotFound
    } else if status == Some(408) || status == Some(504) {
        ErrorClass::TimedOut
    } else {
        ErrorClass::Other
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.service, self.operation)?;
        if let Some(r) = &self.resource {
            write!(f, " on `{r}`")?;
        }
        if !self.is_answer() {
            return write!(f, " failed: {}", self.message);
        }
        write!(f, ": {}", self.reason())?;
        let mut extra = Vec::new();
        match self.http_status {
            // A bare answer's reason already names its status.
            Some(s) if self.code.is_some() || !self.message.is_empty() => {
                extra.push(format!("HTTP {s}"))
            }
            _ => {}
        }
        if let Some(id) = &self.request_id {
            extra.push(format!("request id {id}"));
        }
        if self.class == ErrorClass::NotImplemented {
            extra.push("the endpoint likely does not implement this operation".to_owned());
        }
        if !extra.is_empty() {
            write!(f, " ({})", extra.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_codes_and_statuses() {
        assert_eq!(
            classify(Some("Throttling"), "Rate exceeded", Some(400)),
            ErrorClass::Throttled
        );
        assert_eq!(classify(None, "", Some(429)), ErrorClass::Throttled);
        assert_eq!(
            classify(Some("AccessDenied"), "User is not authorized", Some(403)),
            ErrorClass::AccessDenied
        );
        assert_eq!(classify(None, "", Some(404)), ErrorClass::NotImplemented);
        assert_eq!(classify(None, "", Some(500)), ErrorClass::NotImplemented);
        assert_eq!(
            classify(Some("InternalFailure"), "", Some(500)),
            ErrorClass::Other
        );
        assert_eq!(
            classify(
                Some("ValidationError"),
                "Stack with id x does not exist",
                Some(400)
            ),
            ErrorClass::NotFound
        );
        assert_eq!(
            classify(
                Some("ResourceNotFoundException"),
                "no such collection",
                Some(404)
            ),
            ErrorClass::NotFound
        );
        assert_eq!(
            classify(Some("ValidationError"), "Template format error", Some(400)),
            ErrorClass::Other
        );
    }

    #[test]
    fn a_bare_answer_is_named_not_flattened() {
        let e = AwsError {
            service: "CloudFormation",
            operation: "UpdateTerminationProtection",
            resource: Some("mangaassist-prod-network".into()),
            code: None,
            message: String::new(),
            http_status: Some(404),
            request_id: Some("req-1".into()),
            class: ErrorClass::NotImplemented,
        };
        assert_eq!(
            e.to_string(),
            "CloudFormation UpdateTerminationProtection on `mangaassist-prod-network`: HTTP 404 with no error code or message (request id req-1, the endpoint likely does not implement this operation)"
        );
        let e = AwsError::service(
            "CloudFormation",
            "CreateChangeSet",
            Some("s"),
            "ValidationError",
            "bad",
        );
        assert_eq!(
            e.to_string(),
            "CloudFormation CreateChangeSet on `s`: ValidationError: bad (HTTP 400)"
        );
    }
}
