//! `service`: the ALB (HTTPS when a certificate is given), its target group
//! and listener (a 403 unless the request carries the origin secret, see
//! [`origin_secret_reference`]), the origin secret itself, the ECS cluster, the Fargate task definition and service
//! for the runtime (`runtime/`), target-tracking autoscaling, and the task
//! role with least privilege on this environment's table, DAX cluster,
//! collection, intent endpoint and Bedrock model.
//!
//! The container's port, environment variables and health check must match
//! what the runtime reads; see [`container_environment`] and runtime/README.md.

use serde_json::json;
use std::collections::BTreeMap;

use super::{
    cache, intent, memory, network, observability, search, task_role_name, Inputs, StackId,
};
use crate::model::resources::autoscaling::*;
use crate::model::resources::ecs::*;
use crate::model::resources::elbv2::*;
use crate::model::resources::iam::{
    Effect, InlinePolicy, PolicyDocument, Principal, Role, Statement,
};
use crate::model::resources::kms::Key;
use crate::model::resources::logs::LogGroup;
use crate::model::resources::secretsmanager::{GenerateSecretString, ReplicaRegion, Secret};
use crate::model::resources::{KeyValue, NameValue};
use crate::model::{Expr, OutputKey, Parameter, ResourceOpts, Template};

pub const ALB_DNS: OutputKey = OutputKey::new("service", "AlbDnsName");
pub const ALB_FULL_NAME: OutputKey = OutputKey::new("service", "AlbFullName");
/// `targetgroup/<name>/<id>`: the CloudWatch `TargetGroup` dimension.
pub const TARGET_GROUP_FULL_NAME: OutputKey = OutputKey::new("service", "TargetGroupFullName");
pub const CLUSTER_NAME: OutputKey = OutputKey::new("service", "ClusterName");
pub const SERVICE_NAME: OutputKey = OutputKey::new("service", "ServiceName");
/// The task definition revision this stack deployed; drift's live-capacity
/// layer compares the service's running revision with it.
pub const TASK_DEFINITION: OutputKey = OutputKey::new("service", "TaskDefinitionArn");
pub const LOG_GROUP: OutputKey = OutputKey::new("service", "LogGroupName");
/// The origin secret's name, which is also the name of its replica in the
/// edge stack's Region.
pub const ORIGIN_SECRET_NAME: OutputKey = OutputKey::new("service", "OriginSecretName");

/// The header CloudFront adds to every origin request and the ALB requires.
pub const ORIGIN_HEADER: &str = "X-Origin-Verify";
/// The secret's keys: CloudFront sends `current`; the ALB accepts it and,
/// during a rotation (`origin_secret.accept_previous`), `previous`.
pub const ORIGIN_SECRET_CURRENT: &str = "current";
pub const ORIGIN_SECRET_PREVIOUS: &str = "previous";

/// `MANGA_BEDROCK_TIER_MODELS`: `tier=model` for each tier of `llm.tiers`,
/// comma-separated, in tier order (empty when every tier uses `model_id`).
pub fn tier_models(env: &crate::env::Environment) -> String {
    sizing::input::LLM_TIERS
        .iter()
        .filter_map(|t| env.llm.tiers.get(t).map(|m| format!("{t}={}", m.model_id)))
        .collect::<Vec<_>>()
        .join(",")
}

/// What the task role must be allowed to invoke for one model id: the
/// foundation model in the stack's Region, or, for a cross-Region inference
/// profile, the profile and the model in every destination Region (Amazon
/// Bedrock User Guide, "Supported Regions and models for inference
/// profiles": IAM must allow the invocation "in all destination Regions in
/// the chosen inference profile",
/// https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-support.html;
/// a global profile's model ARN has no Region).
fn model_arns(model_id: &str) -> Vec<Expr> {
    match sizing::assumptions::split_profile(model_id) {
        (None, base) => vec![Expr::sub(format!(
            "arn:${{AWS::Partition}}:bedrock:${{AWS::Region}}::foundation-model/{base}"
        ))],
        (Some(prefix), base) => {
            let mut arns = vec![
                Expr::sub(format!(
                    "arn:${{AWS::Partition}}:bedrock:${{AWS::Region}}:${{AWS::AccountId}}:inference-profile/{model_id}"
                )),
                Expr::sub(format!(
                    "arn:${{AWS::Partition}}:bedrock:*::foundation-model/{base}"
                )),
            ];
            if prefix == "global" {
                arns.push(Expr::sub(format!(
                    "arn:${{AWS::Partition}}:bedrock:::foundation-model/{base}"
                )));
            }
            arns
        }
    }
}

/// `mangaassist-<env>/origin-verify`: fixed, so the secret's replica in the
/// edge Region has a name the edge stack can resolve there (a replica's ARN
/// is the primary's but for the Region: Secrets Manager User Guide,
/// "Replicate AWS Secrets Manager secrets across Regions").
pub fn origin_secret_name(env: &crate::env::Environment) -> String {
    format!("{}/origin-verify", env.prefix())
}

/// A dynamic reference to one key of the origin secret, at the environment
/// file's pinned version (`origin_secret.version_id`) or, without one, the
/// AWSCURRENT version: `{{resolve:secretsmanager:secret-id:SecretString:
/// json-key:version-stage:version-id}}` (CloudFormation User Guide, "Get a
/// secret or secret value from Secrets Manager"). CloudFormation resolves
/// it only when the resource is created or the reference text changes, so
/// naming a new version is what makes an apply after a rotation take it
/// (README, "Origin secret rotation"). `secret` is the secret's name (not
/// its ARN: the reference resolves in the stack's own Region).
pub fn origin_secret_reference(env: &crate::env::Environment, secret: Expr, key: &str) -> Expr {
    let version = env
        .origin_secret
        .version_id
        .as_deref()
        .map(|v| format!("::{v}"))
        .unwrap_or_default();
    Expr::sub_with(
        format!("{{{{resolve:secretsmanager:${{Secret}}:SecretString:{key}{version}}}}}"),
        [("Secret", secret)],
    )
}

pub const CONTAINER_NAME: &str = "runtime";
/// Where the runtime binary lives in the image (runtime/Dockerfile).
pub const RUNTIME_BINARY: &str = "/usr/local/bin/manga-runtime";

/// The uid:gid the runtime image runs as (runtime/Dockerfile: `USER
/// 65532:65532`, distroless's nonroot).
pub const RUNTIME_USER: &str = "65532:65532";

/// Elastic Load Balancing's account per Region for access-log delivery,
/// in Regions that opened before August 2022; newer Regions grant the
/// `logdelivery.elasticloadbalancing.amazonaws.com` service principal
/// instead (Elastic Load Balancing User Guide for Application Load
/// Balancers, "Enable access logs for your Application Load Balancer",
/// step "Attach a policy to your S3 bucket").
const ELB_LOG_ACCOUNTS: [(&str, &str); 21] = [
    ("us-east-1", "127311923021"),
    ("us-east-2", "033677994240"),
    ("us-west-1", "027434742980"),
    ("us-west-2", "797873946194"),
    ("af-south-1", "098369216593"),
    ("ap-east-1", "754344448648"),
    ("ap-south-1", "718504428378"),
    ("ap-northeast-1", "582318560864"),
    ("ap-northeast-2", "600734575887"),
    ("ap-northeast-3", "383597477331"),
    ("ap-southeast-1", "114774131450"),
    ("ap-southeast-2", "783225319266"),
    ("ca-central-1", "985666609251"),
    ("eu-central-1", "054676820928"),
    ("eu-west-1", "156460612806"),
    ("eu-west-2", "652711504416"),
    ("eu-west-3", "009996457667"),
    ("eu-south-1", "635631232127"),
    ("eu-north-1", "897822967062"),
    ("me-south-1", "076674570225"),
    ("sa-east-1", "507241528517"),
];

/// The prefix ALB access logs go under in the log bucket.
const ALB_LOG_PREFIX: &str = "alb";

/// The runtime's configuration, as container environment variables
/// (names documented in runtime/README.md). Budgets travel as one JSON
/// object so the runtime enforces exactly what the environment file says.
pub fn container_environment(
    i: &Inputs<'_>,
    t: &mut Template,
    target_group: Expr,
) -> Vec<NameValue> {
    let budgets = serde_json::to_string(&i.env.targets.latency_ms).unwrap_or_default();
    let mut env = vec![
        NameValue::new("MANGA_ENVIRONMENT", i.env.name.as_str()),
        NameValue::new("MANGA_PORT", network::CONTAINER_PORT.to_string()),
        NameValue::new("MANGA_BUDGETS_JSON", budgets),
        NameValue::new("MANGA_BACKEND", "aws"),
        // Per-stage latencies as CloudWatch EMF lines on stdout, which the
        // awslogs driver ships; the observability stack reads them.
        NameValue::new("MANGA_EMF", "true"),
        NameValue::new("MANGA_AUTH", "rs256"),
        NameValue::new("MANGA_JWKS_URL", i.env.auth.jwks_url.as_str()),
        NameValue::new("MANGA_JWT_ISSUER", i.env.auth.issuer.as_str()),
        NameValue::new("MANGA_JWT_AUDIENCE", i.env.auth.audience.as_str()),
        NameValue::new(
            "MANGA_PING_INTERVAL_SECS",
            i.sizing.timeouts.websocket_ping_interval_s.to_string(),
        ),
        // Draining (README, "Draining: the order of a task's stop"): the
        // runtime polls DescribeTargetHealth for its own target in this
        // target group every MANGA_DRAIN_POLL_SECS; once it reads
        // `draining` it asks clients to reconnect and lets answers in
        // flight finish within MANGA_DRAIN_TIMEOUT_SECS, all inside the
        // deregistration delay sizing derived from the two.
        NameValue::new("MANGA_TARGET_GROUP_ARN", target_group),
        NameValue::new(
            "MANGA_DRAIN_POLL_SECS",
            i.sizing.timeouts.drain_poll_interval_s.to_string(),
        ),
        NameValue::new(
            "MANGA_DRAIN_TIMEOUT_SECS",
            i.sizing.timeouts.drain_timeout_s.to_string(),
        ),
        // The per-task limits sizing assumed: connections at the memory
        // ceiling, LLM streams relayed at once. The runtime enforces them,
        // so a task never carries more than it was sized for.
        NameValue::new(
            "MANGA_MAX_CONNECTIONS",
            i.sizing.service.connections_per_task.to_string(),
        ),
        NameValue::new(
            "MANGA_MAX_LLM_STREAMS",
            i.sizing.service.max_streams_per_task.to_string(),
        ),
        NameValue::new("MANGA_BEDROCK_MODEL_ID", i.env.llm.model_id.as_str()),
        // The per-tier model choice (`llm.tiers`), `tier=model` pairs the
        // runtime routes by (runtime config `bedrock_tier_models`).
        NameValue::new("MANGA_BEDROCK_TIER_MODELS", tier_models(i.env).as_str()),
        // The maxTokens sizing reserved Bedrock quota for (input + max_tokens).
        NameValue::new("MANGA_BEDROCK_MAX_TOKENS", i.env.llm.max_tokens.to_string()),
        NameValue::new("AWS_REGION", Expr::sub("${AWS::Region}")),
    ];
    env.push(NameValue::new(
        "MANGA_DYNAMODB_TABLE",
        t.consume(memory::TABLE_NAME),
    ));
    if i.sizing.dax.enabled {
        env.push(NameValue::new(
            "MANGA_DAX_ENDPOINT",
            t.consume(memory::DAX_ENDPOINT),
        ));
    }
    env.push(NameValue::new(
        "MANGA_REDIS_URL",
        Expr::sub_with(
            "rediss://${Host}:${Port}",
            [
                ("Host", t.consume(cache::ENDPOINT)),
                ("Port", t.consume(cache::PORT)),
            ],
        ),
    ));
    // IAM authentication: the runtime signs a token for this user (the
    // task role's elasticache:Connect below) and sends it with AUTH.
    env.push(NameValue::new(
        "MANGA_REDIS_USER",
        cache::redis_user_id(i.env),
    ));
    // The token is presigned for the cache by its replication group id
    // (ElastiCache User Guide, "Authenticating with IAM").
    env.push(NameValue::new(
        "MANGA_REDIS_REPLICATION_GROUP",
        cache::replication_group_id(i.env),
    ));
    // The endpoint above is the configuration endpoint in cluster mode, which needs
    // the runtime's cluster client; set either way so the task definition says which.
    env.push(NameValue::new(
        "MANGA_REDIS_CLUSTER",
        cache::cluster_mode(&i.sizing.redis).to_string(),
    ));
    env.push(NameValue::new(
        "MANGA_OPENSEARCH_ENDPOINT",
        t.consume(search::COLLECTION_ENDPOINT),
    ));
    env.push(NameValue::new(
        "MANGA_SAGEMAKER_ENDPOINT",
        t.consume(intent::ENDPOINT_NAME),
    ));
    env.sort_by(|a, b| a.name.cmp(&b.name));
    env
}

pub fn template(i: &Inputs<'_>) -> Template {
    let id = StackId::Service;
    let mut t = i.template(id, "ALB, ECS Fargate runtime service and its autoscaling");
    let tags = i.tags(id);
    let to = &i.sizing.timeouts;
    let cap = &i.sizing.service;
    t.metadata(
        "Capacity",
        json!({
            "Tasks": cap.tasks,
            "Note": "The sized task count: apply sets it once, after the service is first created. The template has no DesiredCount, so no update resets what the autoscaler or mangactl scale chose."
        }),
    );

    let image = t.parameter(
        "ContainerImage",
        Parameter {
            kind: "String",
            description: "Runtime container image; defaults to the environment file's `image`"
                .into(),
            default: Some(i.env.image.clone()),
            allowed_pattern: Some(r"^\S+$".into()),
        },
    );

    let public = t.consume_list(network::PUBLIC_SUBNETS);
    let private = t.consume_list(network::PRIVATE_SUBNETS);
    let alb_sg = t.consume(network::ALB_SG);
    let service_sg = t.consume(network::SERVICE_SG);
    let vpc = t.consume(network::VPC_ID);

    // ALB access logs, in this Region as they must be.
    let elb_writer = match ELB_LOG_ACCOUNTS.iter().find(|(r, _)| *r == i.env.region) {
        Some((_, account)) => Principal::Aws(Expr::Str(format!("arn:aws:iam::{account}:root"))),
        None => Principal::Service("logdelivery.elasticloadbalancing.amazonaws.com".into()),
    };
    let (log_bucket, log_bucket_policy) = super::log_bucket(
        i,
        &mut t,
        id,
        "AccessLogBucket",
        false,
        vec![Statement {
            sid: Some("AlbAccessLogs".into()),
            effect: Effect::Allow,
            principal: Some(elb_writer),
            action: vec!["s3:PutObject".into()],
            resource: Some(vec![Expr::sub(format!(
                "arn:${{AWS::Partition}}:s3:::${{AccessLogBucket}}/{ALB_LOG_PREFIX}/AWSLogs/${{AWS::AccountId}}/*"
            ))]),
            condition: None,
        }],
    );
    let alb = t.add_with(
        "LoadBalancer",
        LoadBalancer {
            scheme: "internet-facing".into(),
            kind: "application".into(),
            subnets: public,
            security_groups: vec![alb_sg],
            load_balancer_attributes: vec![
                KeyValue::new(
                    "deletion_protection.enabled",
                    i.env.protection.termination_protection,
                ),
                KeyValue::new("idle_timeout.timeout_seconds", to.alb_idle_timeout_s),
                KeyValue::new("routing.http.drop_invalid_header_fields.enabled", true),
                KeyValue::new("routing.http2.enabled", true),
                KeyValue::new("access_logs.s3.enabled", true),
                KeyValue::expr("access_logs.s3.bucket", log_bucket.name()),
                KeyValue::new("access_logs.s3.prefix", ALB_LOG_PREFIX),
            ],
            tags: tags.clone(),
        },
        // The ALB checks that it may write to the bucket when logging is set.
        ResourceOpts::new().depends_on(&log_bucket_policy),
    );
    let tg = t.add(
        "TargetGroup",
        TargetGroup {
            port: network::CONTAINER_PORT,
            protocol: "HTTP".into(),
            target_type: "ip".into(),
            vpc_id: vpc,
            health_check_path: "/healthz".into(),
            health_check_protocol: "HTTP".into(),
            health_check_interval_seconds: to.health_check_interval_s,
            health_check_timeout_seconds: to.health_check_timeout_s,
            healthy_threshold_count: to.healthy_threshold,
            unhealthy_threshold_count: to.unhealthy_threshold,
            matcher: Matcher {
                http_code: "200".into(),
            },
            target_group_attributes: vec![
                KeyValue::new(
                    "deregistration_delay.timeout_seconds",
                    to.deregistration_delay_s,
                ),
                KeyValue::new(
                    "load_balancing.algorithm.type",
                    "least_outstanding_requests",
                ),
            ],
            tags: tags.clone(),
        },
    );
    // The origin secret: generated here, replicated to the edge Region
    // when the environment lives elsewhere, since a dynamic reference
    // resolves a secret in the stack's own Region by name. The generated
    // first version holds `current` only (no `previous` to accept yet).
    let secret_name = origin_secret_name(i.env);
    let replicas = (i.env.region != super::EDGE_REGION).then(|| {
        vec![ReplicaRegion {
            region: super::EDGE_REGION.into(),
        }]
    });
    let secret = t.add(
        "OriginSecret",
        Secret {
            name: secret_name.clone(),
            description: format!(
                "MangaAssist {}: the {ORIGIN_HEADER} value CloudFront sends and the load balancer requires (JSON: current, previous)",
                i.env.name
            ),
            // Header values in a rule condition are up to 128 characters
            // and may use `*` and `?` as wildcards (CloudFormation Template
            // Reference, "AWS::ElasticLoadBalancingV2::ListenerRule
            // HttpHeaderConfig"): letters and digits only.
            generate_secret_string: GenerateSecretString {
                secret_string_template: "{}".into(),
                generate_string_key: ORIGIN_SECRET_CURRENT.into(),
                password_length: 64,
                exclude_punctuation: true,
            },
            replica_regions: replicas,
            tags: tags.clone(),
        },
    );

    // Anything without the origin header gets a 403: the default action.
    // Only the rule below forwards, and only with the header's value
    // ("If you specify multiple strings, the condition is satisfied if one
    // of the strings matches": "AWS::ElasticLoadBalancingV2::ListenerRule
    // HttpHeaderConfig"). CloudFront adds the
    // header (edge stack); the prefix-list rule in the network stack stays
    // as a second fence. Restricting an internet-facing ALB to CloudFront
    // this way is CloudFront Developer Guide, "Restrict access to
    // Application Load Balancers".
    let forbidden = vec![Action::FixedResponse {
        fixed_response_config: FixedResponseConfig {
            status_code: "403".into(),
            content_type: "text/plain".into(),
            message_body: "Forbidden".into(),
        },
    }];
    let listener = match &i.env.domain {
        Some(d) => t.add(
            "HttpsListener",
            Listener {
                load_balancer_arn: alb.arn(),
                port: 443,
                protocol: "HTTPS".into(),
                certificates: Some(vec![Certificate {
                    certificate_arn: d.certificate_arn.clone(),
                }]),
                // TLS 1.2 and 1.3 only.
                ssl_policy: Some("ELBSecurityPolicy-TLS13-1-2-2021-06".into()),
                default_actions: forbidden,
            },
        ),
        // Without a certificate the ALB only accepts CloudFront (network
        // stack), and viewers still get HTTPS from CloudFront's own. This
        // listener is CloudFront's origin, so it cannot redirect to HTTPS;
        // with a domain there is no HTTP listener at all.
        None => t.add(
            "HttpListener",
            Listener {
                load_balancer_arn: alb.arn(),
                port: 80,
                protocol: "HTTP".into(),
                certificates: None,
                ssl_policy: None,
                default_actions: forbidden,
            },
        ),
    };
    let mut accepted = vec![origin_secret_reference(
        i.env,
        Expr::Str(secret_name.clone()),
        ORIGIN_SECRET_CURRENT,
    )];
    if i.env.origin_secret.accept_previous {
        accepted.push(origin_secret_reference(
            i.env,
            Expr::Str(secret_name.clone()),
            ORIGIN_SECRET_PREVIOUS,
        ));
    }
    // By name, not Ref: the reference must fit the 128-character condition
    // value before resolution in emulators; DependsOn orders it after the
    // secret instead.
    let rule = t.add_with(
        "OriginVerifiedRule",
        ListenerRule {
            listener_arn: listener.arn(),
            priority: 1,
            conditions: vec![RuleCondition {
                field: "http-header".into(),
                http_header_config: HttpHeaderConfig {
                    http_header_name: ORIGIN_HEADER.into(),
                    values: accepted,
                },
            }],
            actions: vec![Action::Forward {
                target_group_arn: tg.arn(),
            }],
        },
        ResourceOpts::new().depends_on(&secret),
    );

    let cluster = t.add(
        "Cluster",
        Cluster {
            cluster_settings: vec![NameValue::new("containerInsights", "enabled")],
            tags: tags.clone(),
        },
    );
    // The runtime's log carries customer identifiers and failure reasons:
    // encrypted with a key of its own, usable by CloudWatch Logs for this
    // log group only (CloudWatch Logs User Guide, "Encrypt log data in
    // CloudWatch Logs using AWS Key Management Service": the key policy and
    // its kms:EncryptionContext:aws:logs:arn condition).
    let log_group_name = format!("/mangaassist/{}/runtime", i.env.name);
    let log_key = t.add(
        "LogKey",
        Key {
            description: format!("MangaAssist {}: encrypts the runtime log", i.env.name),
            enable_key_rotation: true,
            key_policy: PolicyDocument::new({
                let mut statements = super::kms_base_statements();
                statements.push(Statement {
                    sid: Some("CloudWatchLogsUse".into()),
                    effect: Effect::Allow,
                    principal: Some(Principal::Service(format!(
                        "logs.{}.amazonaws.com",
                        i.env.region
                    ))),
                    action: [
                        "kms:Decrypt*",
                        "kms:Describe*",
                        "kms:Encrypt*",
                        "kms:GenerateDataKey*",
                        "kms:ReEncrypt*",
                    ]
                    .map(String::from)
                    .to_vec(),
                    resource: Some(vec!["*".into()]),
                    condition: Some(Expr::map([(
                        "ArnLike",
                        Expr::map([(
                            "kms:EncryptionContext:aws:logs:arn",
                            super::arn("logs", &format!("log-group:{log_group_name}")),
                        )]),
                    )])),
                });
                statements
            }),
            tags: tags.clone(),
        },
    );
    let logs = t.add(
        "LogGroup",
        LogGroup {
            log_group_name: log_group_name.clone(),
            // A year in production (the Control Tower control CT.CLOUDWATCH.PR.2);
            // two weeks where environments are torn down (baseline-exceptions.yaml).
            retention_in_days: if i.env.is_production() { 365 } else { 14 },
            kms_key_id: Some(log_key.arn()),
            tags: tags.clone(),
        },
    );

    let execution_role = t.add(
        "ExecutionRole",
        Role {
            role_name: None,
            description: "Pulls the runtime image and writes its logs".into(),
            assume_role_policy_document: PolicyDocument::assumed_by("ecs-tasks.amazonaws.com"),
            managed_policy_arns: Some(vec![Expr::sub("arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy")]),
            policies: None,
            tags: tags.clone(),
        },
    );

    let table_arn = t.consume(memory::TABLE_ARN);
    let collection_arn = t.consume(search::COLLECTION_ARN);
    let endpoint_arn = t.consume(intent::ENDPOINT_ARN);
    let models: Vec<Expr> = i
        .env
        .llm
        .models()
        .iter()
        .flat_map(|m| model_arns(&m.model_id))
        .collect();
    let mut statements = vec![Statement::allow(
        "ConversationTable",
        &[
            "dynamodb:BatchWriteItem",
            "dynamodb:DeleteItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
        ],
        vec![table_arn],
    )];
    if i.sizing.dax.enabled {
        statements.push(Statement::allow(
            "ConversationCache",
            &[
                "dax:BatchWriteItem",
                "dax:DeleteItem",
                "dax:GetItem",
                "dax:PutItem",
                "dax:Query",
                "dax:UpdateItem",
            ],
            vec![t.consume(memory::DAX_ARN)],
        ));
    }
    // IAM authentication to Redis: Connect on the replication group and on
    // the user (ElastiCache User Guide, "Authenticating with IAM": the
    // policy names both).
    statements.push(Statement::allow(
        "RedisConnect",
        &["elasticache:Connect"],
        vec![
            super::arn(
                "elasticache",
                &format!("replicationgroup:{}", cache::replication_group_id(i.env)),
            ),
            super::arn(
                "elasticache",
                &format!("user:{}", cache::redis_user_id(i.env)),
            ),
        ],
    ));
    // The drain poll. DescribeTargetHealth has no resource type in the
    // Service Authorization Reference ("Actions, resources, and condition
    // keys for Elastic Load Balancing V2": no resource-level permissions),
    // so `*` is as tight as IAM allows; it reads health only.
    statements.push(Statement::allow(
        "DrainPoll",
        &["elasticloadbalancing:DescribeTargetHealth"],
        vec!["*".into()],
    ));
    statements.extend([
        Statement::allow("Retrieval", &["aoss:APIAccessAll"], vec![collection_arn]),
        Statement::allow(
            "IntentModel",
            &["sagemaker:InvokeEndpoint"],
            vec![endpoint_arn],
        ),
        Statement::allow(
            "Llm",
            &[
                "bedrock:InvokeModel",
                "bedrock:InvokeModelWithResponseStream",
            ],
            models,
        ),
    ]);
    let task_role = t.add(
        "TaskRole",
        Role {
            role_name: Some(Expr::Str(task_role_name(i.env))),
            description: "The runtime: this environment's table, DAX, collection, intent endpoint and model only".into(),
            assume_role_policy_document: PolicyDocument::assumed_by("ecs-tasks.amazonaws.com"),
            managed_policy_arns: None,
            policies: Some(vec![InlinePolicy {
                policy_name: "runtime".into(),
                policy_document: PolicyDocument::new(statements),
            }]),
            tags: tags.clone(),
        },
    );

    let environment = container_environment(i, &mut t, tg.arn());
    let task = t.add(
        "TaskDefinition",
        TaskDefinition {
            family: format!("{}-runtime", i.prefix()),
            cpu: cap.cpu.to_string(),
            memory: cap.memory_mib.to_string(),
            network_mode: "awsvpc".into(),
            requires_compatibilities: vec!["FARGATE".into()],
            execution_role_arn: execution_role.arn(),
            task_role_arn: task_role.arn(),
            runtime_platform: RuntimePlatform {
                cpu_architecture: "X86_64".into(),
                operating_system_family: "LINUX".into(),
            },
            container_definitions: vec![ContainerDefinition {
                name: CONTAINER_NAME.into(),
                image: image.reference(),
                user: RUNTIME_USER.into(),
                // The task's whole memory: one container, killed rather
                // than left to swap past what sizing gave it.
                memory: cap.memory_mib,
                essential: true,
                port_mappings: vec![PortMapping {
                    container_port: network::CONTAINER_PORT,
                    protocol: "tcp".into(),
                    name: "http".into(),
                }],
                environment,
                log_configuration: LogConfiguration {
                    log_driver: "awslogs".into(),
                    options: BTreeMap::from([
                        ("awslogs-group".to_owned(), logs.name()),
                        ("awslogs-region".to_owned(), Expr::sub("${AWS::Region}")),
                        (
                            "awslogs-stream-prefix".to_owned(),
                            Expr::Str("runtime".into()),
                        ),
                    ]),
                },
                health_check: HealthCheck {
                    command: vec!["CMD".into(), RUNTIME_BINARY.into(), "healthcheck".into()],
                    interval: to.health_check_interval_s,
                    timeout: to.health_check_timeout_s,
                    retries: to.unhealthy_threshold,
                    start_period: 15,
                },
                stop_timeout: to.container_stop_timeout_s,
                readonly_root_filesystem: true,
                // One file descriptor per WebSocket, with room to spare.
                ulimits: vec![Ulimit {
                    name: "nofile".into(),
                    soft_limit: 65_536,
                    hard_limit: 65_536,
                }],
            }],
            tags: tags.clone(),
        },
    );

    let service = t.add_with(
        "Service",
        Service {
            cluster: cluster.name(),
            task_definition: task.arn(),
            launch_type: "FARGATE".into(),
            deployment_configuration: DeploymentConfiguration {
                deployment_circuit_breaker: CircuitBreaker {
                    enable: true,
                    rollback: true,
                },
                maximum_percent: 200,
                minimum_healthy_percent: 100,
            },
            network_configuration: NetworkConfiguration {
                awsvpc_configuration: AwsVpcConfiguration {
                    assign_public_ip: "DISABLED".into(),
                    subnets: private,
                    security_groups: vec![service_sg],
                },
            },
            load_balancers: vec![ServiceLoadBalancer {
                container_name: CONTAINER_NAME.into(),
                container_port: network::CONTAINER_PORT,
                target_group_arn: tg.arn(),
            }],
            health_check_grace_period_seconds: to.health_check_grace_period_s,
            enable_ecs_managed_tags: true,
            propagate_tags: "SERVICE".into(),
            tags,
        },
        ResourceOpts::new().depends_on(&rule),
    );

    // The minimum follows the hourly profile (sizing's schedule.rs); the
    // template's MinCapacity is the floor it never goes below.
    let schedule = &i.sizing.schedule;
    let scheduled_actions = ScheduledAction::hourly(
        &i.prefix(),
        &schedule.service.hourly_min,
        cap.min_tasks,
        &schedule.timezone,
    );
    let target = t.add(
        "ScalableTarget",
        ScalableTarget {
            min_capacity: cap.min_tasks,
            max_capacity: cap.max_tasks,
            resource_id: Expr::join("/", [Expr::str("service"), cluster.name(), service.name()]),
            scalable_dimension: "ecs:service:DesiredCount".into(),
            service_namespace: "ecs".into(),
            suspended_state: suspended_state(&scheduled_actions),
            scheduled_actions,
        },
    );
    // Target tracking on what binds a chat task: the per-task averages of its
    // connected sessions and its LLM streams in flight (the runtime writes
    // both as EMF every few seconds, dimension Environment; with every task
    // sampling at the same cadence, the Average over a period is the mean per
    // task, which falls in proportion as tasks are added, as target tracking
    // requires), and CPU. The targets are sizing's, so the task count sizing
    // chose is where the binding policy settles at peak. With several
    // policies the service scales out when any asks and in only when all
    // agree (Application Auto Scaling User Guide, "Target tracking scaling
    // policies": multiple policies).
    let gauge = |metric: &str| {
        TrackedMetric::Customized(CustomizedMetric {
            metric_name: metric.into(),
            namespace: observability::RUNTIME_NAMESPACE.into(),
            dimensions: vec![MetricDimension {
                name: "Environment".into(),
                value: Expr::str(i.env.name.as_str()),
            }],
            statistic: "Average".into(),
            unit: "Count".into(),
        })
    };
    let policies = [
        (
            "SessionsScalingPolicy",
            "sessions",
            gauge(observability::SESSIONS_METRIC),
            f64::from(cap.target_sessions_per_task),
        ),
        (
            "StreamsScalingPolicy",
            "streams",
            gauge(observability::STREAMS_METRIC),
            f64::from(cap.target_streams_per_task),
        ),
        (
            "CpuScalingPolicy",
            "cpu",
            TrackedMetric::Predefined(PredefinedMetric {
                predefined_metric_type: "ECSServiceAverageCPUUtilization".into(),
            }),
            f64::from(cap.target_cpu_percent),
        ),
    ];
    for (id, suffix, metric, target_value) in policies {
        t.add(
            id,
            ScalingPolicy {
                policy_name: format!("{}-{suffix}", i.prefix()),
                policy_type: "TargetTrackingScaling".into(),
                scaling_target_id: target.id(),
                target_tracking_scaling_policy_configuration: TargetTracking::new(
                    metric,
                    target_value,
                    300,
                    60,
                ),
            },
        );
    }

    t.publish(
        ALB_DNS,
        alb.dns_name(),
        "Load balancer DNS name (CloudFront origin)",
    );
    t.publish(
        ALB_FULL_NAME,
        alb.full_name(),
        "Load balancer full name (CloudWatch dimension)",
    );
    // The ARN's last `:` field is the full name (`targetgroup/name/id`),
    // which is what the TargetGroupFullName attribute returns; derived here
    // because emulators lack that attribute.
    t.publish(
        TARGET_GROUP_FULL_NAME,
        Expr::Select(5, Box::new(Expr::split(":", tg.arn()))),
        "Target group full name (CloudWatch dimension)",
    );
    t.publish(CLUSTER_NAME, cluster.name(), "ECS cluster name");
    t.publish(SERVICE_NAME, service.name(), "ECS service name");
    t.publish(
        TASK_DEFINITION,
        task.arn(),
        "Task definition revision the service runs",
    );
    t.publish(LOG_GROUP, logs.name(), "Runtime log group");
    t.publish(
        ORIGIN_SECRET_NAME,
        Expr::Str(secret_name),
        "Origin secret name (replicated to the edge Region)",
    );
    t
}
