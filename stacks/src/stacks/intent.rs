//! `intent`: the SageMaker real-time endpoint for the intent classifier
//! (model, endpoint configuration, endpoint) with target-tracking
//! autoscaling on invocations per instance.

use std::collections::BTreeMap;

use super::{arn, Inputs, StackId};
use crate::model::resources::autoscaling::*;
use crate::model::resources::iam::{InlinePolicy, PolicyDocument, Role, Statement};
use crate::model::resources::sagemaker::*;
use crate::model::{Expr, OutputKey, ResourceOpts, Template};

pub const ENDPOINT_NAME: OutputKey = OutputKey::new("intent", "EndpointName");
pub const ENDPOINT_ARN: OutputKey = OutputKey::new("intent", "EndpointArn");
pub const VARIANT_NAME: OutputKey = OutputKey::new("intent", "VariantName");

pub const VARIANT: &str = "AllTraffic";

/// `s3://bucket/key` → (bucket, key).
fn split_s3(url: &str) -> (&str, &str) {
    let rest = url.trim_start_matches("s3://");
    rest.split_once('/').unwrap_or((rest, ""))
}

/// An ECR image URI's repository ARN, when the image is in ECR.
fn ecr_repository_arn(image: &str) -> Option<String> {
    let (host, path) = image.split_once('/')?;
    let mut parts = host.split('.');
    let account = parts.next()?;
    let (dkr, ecr, region) = (parts.next()?, parts.next()?, parts.next()?);
    if dkr != "dkr" || ecr != "ecr" || account.len() != 12 {
        return None;
    }
    let repo = path.split([':', '@']).next()?;
    Some(format!("arn:aws:ecr:{region}:{account}:repository/{repo}"))
}

pub fn template(i: &Inputs<'_>) -> Template {
    let id = StackId::Intent;
    let mut t = i.template(id, "SageMaker endpoint for the intent classifier");
    let tags = i.tags(id);
    let endpoint_name = format!("{}-intent", i.prefix());
    let cap = &i.sizing.sagemaker;
    let model_cfg = &i.env.intent_model;
    let (bucket, key) = split_s3(&model_cfg.model_data_url);

    let mut statements = vec![
        Statement::allow(
            "ModelArtifact",
            &["s3:GetObject"],
            vec![Expr::sub(format!(
                "arn:${{AWS::Partition}}:s3:::{bucket}/{key}"
            ))],
        ),
        Statement::allow("EcrAuth", &["ecr:GetAuthorizationToken"], vec!["*".into()]),
        Statement::allow(
            "Logs",
            &[
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
            ],
            vec![arn("logs", "log-group:/aws/sagemaker/Endpoints/*")],
        ),
        Statement::allow("Metrics", &["cloudwatch:PutMetricData"], vec!["*".into()]),
    ];
    if let Some(repo) = ecr_repository_arn(&model_cfg.image) {
        statements.push(Statement::allow(
            "EcrPull",
            &[
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
            ],
            vec![repo.into()],
        ));
    }
    let role = t.add(
        "ExecutionRole",
        Role {
            role_name: None,
            description: "SageMaker execution role for the intent classifier".into(),
            assume_role_policy_document: PolicyDocument::assumed_by("sagemaker.amazonaws.com"),
            managed_policy_arns: None,
            policies: Some(vec![InlinePolicy {
                policy_name: "intent-model".into(),
                policy_document: PolicyDocument::new(statements),
            }]),
            tags: tags.clone(),
        },
    );

    let model = t.add(
        "Model",
        Model {
            execution_role_arn: role.arn(),
            // The classifier needs nothing beyond its artifact, which
            // SageMaker downloads before the container starts.
            enable_network_isolation: true,
            primary_container: ContainerDefinition {
                image: model_cfg.image.clone(),
                model_data_url: model_cfg.model_data_url.clone(),
                environment: BTreeMap::from([(
                    "HF_TASK".to_owned(),
                    "text-classification".to_owned(),
                )]),
            },
            tags: tags.clone(),
        },
    );
    let config = t.add(
        "EndpointConfig",
        EndpointConfig {
            production_variants: vec![ProductionVariant {
                model_name: model.name(),
                variant_name: VARIANT.into(),
                initial_instance_count: cap.instances,
                instance_type: cap.instance_type.clone(),
                initial_variant_weight: 1.0,
            }],
            tags: tags.clone(),
        },
    );
    let endpoint = t.add(
        "Endpoint",
        Endpoint {
            endpoint_name: endpoint_name.clone(),
            endpoint_config_name: config.name(),
            // The instance count belongs to the autoscaler and `mangactl
            // scale` once the endpoint runs: an update (a new endpoint
            // config) keeps it. The weight is the template's: a single
            // variant at 1.0, applied on every update ("DesiredWeight:
            // Overrides the existing variant weights using the
            // InitialVariantWeight values", SageMaker API Reference,
            // VariantProperty).
            retain_all_variant_properties: true,
            exclude_retained_variant_properties: vec![VariantProperty {
                variant_property_type: "DesiredWeight".into(),
            }],
            tags,
        },
    );

    let schedule = &i.sizing.schedule;
    let scheduled_actions = ScheduledAction::hourly(
        &endpoint_name,
        &schedule.sagemaker.hourly_min,
        cap.min_instances,
        &schedule.timezone,
    );
    let target = t.add_with(
        "ScalableTarget",
        ScalableTarget {
            min_capacity: cap.min_instances,
            max_capacity: cap.max_instances,
            resource_id: Expr::Str(format!("endpoint/{endpoint_name}/variant/{VARIANT}")),
            scalable_dimension: "sagemaker:variant:DesiredInstanceCount".into(),
            service_namespace: "sagemaker".into(),
            suspended_state: suspended_state(&scheduled_actions),
            scheduled_actions,
        },
        ResourceOpts::new().depends_on(&endpoint),
    );
    t.add(
        "ScalingPolicy",
        ScalingPolicy {
            policy_name: format!("{endpoint_name}-invocations"),
            policy_type: "TargetTrackingScaling".into(),
            scaling_target_id: target.id(),
            target_tracking_scaling_policy_configuration: TargetTracking::new(
                TrackedMetric::Predefined(PredefinedMetric {
                    predefined_metric_type: "SageMakerVariantInvocationsPerInstance".into(),
                }),
                f64::from(cap.target_invocations_per_instance),
                300,
                60,
            ),
        },
    );

    t.publish(ENDPOINT_NAME, endpoint.name(), "Intent endpoint name");
    t.publish(ENDPOINT_ARN, endpoint.arn(), "Intent endpoint ARN");
    t.publish(
        VARIANT_NAME,
        Expr::Str(VARIANT.into()),
        "Production variant name",
    );
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_arns_and_s3_urls_split() {
        assert_eq!(
            ecr_repository_arn("763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:2.1.0-cpu"),
            Some("arn:aws:ecr:us-east-1:763104351884:repository/huggingface-pytorch-inference".into())
        );
        assert_eq!(ecr_repository_arn("public.ecr.aws/x/y:latest"), None);
        assert_eq!(split_s3("s3://b/k/model.tar.gz"), ("b", "k/model.tar.gz"));
    }
}
