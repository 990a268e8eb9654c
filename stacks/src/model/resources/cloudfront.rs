//! CloudFront: distribution and origin request policy.

use serde::Serialize;
use serde_with::skip_serializing_none;

use super::{resource_type, Tag};
use crate::model::{Expr, Handle};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Distribution {
    pub distribution_config: DistributionConfig,
    pub tags: Vec<Tag>,
}
resource_type!(Distribution, "AWS::CloudFront::Distribution");

impl Handle<Distribution> {
    pub fn id(&self) -> Expr {
        self.reference()
    }
    pub fn domain_name(&self) -> Expr {
        self.attr("DomainName")
    }
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DistributionConfig {
    pub enabled: bool,
    pub comment: String,
    pub http_version: String,
    #[serde(rename = "IPV6Enabled")]
    pub ipv6_enabled: bool,
    pub price_class: String,
    pub aliases: Option<Vec<String>>,
    pub viewer_certificate: ViewerCertificate,
    pub origins: Vec<Origin>,
    pub default_cache_behavior: CacheBehavior,
    #[serde(rename = "WebACLId")]
    pub web_acl_id: Expr,
    /// Standard logging (legacy) to an S3 bucket.
    pub logging: Option<Logging>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Logging {
    /// `<bucket>.s3.amazonaws.com`.
    pub bucket: Expr,
    pub include_cookies: bool,
    pub prefix: String,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ViewerCertificate {
    pub acm_certificate_arn: Option<String>,
    pub ssl_support_method: Option<String>,
    pub minimum_protocol_version: Option<String>,
    pub cloud_front_default_certificate: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Origin {
    pub id: String,
    pub domain_name: Expr,
    pub custom_origin_config: CustomOriginConfig,
    /// Headers CloudFront adds to every request it sends to the origin.
    pub origin_custom_headers: Vec<OriginCustomHeader>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct OriginCustomHeader {
    pub header_name: String,
    pub header_value: Expr,
}

#[derive(Debug, Clone, Serialize)]
pub struct CustomOriginConfig {
    #[serde(rename = "HTTPPort")]
    pub http_port: u16,
    #[serde(rename = "HTTPSPort")]
    pub https_port: u16,
    #[serde(rename = "OriginProtocolPolicy")]
    pub origin_protocol_policy: String,
    #[serde(rename = "OriginReadTimeout")]
    pub origin_read_timeout: u32,
    #[serde(rename = "OriginKeepaliveTimeout")]
    pub origin_keepalive_timeout: u32,
    #[serde(rename = "OriginSSLProtocols")]
    pub origin_ssl_protocols: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CacheBehavior {
    pub target_origin_id: String,
    pub viewer_protocol_policy: String,
    pub allowed_methods: Vec<String>,
    pub cached_methods: Vec<String>,
    pub cache_policy_id: String,
    pub origin_request_policy_id: Expr,
    pub compress: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct OriginRequestPolicy {
    pub origin_request_policy_config: OriginRequestPolicyConfig,
}
resource_type!(OriginRequestPolicy, "AWS::CloudFront::OriginRequestPolicy");

impl Handle<OriginRequestPolicy> {
    pub fn id(&self) -> Expr {
        self.reference()
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct OriginRequestPolicyConfig {
    pub name: String,
    pub comment: String,
    pub headers_config: HeadersConfig,
    pub cookies_config: CookiesConfig,
    pub query_strings_config: QueryStringsConfig,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HeadersConfig {
    pub header_behavior: String,
    pub headers: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CookiesConfig {
    pub cookie_behavior: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueryStringsConfig {
    pub query_string_behavior: String,
}
