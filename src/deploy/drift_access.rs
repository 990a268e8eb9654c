//! What `mangactl drift` needs to be allowed to do, kept beside the code so
//! the CI recipe's read-only policy (`examples/ci/drift-readonly-policy.json`)
//! can be checked against it (`tests/it/drift.rs`).
//!
//! Two parts: the calls `drift` makes itself ([`DRIFT_CALLS`]), and, because
//! DetectStackDrift reads every resource with the caller's permissions, the
//! read permissions of each resource type the templates use
//! ([`READ_PERMISSIONS`], from the read handlers of the resource type
//! schemas in the CloudFormation registry, `aws cloudformation
//! describe-type --type RESOURCE --type-name T`, `handlers.read.permissions`;
//! look a new type up there when adding it). The types issue 13 added
//! (KMS, S3, SNS, Secrets Manager, listener rules, ElastiCache users) carry
//! their read handlers as the providers' published schemas list them; they
//! were not re-read with `describe-type` here (no AWS account).

/// The API actions `drift` calls (and the lookups it shares with `plan`).
pub const DRIFT_CALLS: &[&str] = &[
    "cloudformation:DescribeStacks",
    "cloudformation:GetTemplate",
    "cloudformation:ListStacks",
    "cloudformation:DetectStackDrift",
    "cloudformation:DescribeStackDriftDetectionStatus",
    "cloudformation:DescribeStackResourceDrifts",
    "ec2:DescribeManagedPrefixLists",
    // Scale records (src/aws/scale_records.rs).
    "ssm:GetParametersByPath",
    // The live-capacity layer (src/deploy/live.rs, src/aws/capacity.rs).
    "ecs:DescribeServices",
    "application-autoscaling:DescribeScalableTargets",
    "elasticache:DescribeReplicationGroups",
    "dax:DescribeClusters",
    "sagemaker:DescribeEndpoint",
    "aoss:GetAccountSettings",
];

/// Resource type → the actions its read handler needs.
pub const READ_PERMISSIONS: &[(&str, &[&str])] = &[
    (
        "AWS::ApplicationAutoScaling::ScalableTarget",
        &[
            "application-autoscaling:DescribeScalableTargets",
            "application-autoscaling:DescribeScheduledActions",
        ],
    ),
    (
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        &["application-autoscaling:DescribeScalingPolicies"],
    ),
    (
        "AWS::CloudFront::Distribution",
        &[
            "cloudfront:GetDistribution",
            "cloudfront:GetDistributionConfig",
            "cloudfront:ListTagsForResource",
        ],
    ),
    (
        "AWS::CloudFront::OriginRequestPolicy",
        &["cloudfront:GetOriginRequestPolicy"],
    ),
    (
        "AWS::CloudWatch::Alarm",
        &[
            "cloudwatch:DescribeAlarms",
            "cloudwatch:ListTagsForResource",
        ],
    ),
    ("AWS::CloudWatch::Dashboard", &["cloudwatch:GetDashboard"]),
    (
        "AWS::DAX::Cluster",
        &["dax:DescribeClusters", "dax:ListTags"],
    ),
    (
        "AWS::DAX::ParameterGroup",
        &["dax:DescribeParameterGroups", "dax:DescribeParameters"],
    ),
    ("AWS::DAX::SubnetGroup", &["dax:DescribeSubnetGroups"]),
    (
        "AWS::DynamoDB::Table",
        &[
            "dynamodb:DescribeTable",
            "dynamodb:DescribeContinuousBackups",
            "dynamodb:DescribeTimeToLive",
            "dynamodb:DescribeContributorInsights",
            "dynamodb:DescribeKinesisStreamingDestination",
            "dynamodb:ListTagsOfResource",
            "dynamodb:GetResourcePolicy",
        ],
    ),
    ("AWS::EC2::EIP", &["ec2:DescribeAddresses"]),
    (
        "AWS::EC2::InternetGateway",
        &["ec2:DescribeInternetGateways"],
    ),
    ("AWS::EC2::NatGateway", &["ec2:DescribeNatGateways"]),
    ("AWS::EC2::Route", &["ec2:DescribeRouteTables"]),
    ("AWS::EC2::RouteTable", &["ec2:DescribeRouteTables"]),
    (
        "AWS::EC2::SecurityGroup",
        &[
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSecurityGroupRules",
        ],
    ),
    (
        "AWS::EC2::SecurityGroupEgress",
        &["ec2:DescribeSecurityGroupRules"],
    ),
    (
        "AWS::EC2::SecurityGroupIngress",
        &["ec2:DescribeSecurityGroupRules"],
    ),
    (
        "AWS::EC2::Subnet",
        &["ec2:DescribeSubnets", "ec2:DescribeNetworkAcls"],
    ),
    (
        "AWS::EC2::SubnetRouteTableAssociation",
        &["ec2:DescribeRouteTables"],
    ),
    (
        "AWS::EC2::VPC",
        &[
            "ec2:DescribeVpcs",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeNetworkAcls",
            "ec2:DescribeVpcAttribute",
        ],
    ),
    ("AWS::EC2::VPCEndpoint", &["ec2:DescribeVpcEndpoints"]),
    (
        "AWS::EC2::VPCGatewayAttachment",
        &["ec2:DescribeInternetGateways", "ec2:DescribeVpnGateways"],
    ),
    ("AWS::ECS::Cluster", &["ecs:DescribeClusters"]),
    ("AWS::ECS::Service", &["ecs:DescribeServices"]),
    ("AWS::ECS::TaskDefinition", &["ecs:DescribeTaskDefinition"]),
    (
        "AWS::ElastiCache::ReplicationGroup",
        &[
            "elasticache:DescribeReplicationGroups",
            "elasticache:ListTagsForResource",
        ],
    ),
    (
        "AWS::ElastiCache::User",
        &[
            "elasticache:DescribeUsers",
            "elasticache:ListTagsForResource",
        ],
    ),
    (
        "AWS::ElastiCache::UserGroup",
        &[
            "elasticache:DescribeUserGroups",
            "elasticache:ListTagsForResource",
        ],
    ),
    (
        "AWS::ElastiCache::SubnetGroup",
        &[
            "elasticache:DescribeCacheSubnetGroups",
            "elasticache:ListTagsForResource",
        ],
    ),
    (
        "AWS::ElasticLoadBalancingV2::Listener",
        &[
            "elasticloadbalancing:DescribeListeners",
            "elasticloadbalancing:DescribeListenerAttributes",
        ],
    ),
    (
        "AWS::ElasticLoadBalancingV2::ListenerRule",
        &["elasticloadbalancing:DescribeRules"],
    ),
    (
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        &[
            "elasticloadbalancing:DescribeLoadBalancers",
            "elasticloadbalancing:DescribeLoadBalancerAttributes",
            "elasticloadbalancing:DescribeTags",
        ],
    ),
    (
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        &[
            "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:DescribeTargetGroupAttributes",
            "elasticloadbalancing:DescribeTags",
        ],
    ),
    (
        "AWS::IAM::Role",
        &[
            "iam:GetRole",
            "iam:GetRolePolicy",
            "iam:ListRolePolicies",
            "iam:ListAttachedRolePolicies",
        ],
    ),
    (
        "AWS::KMS::Key",
        &[
            "kms:DescribeKey",
            "kms:GetKeyPolicy",
            "kms:GetKeyRotationStatus",
            "kms:ListResourceTags",
        ],
    ),
    (
        "AWS::Logs::LogGroup",
        &[
            "logs:DescribeLogGroups",
            "logs:ListTagsForResource",
            "logs:DescribeDataProtectionPolicy",
            "logs:GetDataProtectionPolicy",
        ],
    ),
    (
        "AWS::OpenSearchServerless::AccessPolicy",
        &["aoss:GetAccessPolicy"],
    ),
    (
        "AWS::OpenSearchServerless::Collection",
        &["aoss:BatchGetCollection"],
    ),
    (
        "AWS::OpenSearchServerless::SecurityPolicy",
        &["aoss:GetSecurityPolicy"],
    ),
    (
        "AWS::OpenSearchServerless::VpcEndpoint",
        &["aoss:BatchGetVpcEndpoint", "ec2:DescribeVpcEndpoints"],
    ),
    (
        "AWS::S3::Bucket",
        &[
            "s3:GetAccelerateConfiguration",
            "s3:GetLifecycleConfiguration",
            "s3:GetBucketPublicAccessBlock",
            "s3:GetAnalyticsConfiguration",
            "s3:GetBucketCORS",
            "s3:GetEncryptionConfiguration",
            "s3:GetInventoryConfiguration",
            "s3:GetBucketLogging",
            "s3:GetMetricsConfiguration",
            "s3:GetBucketNotification",
            "s3:GetBucketVersioning",
            "s3:GetReplicationConfiguration",
            "s3:GetBucketWebsite",
            "s3:GetBucketObjectLockConfiguration",
            "s3:GetBucketOwnershipControls",
            "s3:GetBucketTagging",
            "s3:GetIntelligentTieringConfiguration",
            "s3:ListBucket",
        ],
    ),
    ("AWS::S3::BucketPolicy", &["s3:GetBucketPolicy"]),
    (
        "AWS::SageMaker::Endpoint",
        &["sagemaker:DescribeEndpoint", "sagemaker:ListTags"],
    ),
    (
        "AWS::SageMaker::EndpointConfig",
        &["sagemaker:DescribeEndpointConfig", "sagemaker:ListTags"],
    ),
    (
        "AWS::SageMaker::Model",
        &["sagemaker:DescribeModel", "sagemaker:ListTags"],
    ),
    (
        "AWS::SecretsManager::Secret",
        &[
            "secretsmanager:DescribeSecret",
            "secretsmanager:GetSecretValue",
        ],
    ),
    ("AWS::SNS::Subscription", &["sns:GetSubscriptionAttributes"]),
    (
        "AWS::SNS::Topic",
        &[
            "sns:GetTopicAttributes",
            "sns:ListTagsForResource",
            "sns:ListSubscriptionsByTopic",
            "sns:GetDataProtectionPolicy",
        ],
    ),
    (
        "AWS::WAFv2::WebACL",
        &["wafv2:GetWebACL", "wafv2:ListTagsForResource"],
    ),
];

/// Whether `action` is allowed by an IAM action pattern (`service:Prefix*`).
pub fn allows(pattern: &str, action: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => action
            .to_ascii_lowercase()
            .starts_with(&prefix.to_ascii_lowercase()),
        None => pattern.eq_ignore_ascii_case(action),
    }
}
