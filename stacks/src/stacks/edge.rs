//! `edge`: CloudFront in front of the ALB (HTTPS only for viewers, caching
//! disabled for the chat path, an origin request policy that carries the
//! WebSocket handshake, the origin secret header the ALB requires) and a CLOUDFRONT-scoped WAFv2 web ACL with a
//! rate-based rule and AWS managed rule groups.

use std::collections::BTreeMap;

use super::{service, Inputs, StackId};
use crate::model::resources::cloudfront::*;
use crate::model::resources::wafv2::{
    self, Action, ManagedRuleGroup, OverrideAction, RateBased, Rule, VisibilityConfig, WebAcl,
};
use crate::model::{Expr, OutputKey, Template};

pub const DISTRIBUTION_ID: OutputKey = OutputKey::new("edge", "DistributionId");
pub const DISTRIBUTION_DOMAIN: OutputKey = OutputKey::new("edge", "DistributionDomainName");

/// AWS managed cache policy `Managed-CachingDisabled`.
pub const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";

/// Headers the WebSocket upgrade needs at the origin. With a custom domain
/// `Host` is forwarded too, so CloudFront checks the ALB's certificate
/// against the viewer's host name rather than the ALB's DNS name.
fn forwarded_headers(with_host: bool) -> Vec<String> {
    let mut h: Vec<String> = [
        "Sec-WebSocket-Extensions",
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Protocol",
        "Sec-WebSocket-Version",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    if with_host {
        h.insert(0, "Host".into());
    }
    h
}

/// Requests per IP per 5-minute window before WAF blocks: ten times what
/// one session sends at the target rate, so a shared NAT of a few users
/// passes and a script does not.
fn rate_limit(i: &Inputs<'_>) -> u32 {
    let per_session = i.env.targets.traffic.messages_per_session_per_minute * 5.0;
    ((per_session * 10.0).ceil() as u32).clamp(100, 20_000_000)
}

pub fn template(i: &Inputs<'_>) -> Template {
    let id = StackId::Edge;
    let mut t = i.template(id, "CloudFront distribution and WAF in front of the ALB");
    let tags = i.tags(id);
    let name = i.prefix();
    let metric = |s: &str| VisibilityConfig::named(&format!("{}{s}", name.replace('-', "")));
    let empty = BTreeMap::new;

    let managed = |priority: u32, group: &str| Rule::Managed {
        name: group.to_owned(),
        priority,
        statement: wafv2::Statement::ManagedRuleGroupStatement(ManagedRuleGroup {
            vendor_name: "AWS".into(),
            name: group.to_owned(),
        }),
        override_action: OverrideAction::None(empty()),
        visibility_config: metric(group),
    };
    let acl = t.add(
        "WebAcl",
        WebAcl {
            name: format!("{name}-edge"),
            description: "Rate limit per client IP plus AWS managed protections".into(),
            scope: "CLOUDFRONT".into(),
            default_action: Action::Allow(empty()),
            visibility_config: metric("WebAcl"),
            rules: vec![
                Rule::Rate {
                    name: "RatePerIp".into(),
                    priority: 0,
                    statement: wafv2::Statement::RateBasedStatement(RateBased {
                        limit: rate_limit(i),
                        evaluation_window_sec: 300,
                        aggregate_key_type: "IP".into(),
                    }),
                    action: Action::Block(empty()),
                    visibility_config: metric("RatePerIp"),
                },
                managed(1, "AWSManagedRulesAmazonIpReputationList"),
                managed(2, "AWSManagedRulesCommonRuleSet"),
                managed(3, "AWSManagedRulesKnownBadInputsRuleSet"),
            ],
            tags: tags.clone(),
        },
    );

    let with_domain = i.env.domain.is_some();
    let policy = t.add(
        "WebSocketOriginRequestPolicy",
        OriginRequestPolicy {
            origin_request_policy_config: OriginRequestPolicyConfig {
                name: format!("{name}-websocket"),
                comment:
                    "WebSocket handshake headers and all query strings (the token may travel there)"
                        .into(),
                headers_config: HeadersConfig {
                    header_behavior: "whitelist".into(),
                    headers: Some(forwarded_headers(with_domain)),
                },
                cookies_config: CookiesConfig {
                    cookie_behavior: "none".into(),
                },
                query_strings_config: QueryStringsConfig {
                    query_string_behavior: "all".into(),
                },
            },
        },
    );

    let alb = t.consume(service::ALB_DNS);
    let origin_secret = t.consume(service::ORIGIN_SECRET_NAME);
    let timeouts = &i.sizing.timeouts;
    let (viewer_certificate, aliases, origin_protocol) = match &i.env.domain {
        Some(d) => (
            ViewerCertificate {
                acm_certificate_arn: Some(d.edge_certificate_arn.clone()),
                ssl_support_method: Some("sni-only".into()),
                minimum_protocol_version: Some("TLSv1.2_2021".into()),
                cloud_front_default_certificate: None,
            },
            Some(vec![d.name.clone()]),
            "https-only",
        ),
        // The ALB has no certificate here; viewers still get HTTPS from
        // CloudFront's default certificate, and the hop to the ALB stays
        // inside AWS, admitted only from CloudFront's prefix list.
        None => (
            ViewerCertificate {
                acm_certificate_arn: None,
                ssl_support_method: None,
                minimum_protocol_version: None,
                cloud_front_default_certificate: Some(true),
            },
            None,
            "http-only",
        ),
    };
    // Standard logging (legacy) to a bucket here in us-east-1: the
    // Logging property is what the distribution's logging controls check;
    // CloudFront writes through the bucket's ACL, granting itself the
    // awslogsdelivery account when the distribution is created (CloudFront
    // Developer Guide, "Configure standard logging (legacy)").
    let (log_bucket, _) = super::log_bucket(i, &mut t, id, "AccessLogBucket", true, vec![]);
    let distribution = t.add(
        "Distribution",
        Distribution {
            distribution_config: DistributionConfig {
                enabled: true,
                comment: format!("MangaAssist {} chat", i.env.name),
                http_version: "http2and3".into(),
                ipv6_enabled: true,
                price_class: i.env.edge.price_class.into(),
                aliases,
                viewer_certificate,
                origins: vec![Origin {
                    id: "alb".into(),
                    domain_name: alb,
                    custom_origin_config: CustomOriginConfig {
                        http_port: 80,
                        https_port: 443,
                        origin_protocol_policy: origin_protocol.into(),
                        origin_read_timeout: timeouts.cloudfront_origin_read_timeout_s,
                        origin_keepalive_timeout: timeouts.cloudfront_origin_keepalive_timeout_s,
                        origin_ssl_protocols: vec!["TLSv1.2".into()],
                    },
                    // The ALB forwards only requests carrying this header
                    // (service stack); the value is the origin secret's
                    // `current`, read from its replica in this Region.
                    origin_custom_headers: vec![OriginCustomHeader {
                        header_name: service::ORIGIN_HEADER.into(),
                        header_value: service::origin_secret_reference(
                            i.env,
                            origin_secret,
                            service::ORIGIN_SECRET_CURRENT,
                        ),
                    }],
                }],
                default_cache_behavior: CacheBehavior {
                    target_origin_id: "alb".into(),
                    viewer_protocol_policy: "https-only".into(),
                    allowed_methods: ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
                        .map(String::from)
                        .to_vec(),
                    cached_methods: vec!["GET".into(), "HEAD".into()],
                    cache_policy_id: CACHING_DISABLED.into(),
                    origin_request_policy_id: policy.id(),
                    compress: false,
                },
                web_acl_id: acl.arn(),
                logging: Some(Logging {
                    bucket: log_bucket.domain_name(),
                    include_cookies: false,
                    prefix: "cloudfront/".into(),
                }),
            },
            tags,
        },
    );

    t.publish(
        DISTRIBUTION_ID,
        distribution.id(),
        "CloudFront distribution ID",
    );
    t.publish(
        DISTRIBUTION_DOMAIN,
        distribution.domain_name(),
        "CloudFront domain name",
    );
    let host = match &i.env.domain {
        Some(d) => Expr::Str(d.name.clone()),
        None => distribution.domain_name(),
    };
    t.output(
        "ChatUrl",
        Expr::sub_with("wss://${Host}/v1/chat", [("Host", host)]),
        "WebSocket URL clients connect to",
    );
    t
}
