//! Preflight: every prerequisite an apply assumes but does not create,
//! checked before any change, so a missing one is named in seconds rather
//! than twenty minutes into a CloudFormation rollback. `mangactl
//! preflight` prints this report; `plan` and `apply` run it first
//! (`--skip-preflight` for emulators that lack a service). The AWS answers
//! come through [`Prerequisites`] (`src/aws/prerequisites.rs`).
//!
//! Checks, from the environment file and the sizing plan:
//! - **account**: `account_id` equals the caller's account (STS);
//! - **image** and **intent image**: the runtime's and the intent model's
//!   container images are in ECR (an image outside ECR is not checked);
//! - **model artifact**: `intent_model.model_data_url` exists in S3;
//! - **certificate** / **edge certificate**: issued, and covering
//!   `domain.name` (exactly or by a one-label wildcard, as ACM matches);
//! - **model access**: Bedrock's `GetFoundationModelAvailability` for the
//!   model (since 2025 access to serverless models is enabled by default,
//!   "with the correct AWS Marketplace permissions", and Anthropic models
//!   may need a first-time use-case form: Bedrock User Guide, "Access
//!   Amazon Bedrock foundation models"); all four of its fields must say
//!   so;
//! - **quotas**: Fargate On-Demand vCPU for the service at its maximum
//!   task count, Bedrock tokens and requests per minute for the model at
//!   peak, DynamoDB table-level read and write throughput at peak.
//!
//! A check that could not be made (no permission, an emulator without the
//! API, no quota of that name) is `unchecked`, with the reason: preflight
//! exits 1 when anything is missing, 3 when nothing is missing but
//! something is unchecked, 0 when all is ready.

use std::fmt::Write as _;

use serde::Serialize;
use stacks::env::Environment;
use stacks::render::Rendered;

use crate::aws::error::{AwsError, ErrorClass};
use crate::aws::prerequisites::{ModelAvailability, Prerequisites, Quota};
use crate::outcome::Outcome;

/// What one check found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Ready,
    Missing { problem: String, fix: String },
    Unchecked { reason: String },
}

/// One prerequisite and its verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// `image`, `certificate`, `quota`, ...
    pub check: &'static str,
    /// What was checked (an image URI, an ARN, a quota name).
    pub subject: String,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// Every check of one environment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreflightReport {
    pub schema: &'static str,
    pub environment: String,
    pub checks: Vec<Check>,
}

impl PreflightReport {
    pub fn missing(&self) -> impl Iterator<Item = &Check> {
        self.checks
            .iter()
            .filter(|c| matches!(c.verdict, Verdict::Missing { .. }))
    }

    pub fn unchecked(&self) -> impl Iterator<Item = &Check> {
        self.checks
            .iter()
            .filter(|c| matches!(c.verdict, Verdict::Unchecked { .. }))
    }

    /// 1 with anything missing, 3 with anything unchecked, else 0.
    pub fn outcome(&self) -> Outcome {
        if self.missing().next().is_some() {
            Outcome::Failed
        } else if self.unchecked().next().is_some() {
            Outcome::Incomplete
        } else {
            Outcome::Success
        }
    }

    /// One line per check, missing ones with their fix.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Preflight of `{}`:", self.environment);
        let width = self.checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
        for c in &self.checks {
            let _ = match &c.verdict {
                Verdict::Ready => writeln!(out, "  ok        {:width$}  {}", c.check, c.subject),
                Verdict::Missing { problem, fix } => writeln!(
                    out,
                    "  MISSING   {:width$}  {}: {problem}\n            {:width$}  fix: {fix}",
                    c.check, c.subject, ""
                ),
                Verdict::Unchecked { reason } => writeln!(
                    out,
                    "  unchecked {:width$}  {}: {reason}",
                    c.check, c.subject
                ),
            };
        }
        let missing = self.missing().count();
        let unchecked = self.unchecked().count();
        let _ = writeln!(
            out,
            "{} checks: {} ready, {missing} missing, {unchecked} unchecked",
            self.checks.len(),
            self.checks.len() - missing - unchecked
        );
        out
    }
}

pub const SCHEMA: &str = "mangactl.preflight/v1";

/// An image reference in ECR: `account.dkr.ecr.region.amazonaws.com/repo[:tag|@digest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrImage {
    pub account: String,
    pub region: String,
    pub repository: String,
    /// A tag, or a `sha256:` digest; `latest` when neither is given.
    pub reference: String,
}

impl EcrImage {
    pub fn parse(uri: &str) -> Option<EcrImage> {
        let (host, path) = uri.split_once('/')?;
        let mut parts = host.split('.');
        let account = parts.next()?;
        if parts.next()? != "dkr" || parts.next()? != "ecr" {
            return None;
        }
        let region = parts.next()?;
        if !account.chars().all(|c| c.is_ascii_digit()) || account.len() != 12 {
            return None;
        }
        let (repository, reference) = if let Some((r, d)) = path.split_once('@') {
            (r, d)
        } else if let Some((r, t)) = path.rsplit_once(':') {
            (r, t)
        } else {
            (path, "latest")
        };
        Some(EcrImage {
            account: account.into(),
            region: region.into(),
            repository: repository.into(),
            reference: reference.into(),
        })
    }
}

/// Whether a certificate name covers `domain` as ACM matches them: exactly,
/// or `*.example.com` for one label (`a.example.com`, not `a.b.example.com`).
pub fn covers(name: &str, domain: &str) -> bool {
    let (name, domain) = (name.to_ascii_lowercase(), domain.to_ascii_lowercase());
    if name == domain {
        return true;
    }
    match (name.strip_prefix("*."), domain.split_once('.')) {
        (Some(base), Some((label, rest))) => !label.is_empty() && base == rest,
        _ => false,
    }
}

/// The foundation model behind an id: a cross-region inference profile
/// (`us.anthropic…`, `eu.`, `apac.`, `global.`) names its model after the
/// geography prefix (the prefixes: `sizing::assumptions::PROFILE_PREFIXES`).
pub fn base_model_id(model_id: &str) -> &str {
    sizing::assumptions::split_profile(model_id).1
}

/// Runs every check (independent calls at once) and returns the report.
pub async fn preflight(
    aws: &dyn Prerequisites,
    env: &Environment,
    rendered: &Rendered,
) -> PreflightReport {
    // Every model the tiers invoke (`llm.tiers`), each once.
    let model_ids: Vec<String> = env.llm.models().into_iter().map(|m| m.model_id).collect();
    let models = futures_util::future::join_all(model_ids.iter().map(|id| check_model(aws, id)));
    let (account, image, intent_image, artifact, certs, models, quotas) = tokio::join!(
        check_account(aws, env),
        check_image(aws, "image", &env.image),
        check_image(aws, "intent image", &env.intent_model.image),
        check_artifact(aws, &env.intent_model.model_data_url),
        check_certificates(aws, env),
        models,
        check_quotas(aws, rendered),
    );
    let mut checks = vec![account, image, intent_image, artifact];
    checks.extend(certs);
    checks.extend(models);
    checks.extend(quotas);
    PreflightReport {
        schema: SCHEMA,
        environment: env.name.clone(),
        checks,
    }
}

/// A call that failed: permissions, an emulator gap and the like make a
/// check unchecked, never ready or missing.
fn unchecked(check: &'static str, subject: String, e: &AwsError) -> Check {
    let why = match e.class {
        ErrorClass::AccessDenied => "the caller may not ask (grant the read permission)",
        ErrorClass::NotImplemented => "the endpoint does not implement this API",
        ErrorClass::Throttled => "throttled; run preflight again",
        ErrorClass::TimedOut => "no answer in time",
        _ => "the call failed",
    };
    Check {
        check,
        subject,
        verdict: Verdict::Unchecked {
            reason: format!("{why}: {e}"),
        },
    }
}

fn ready(check: &'static str, subject: String) -> Check {
    Check {
        check,
        subject,
        verdict: Verdict::Ready,
    }
}

fn missing(check: &'static str, subject: String, problem: String, fix: String) -> Check {
    Check {
        check,
        subject,
        verdict: Verdict::Missing { problem, fix },
    }
}

async fn check_account(aws: &dyn Prerequisites, env: &Environment) -> Check {
    let Some(want) = &env.account_id else {
        return Check {
            check: "account",
            subject: "any (no account_id in the environment file)".into(),
            verdict: Verdict::Unchecked {
                reason: "set account_id so a deploy cannot reach the wrong account".into(),
            },
        };
    };
    match aws.caller_account().await {
        Ok(got) if &got == want => ready("account", want.clone()),
        Ok(got) => missing(
            "account",
            want.clone(),
            format!("the credentials are for account {got}"),
            format!("use credentials (a profile, --profile) of account {want}"),
        ),
        Err(e) => unchecked("account", want.clone(), &e),
    }
}

async fn check_image(aws: &dyn Prerequisites, check: &'static str, uri: &str) -> Check {
    let Some(img) = EcrImage::parse(uri) else {
        return Check {
            check,
            subject: uri.into(),
            verdict: Verdict::Unchecked {
                reason: "not an ECR image; its registry is not checked".into(),
            },
        };
    };
    match aws
        .image_exists(&img.region, &img.account, &img.repository, &img.reference)
        .await
    {
        Ok(true) => ready(check, uri.into()),
        Ok(false) => missing(
            check,
            uri.into(),
            format!(
                "no image `{}` in repository `{}` of {} ({})",
                img.reference, img.repository, img.account, img.region
            ),
            format!("build and push it: docker push {uri}"),
        ),
        Err(e) => unchecked(check, uri.into(), &e),
    }
}

async fn check_artifact(aws: &dyn Prerequisites, url: &str) -> Check {
    let Some((bucket, key)) = url.strip_prefix("s3://").and_then(|r| r.split_once('/')) else {
        return missing(
            "model artifact",
            url.into(),
            "not an s3://bucket/key URL".into(),
            "set intent_model.model_data_url to the model.tar.gz in S3".into(),
        );
    };
    match aws.object_exists(bucket, key).await {
        Ok(true) => ready("model artifact", url.into()),
        Ok(false) => missing(
            "model artifact",
            url.into(),
            "no such object".into(),
            format!("upload the packaged model: aws s3 cp model.tar.gz {url}"),
        ),
        Err(e) => unchecked("model artifact", url.into(), &e),
    }
}

async fn check_certificates(aws: &dyn Prerequisites, env: &Environment) -> Vec<Check> {
    let Some(d) = &env.domain else {
        return Vec::new();
    };
    let mut wanted = vec![("certificate", d.certificate_arn.as_str())];
    if d.edge_certificate_arn != d.certificate_arn {
        wanted.push(("edge certificate", d.edge_certificate_arn.as_str()));
    }
    let mut out = Vec::new();
    for (check, arn) in wanted {
        // arn:aws:acm:REGION:ACCOUNT:certificate/ID
        let region = arn.split(':').nth(3).unwrap_or_default();
        out.push(match aws.certificate(region, arn).await {
            Ok(None) => missing(
                check,
                arn.into(),
                "no such certificate".into(),
                format!(
                    "request one for {} in ACM ({region}) and validate it",
                    d.name
                ),
            ),
            Ok(Some(c)) if c.status != "ISSUED" => missing(
                check,
                arn.into(),
                format!("status {}", c.status),
                "complete its DNS validation (ACM shows the CNAME to create)".into(),
            ),
            Ok(Some(c)) if !c.names.iter().any(|n| covers(n, &d.name)) => missing(
                check,
                arn.into(),
                format!("covers {} but not {}", c.names.join(", "), d.name),
                format!("request a certificate that names {}", d.name),
            ),
            Ok(Some(_)) => ready(check, arn.into()),
            Err(e) => unchecked(check, arn.into(), &e),
        });
    }
    out
}

async fn check_model(aws: &dyn Prerequisites, model_id: &str) -> Check {
    let base = base_model_id(model_id);
    match aws.model_availability(base).await {
        Ok(a) => judge_model(model_id, &a),
        Err(e) if e.class == ErrorClass::NotFound => missing(
            "model access",
            model_id.into(),
            "Bedrock knows no such model in this region".into(),
            "pick a model id from the Bedrock model catalog of the environment's region".into(),
        ),
        Err(e) => unchecked("model access", model_id.into(), &e),
    }
}

fn judge_model(model_id: &str, a: &ModelAvailability) -> Check {
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    if a.region != "AVAILABLE" {
        problems.push("not offered in this region".to_string());
        fixes.push("use a region (or a cross-region inference profile) that offers it");
    }
    if a.authorization != "AUTHORIZED" {
        problems.push("the account is not authorized".to_string());
        fixes.push("allow it in IAM and SCPs (bedrock:InvokeModel*), and for Anthropic models submit the first-time use-case form in the Bedrock console");
    }
    if a.entitlement != "AVAILABLE" {
        problems.push("no entitlement".to_string());
        fixes.push("grant the AWS Marketplace permissions (aws-marketplace:Subscribe, ViewSubscriptions) so Bedrock can subscribe on first use");
    }
    if a.agreement != "AVAILABLE" {
        let detail = a
            .agreement_message
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        problems.push(format!("model agreement {}{detail}", a.agreement));
        fixes.push("accept the model's offer (CreateFoundationModelAgreement) or wait for the pending subscription (up to 15 minutes)");
    }
    if problems.is_empty() {
        ready("model access", model_id.into())
    } else {
        missing(
            "model access",
            model_id.into(),
            problems.join("; "),
            fixes.join("; "),
        )
    }
}

/// The quota whose name contains every one of `words` (case-insensitive).
fn find<'q>(quotas: &'q [Quota], words: &[&str]) -> Option<&'q Quota> {
    quotas.iter().find(|q| {
        let name = q.name.to_ascii_lowercase();
        words.iter().all(|w| name.contains(&w.to_ascii_lowercase()))
    })
}

/// How a Bedrock quota names a model: `anthropic.claude-3-5-sonnet-20240620-v1:0`
/// → "claude 3.5 sonnet" (the words of the id without vendor, date and version).
pub fn model_words(model_id: &str) -> String {
    let base = base_model_id(model_id);
    let name = base.split_once('.').map_or(base, |(_, n)| n);
    let name = name.split(':').next().unwrap_or(name);
    let mut words: Vec<String> = Vec::new();
    for part in name.split('-') {
        let is_date = part.len() == 8 && part.chars().all(|c| c.is_ascii_digit());
        let is_version = part.starts_with('v')
            && part[1..].chars().all(|c| c.is_ascii_digit())
            && part.len() > 1;
        if is_date || is_version {
            break;
        }
        match words.last_mut() {
            // "3-5" is version 3.5 in quota names.
            Some(prev)
                if part.chars().all(|c| c.is_ascii_digit())
                    && prev.chars().all(|c| c.is_ascii_digit() || c == '.') =>
            {
                prev.push('.');
                prev.push_str(part);
            }
            _ => words.push(part.to_string()),
        }
    }
    words.join(" ")
}

async fn check_quotas(aws: &dyn Prerequisites, r: &Rendered) -> Vec<Check> {
    let plan = &r.sizing;
    let (fargate, bedrock, dynamodb) = tokio::join!(
        aws.quotas("fargate"),
        aws.quotas("bedrock"),
        aws.quotas("dynamodb")
    );
    let mut out = Vec::new();
    let mut need = |service: &Result<Vec<Quota>, AwsError>,
                    words: &[&str],
                    what: String,
                    needed: f64,
                    unit: &str| {
        let subject = format!("{} ({what})", words.join(" "));
        out.push(match service {
            Err(e) => unchecked("quota", subject, e),
            Ok(quotas) => match find(quotas, words) {
                None => Check {
                    check: "quota",
                    subject,
                    verdict: Verdict::Unchecked {
                        reason: "no quota of that name in this region".into(),
                    },
                },
                Some(q) if q.value + 1e-9 < needed => missing(
                    "quota",
                    format!("{} ({})", q.name, q.code),
                    format!(
                        "{:.0} {unit} allowed, {needed:.0} needed for {what}",
                        q.value
                    ),
                    format!(
                        "request an increase to at least {needed:.0} in Service Quotas (code {})",
                        q.code
                    ),
                ),
                Some(q) => ready(
                    "quota",
                    format!(
                        "{} ({}): {:.0} ≥ {needed:.0} {unit}",
                        q.name, q.code, q.value
                    ),
                ),
            },
        });
    };
    let s = &plan.service;
    let vcpus = f64::from(s.max_tasks) * f64::from(s.cpu) / 1024.0;
    need(
        &fargate,
        &["fargate on-demand vcpu"],
        format!(
            "{} tasks × {} vCPU at the autoscaling maximum",
            s.max_tasks,
            f64::from(s.cpu) / 1024.0
        ),
        vcpus,
        "vCPU",
    );
    // Each model's own quotas (quotas are per model and per way of
    // invoking it: Service Quotas names them "On-demand model inference …",
    // "Cross-region model inference …" and "Global cross-region model
    // inference … per minute for <model>", Amazon Bedrock endpoints and
    // quotas, https://docs.aws.amazon.com/general/latest/gr/bedrock.html).
    for m in &plan.bedrock.models {
        let words = model_words(&m.model_id);
        let kind = match sizing::assumptions::split_profile(&m.model_id).0 {
            None => "on-demand model inference",
            Some("global") => "global cross-region model inference",
            Some(_) => "cross-region model inference",
        };
        let tiers = m.tiers.join(", ");
        // What throttles is the reservation at request start (input +
        // maxTokens; sizing's resources/bedrock.rs), not what the answers
        // finally use.
        need(
            &bedrock,
            &[kind, "tokens per minute", words.as_str()],
            format!(
                "{} ({tiers}) at peak, reserved as input + max_tokens per request",
                m.model_id
            ),
            m.reserved_tokens_per_minute,
            "tokens/min",
        );
        need(
            &bedrock,
            &[kind, "requests per minute", words.as_str()],
            format!("{} ({tiers}) at peak", m.model_id),
            m.requests_per_minute,
            "requests/min",
        );
    }
    let ddb = &plan.dynamodb;
    need(
        &dynamodb,
        &["table-level read throughput"],
        "the conversation table at peak".into(),
        ddb.read_units_per_s,
        "read units/s",
    );
    need(
        &dynamodb,
        &["table-level write throughput"],
        "the conversation table at peak".into(),
        ddb.write_units_per_s,
        "write units/s",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_uris_parse_and_others_do_not() {
        assert_eq!(
            EcrImage::parse("123456789012.dkr.ecr.us-east-1.amazonaws.com/manga-runtime:1.0.0"),
            Some(EcrImage {
                account: "123456789012".into(),
                region: "us-east-1".into(),
                repository: "manga-runtime".into(),
                reference: "1.0.0".into(),
            })
        );
        let d = EcrImage::parse(
            "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/team/app@sha256:abc",
        )
        .expect("digest");
        assert_eq!(
            (d.repository.as_str(), d.reference.as_str()),
            ("team/app", "sha256:abc")
        );
        assert_eq!(
            EcrImage::parse("123456789012.dkr.ecr.us-east-1.amazonaws.com/app")
                .map(|i| i.reference),
            Some("latest".into())
        );
        assert!(EcrImage::parse("docker.io/library/nginx:1").is_none());
        assert!(EcrImage::parse("ghcr.io/x/y:1").is_none());
    }

    #[test]
    fn certificates_cover_exact_names_and_one_wildcard_label() {
        assert!(covers("chat.example.com", "chat.example.com"));
        assert!(covers("*.example.com", "chat.example.com"));
        assert!(covers("*.EXAMPLE.com", "Chat.example.com"));
        assert!(!covers("*.example.com", "a.chat.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(!covers("other.example.com", "chat.example.com"));
    }

    #[test]
    fn model_ids_become_quota_words() {
        assert_eq!(
            model_words("anthropic.claude-3-5-sonnet-20240620-v1:0"),
            "claude 3.5 sonnet"
        );
        assert_eq!(
            model_words("us.anthropic.claude-3-haiku-20240307-v1:0"),
            "claude 3 haiku"
        );
        assert_eq!(model_words("amazon.nova-lite-v1:0"), "nova lite");
        assert_eq!(
            base_model_id("eu.anthropic.claude-3-haiku-20240307-v1:0"),
            "anthropic.claude-3-haiku-20240307-v1:0"
        );
    }

    #[test]
    fn every_field_of_model_availability_must_allow_it() {
        let ok = ModelAvailability {
            agreement: "AVAILABLE".into(),
            agreement_message: None,
            authorization: "AUTHORIZED".into(),
            entitlement: "AVAILABLE".into(),
            region: "AVAILABLE".into(),
        };
        assert_eq!(judge_model("m", &ok).verdict, Verdict::Ready);
        let pending = ModelAvailability {
            agreement: "PENDING".into(),
            authorization: "NOT_AUTHORIZED".into(),
            ..ok
        };
        match judge_model("m", &pending).verdict {
            Verdict::Missing { problem, fix } => {
                assert!(
                    problem.contains("not authorized") && problem.contains("PENDING"),
                    "{problem}"
                );
                assert!(fix.contains("use-case form"), "{fix}");
            }
            other => panic!("{other:?}"),
        }
    }
}
