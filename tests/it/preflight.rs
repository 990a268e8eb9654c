//! `mangactl preflight` and the preflight `plan`/`apply` run first, against
//! moto: STS (the caller's account), ECR (images pushed with PutImage), S3
//! (the model artifact), ACM (a requested certificate, which moto leaves
//! PENDING_VALIDATION). moto has no Bedrock `GetFoundationModelAvailability`,
//! so the in-process test answers model access (and the quotas, whose
//! defaults moto does not carry for these services) through a double behind
//! the same trait; the binary reports them unchecked.

use async_trait::async_trait;
use mangactl::aws::error::AwsError;
use mangactl::aws::prerequisites::{
    Certificate, ModelAvailability, PrereqResult, Prerequisites, Quota, SdkPrerequisites,
};
use mangactl::deploy::preflight::{self, Verdict};

use crate::moto::{Moto, REGION};
use crate::support::{stderr, stdout, TempDir};

const ACCOUNT: &str = "123456789012";
const REPO: &str = "manga-runtime";
const INTENT_REPO: &str = "intent-inference";
const BUCKET: &str = "mangaassist-prod-models";

/// An S3 client of `moto` (path-style: buckets are not DNS names on 127.0.0.1).
fn s3(moto: &Moto) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(REGION))
        .endpoint_url(&moto.endpoint)
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .http_client(mangactl::aws::config::http_client())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Two prerequisites missing: the model artifact was never uploaded and the
/// certificate is still pending validation; the images are pushed.
async fn world(moto: &Moto) -> String {
    let ecr = crate::moto_client!(aws_sdk_ecr, moto);
    for (repo, tag) in [(REPO, "1.0.0"), (INTENT_REPO, "2.1.0")] {
        ecr.create_repository()
            .repository_name(repo)
            .send()
            .await
            .expect("create repository");
        ecr.put_image()
            .repository_name(repo)
            .image_tag(tag)
            .image_manifest(r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":1,"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000"},"layers":[]}"#)
            .send()
            .await
            .expect("put image");
    }
    let s3 = s3(moto);
    s3.create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("create bucket");
    let acm = crate::moto_client!(aws_sdk_acm, moto);
    acm.request_certificate()
        .domain_name("chat.mangaassist.example.com")
        .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
        .send()
        .await
        .expect("request certificate")
        .certificate_arn()
        .expect("arn")
        .to_owned()
}

/// `environments/prod.yaml` pointed at moto's account, repositories and certificate.
fn environments(tmp: &TempDir, cert: &str) -> std::path::PathBuf {
    let dir = tmp.path().join("environments");
    std::fs::create_dir_all(&dir).expect("dir");
    let prod = std::fs::read_to_string(crate::support::repo().join("environments/prod.yaml"))
        .expect("prod.yaml");
    let intent_image = format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{INTENT_REPO}:2.1.0");
    let mut out = String::new();
    for line in prod.lines() {
        let t = line.trim_start();
        let indent = &line[..line.len() - t.len()];
        if t.starts_with("certificate_arn:") {
            out.push_str(&format!("{indent}certificate_arn: {cert}\n"));
        } else if t.starts_with("image: 763104351884") {
            out.push_str(&format!("{indent}image: {intent_image}\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    std::fs::write(dir.join("prod.yaml"), out).expect("write");
    dir
}

/// moto for what it has; model access and quotas as documented answers.
struct MotoAndDouble {
    moto: SdkPrerequisites,
}

#[async_trait]
impl Prerequisites for MotoAndDouble {
    async fn caller_account(&self) -> PrereqResult<String> {
        self.moto.caller_account().await
    }
    async fn image_exists(
        &self,
        r: &str,
        a: &str,
        repo: &str,
        reference: &str,
    ) -> PrereqResult<bool> {
        self.moto.image_exists(r, a, repo, reference).await
    }
    async fn object_exists(&self, bucket: &str, key: &str) -> PrereqResult<bool> {
        self.moto.object_exists(bucket, key).await
    }
    async fn certificate(&self, region: &str, arn: &str) -> PrereqResult<Option<Certificate>> {
        self.moto.certificate(region, arn).await
    }
    async fn model_availability(&self, model_id: &str) -> PrereqResult<ModelAvailability> {
        // The API reference's response document for an account that may invoke it;
        // asked for each model the tiers use (prod's llm.tiers: Nova Micro for the
        // simple tier, Claude 3.5 Sonnet for the others).
        assert!(
            [
                "anthropic.claude-3-5-sonnet-20240620-v1:0",
                "amazon.nova-micro-v1:0"
            ]
            .contains(&model_id),
            "{model_id}"
        );
        Ok(ModelAvailability {
            agreement: "AVAILABLE".into(),
            agreement_message: None,
            authorization: "AUTHORIZED".into(),
            entitlement: "AVAILABLE".into(),
            region: "AVAILABLE".into(),
        })
    }
    async fn quotas(&self, service: &str) -> PrereqResult<Vec<Quota>> {
        let q = |name: &str, code: &str, value: f64| Quota {
            name: name.into(),
            code: code.into(),
            value,
        };
        Ok(match service {
            "fargate" => vec![q(
                "Fargate On-Demand vCPU resource count",
                "L-3032A538",
                4000.0,
            )],
            "bedrock" => vec![
                q(
                    "On-demand model inference tokens per minute for Anthropic Claude 3.5 Sonnet",
                    "L-A50569E5",
                    400_000_000.0,
                ),
                q(
                    "On-demand model inference requests per minute for Anthropic Claude 3.5 Sonnet",
                    "L-254CACF4",
                    1_000_000.0,
                ),
                // A cross-region quota of the same model must not be taken for
                // the on-demand one the in-Region id uses.
                q(
                    "Cross-region model inference tokens per minute for Amazon Nova Micro",
                    "L-NOVAXR01",
                    1.0,
                ),
                q(
                    "On-demand model inference tokens per minute for Amazon Nova Micro",
                    "L-NOVATPM1",
                    400_000_000.0,
                ),
                q(
                    "On-demand model inference requests per minute for Amazon Nova Micro",
                    "L-NOVARPM1",
                    1_000_000.0,
                ),
            ],
            "dynamodb" => vec![
                q("Table-level read throughput limit", "L-CF0CBE56", 40_000.0),
                q("Table-level write throughput limit", "L-AB614373", 40_000.0),
            ],
            other => {
                return Err(AwsError::service(
                    "Service Quotas",
                    "ListServiceQuotas",
                    Some(other),
                    "NoSuchResourceException",
                    "unknown service",
                ))
            }
        })
    }
}

#[tokio::test]
async fn every_missing_prerequisite_is_named_at_once() {
    let moto = Moto::start();
    let cert = world(&moto).await;
    let tmp = TempDir::new("preflight");
    let envs = environments(&tmp, &cert);
    let env = stacks::env::load(&envs.join("prod.yaml")).expect("environment");
    let rendered = mangactl::cli::plan::rendered_for_deploy(&envs, "prod").expect("rendered");
    let config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(&moto.endpoint)
        .credentials_provider(aws_sdk_sts::config::SharedCredentialsProvider::new(
            aws_sdk_sts::config::Credentials::new("test", "test", None, None, "tests"),
        ))
        .http_client(mangactl::aws::config::http_client())
        .build();
    let aws = MotoAndDouble {
        moto: SdkPrerequisites::new(&config, &Default::default()),
    };
    let report = preflight::preflight(&aws, &env, &rendered).await;
    eprintln!("{}", report.render_text());
    let missing: Vec<(&str, &str)> = report
        .missing()
        .map(|c| (c.check, c.subject.as_str()))
        .collect();
    assert_eq!(
        missing,
        [
            (
                "model artifact",
                "s3://mangaassist-prod-models/intent/model.tar.gz"
            ),
            ("certificate", cert.as_str()),
        ],
        "both, in one report"
    );
    let verdict = |check: &str| {
        report
            .checks
            .iter()
            .find(|c| c.check == check)
            .map(|c| c.verdict.clone())
            .expect(check)
    };
    assert_eq!(verdict("account"), Verdict::Ready);
    assert_eq!(verdict("image"), Verdict::Ready);
    assert_eq!(verdict("intent image"), Verdict::Ready);
    assert_eq!(verdict("model access"), Verdict::Ready);
    let models: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.check == "model access")
        .map(|c| c.subject.as_str())
        .collect();
    assert_eq!(
        models,
        [
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "amazon.nova-micro-v1:0"
        ]
    );
    // Each model's own quotas, the on-demand ones for in-Region ids.
    let quotas: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.check == "quota")
        .map(|c| c.subject.as_str())
        .collect();
    for code in ["L-A50569E5", "L-254CACF4", "L-NOVATPM1", "L-NOVARPM1"] {
        assert!(
            quotas.iter().any(|q| q.contains(code)),
            "{code}: {quotas:?}"
        );
    }
    match verdict("certificate") {
        Verdict::Missing { problem, fix } => {
            assert_eq!(problem, "status PENDING_VALIDATION");
            assert!(fix.contains("DNS validation"), "{fix}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        report
            .checks
            .iter()
            .filter(|c| c.check == "quota")
            .all(|c| c.verdict == Verdict::Ready),
        "{:?}",
        report.checks
    );
    assert_eq!(report.outcome(), mangactl::outcome::Outcome::Failed);

    // The artifact uploaded: one left. A wrong account is named too.
    let s3 = s3(&moto);
    s3.put_object()
        .bucket(BUCKET)
        .key("intent/model.tar.gz")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"model"))
        .send()
        .await
        .expect("upload");
    let mut other = env.clone();
    other.account_id = Some("210987654321".into());
    let report = preflight::preflight(&aws, &other, &rendered).await;
    let missing: Vec<&str> = report.missing().map(|c| c.check).collect();
    assert_eq!(missing, ["account", "certificate"]);
}

#[tokio::test]
async fn the_binary_refuses_to_plan_with_prerequisites_missing() {
    let moto = Moto::start();
    let cert = world(&moto).await;
    let tmp = TempDir::new("preflight-cli");
    let envs = environments(&tmp, &cert);
    let envs_arg = envs.to_str().expect("utf8");
    let run = |args: &[&str], skip: bool| {
        let mut cmd = moto.mangactl();
        if !skip {
            cmd.env_remove("MANGACTL_SKIP_PREFLIGHT");
        }
        let o = cmd.args(args).output().expect("run");
        eprintln!(
            "$ mangactl {}\n{}{}",
            args.join(" "),
            stdout(&o),
            stderr(&o)
        );
        o
    };
    let o = run(
        &["preflight", "--env", "prod", "--environments", envs_arg],
        false,
    );
    assert_eq!(o.status.code(), Some(1), "missing prerequisites exit 1");
    let out = stdout(&o);
    assert!(out.contains("MISSING   model artifact"), "{out}");
    assert!(out.contains("status PENDING_VALIDATION"), "{out}");
    // moto lacks Bedrock model availability: unchecked, and said so.
    assert!(out.contains("unchecked model access"), "{out}");

    let o = run(
        &[
            "preflight",
            "--env",
            "prod",
            "--environments",
            envs_arg,
            "--output",
            "json",
        ],
        false,
    );
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(doc["schema"], "mangactl.preflight/v1");
    assert!(doc["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .any(|c| c["check"] == "model artifact" && c["verdict"] == "missing"));

    // plan runs preflight first and changes nothing.
    let o = run(
        &["plan", "--env", "prod", "--environments", envs_arg],
        false,
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("preflight: 2 prerequisite(s) missing"),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    let cfn = crate::moto_client!(aws_sdk_cloudformation, moto);
    let stacks = cfn.list_stacks().send().await.expect("list stacks");
    assert!(
        stacks.stack_summaries().is_empty(),
        "no change set, no stack"
    );

    // --skip-preflight says so.
    let o = run(
        &[
            "plan",
            "--env",
            "prod",
            "--environments",
            envs_arg,
            "--skip-preflight",
        ],
        false,
    );
    assert!(
        stderr(&o).contains("preflight skipped (--skip-preflight)"),
        "{}",
        stderr(&o)
    );
}
