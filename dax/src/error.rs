//! The client's errors, with DynamoDB's error kinds: a DAX error response carries a
//! path of numeric codes (`[4, 37, 38, 39, 43]` is a conditional check failure),
//! mapped here as the official clients map them (Python `amazondax/DaxError.py`,
//! `ERROR_MAP`), so callers match the same kinds as with the AWS SDK.

use thiserror::Error;

/// DynamoDB's error kinds (the SDK's `…Exception` names, from [`ErrorKind::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    ConditionalCheckFailed,
    ResourceNotFound,
    ResourceInUse,
    ProvisionedThroughputExceeded,
    Throttling,
    RequestLimitExceeded,
    LimitExceeded,
    Validation,
    InternalServerError,
    ItemCollectionSizeLimitExceeded,
    TransactionCanceled,
    AccessDenied,
    /// Codes this client does not know.
    Unknown,
}

impl ErrorKind {
    /// The DynamoDB error code, as the official client reports it.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::ConditionalCheckFailed => "ConditionalCheckFailedException",
            ErrorKind::ResourceNotFound => "ResourceNotFoundException",
            ErrorKind::ResourceInUse => "ResourceInUseException",
            ErrorKind::ProvisionedThroughputExceeded => "ProvisionedThroughputExceededException",
            ErrorKind::Throttling => "ThrottlingException",
            ErrorKind::RequestLimitExceeded => "RequestLimitExceededException",
            ErrorKind::LimitExceeded => "LimitExceededException",
            ErrorKind::Validation => "ValidationException",
            ErrorKind::InternalServerError => "InternalServerErrorException",
            ErrorKind::ItemCollectionSizeLimitExceeded => {
                "ItemCollectionSizeLimitExceededException"
            }
            ErrorKind::TransactionCanceled => "TransactionCanceledException",
            ErrorKind::AccessDenied => "AccessDeniedException",
            ErrorKind::Unknown => "UnknownError",
        }
    }

    /// The kind of a DAX code path.
    pub fn from_codes(codes: &[i64]) -> ErrorKind {
        match codes {
            [3, 37, 54] => ErrorKind::InternalServerError,
            [4, 23, 24] => ErrorKind::ResourceNotFound,
            [4, 23, 35] => ErrorKind::ResourceInUse,
            [4, 37, 38, 42] => ErrorKind::AccessDenied,
            [4, 37, 38, 44] => ErrorKind::Validation,
            [4, 37, 38, 39, last] => match last {
                40 => ErrorKind::ProvisionedThroughputExceeded,
                41 => ErrorKind::ResourceNotFound,
                43 => ErrorKind::ConditionalCheckFailed,
                45 => ErrorKind::ResourceInUse,
                46 => ErrorKind::Validation,
                47 => ErrorKind::InternalServerError,
                48 => ErrorKind::ItemCollectionSizeLimitExceeded,
                49 => ErrorKind::LimitExceeded,
                50 => ErrorKind::Throttling,
                58 => ErrorKind::TransactionCanceled,
                61 => ErrorKind::RequestLimitExceeded,
                _ => ErrorKind::Unknown,
            },
            _ => ErrorKind::Unknown,
        }
    }

    /// The code path a server sends for this kind (the test server's errors).
    pub fn codes(self) -> &'static [i64] {
        match self {
            ErrorKind::ConditionalCheckFailed => &[4, 37, 38, 39, 43],
            ErrorKind::ResourceNotFound => &[4, 37, 38, 39, 41],
            ErrorKind::ResourceInUse => &[4, 37, 38, 39, 45],
            ErrorKind::ProvisionedThroughputExceeded => &[4, 37, 38, 39, 40],
            ErrorKind::Throttling => &[4, 37, 38, 39, 50],
            ErrorKind::RequestLimitExceeded => &[4, 37, 38, 39, 61],
            ErrorKind::LimitExceeded => &[4, 37, 38, 39, 49],
            ErrorKind::Validation => &[4, 37, 38, 39, 46],
            ErrorKind::InternalServerError => &[4, 37, 38, 39, 47],
            ErrorKind::ItemCollectionSizeLimitExceeded => &[4, 37, 38, 39, 48],
            ErrorKind::TransactionCanceled => &[4, 37, 38, 39, 58],
            ErrorKind::AccessDenied => &[4, 37, 38, 42],
            ErrorKind::Unknown => &[4],
        }
    }

    /// Throttling kinds, retried after a backoff (the official clients'
    /// `RETRYABLE_ERRORS_WITH_THROTTLE`).
    pub fn is_throttling(self) -> bool {
        matches!(
            self,
            ErrorKind::Throttling
                | ErrorKind::ProvisionedThroughputExceeded
                | ErrorKind::RequestLimitExceeded
                | ErrorKind::LimitExceeded
        )
    }
}

#[derive(Debug, Error)]
pub enum DaxError {
    /// An error response from DAX.
    #[error("DAX {kind:?} ({codes:?}): {message}")]
    Service {
        kind: ErrorKind,
        codes: Vec<i64>,
        message: String,
        request_id: Option<String>,
        http_status: Option<u16>,
    },
    /// A request refused before it was sent (DynamoDB's ValidationException).
    #[error("DAX request invalid: {0}")]
    Validation(String),
    /// Connecting, reading or writing failed, or the node closed the connection.
    #[error("DAX connection to {node}: {message}")]
    Connection { node: String, message: String },
    #[error("DAX call to {node} timed out after {after_ms} ms")]
    Timeout { node: String, after_ms: u64 },
    /// No healthy node is known.
    #[error("no DAX node available: {0}")]
    NoRoute(String),
    /// The response does not follow the protocol.
    #[error("malformed DAX response: {0}")]
    Protocol(String),
    #[error("AWS credentials for DAX: {0}")]
    Credentials(String),
    #[error("DAX configuration: {0}")]
    Config(String),
}

impl DaxError {
    /// DynamoDB's error kind, where the error has one.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            DaxError::Service { kind, .. } => Some(*kind),
            DaxError::Validation(_) => Some(ErrorKind::Validation),
            _ => None,
        }
    }

    /// The error code the official client reports for the same failure.
    pub fn code(&self) -> &'static str {
        match self {
            DaxError::Service { kind, .. } => kind.code(),
            DaxError::Validation(_) | DaxError::Config(_) => "ValidationException",
            DaxError::Connection { .. } | DaxError::Timeout { .. } => "ConnectionException",
            DaxError::NoRoute(_) => "NoRouteException",
            DaxError::Protocol(_) => "MalformedResultException",
            DaxError::Credentials(_) => "MissingAuthenticationTokenException",
        }
    }

    /// Whether the node, not the request, failed: the call may go to another node,
    /// and a read may count against the node's health.
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            DaxError::Connection { .. } | DaxError::Timeout { .. } | DaxError::Protocol(_)
        )
    }

    /// Retryable as the official clients decide (`is_retryable` in DaxError.py): a
    /// service error whose code path does not start with 3 (DAX's "unretryable
    /// server error") — which includes conditional check failures and unknown
    /// tables, retried by the official client too, so both send the same requests —
    /// internal errors, HTTP 408/429/500/503; and (this client's failover) transport
    /// failures, retried on another node. Client-side validation is never retried.
    pub fn is_retryable(&self) -> bool {
        match self {
            DaxError::Service {
                codes,
                kind,
                http_status,
                ..
            } => {
                (!codes.is_empty() && codes[0] != 3)
                    || matches!(
                        kind,
                        ErrorKind::InternalServerError | ErrorKind::TransactionCanceled
                    )
                    || matches!(http_status, Some(408 | 429 | 500 | 503))
            }
            DaxError::Connection { .. } | DaxError::Timeout { .. } | DaxError::NoRoute(_) => true,
            _ => false,
        }
    }
}
