//! `memory`: the DynamoDB conversation table (TTL, point-in-time recovery,
//! encryption) and the DAX cluster in front of it (encryption at rest, TLS
//! endpoint, subnet and parameter groups, its own IAM role).

use std::collections::BTreeMap;

use super::{network, Inputs, StackId};
use crate::env::Billing;
use crate::model::resources::dax;
use crate::model::resources::dynamodb::*;
use crate::model::resources::iam::{InlinePolicy, PolicyDocument, Role, Statement};
use crate::model::{Handle, OutputKey, Policy, ResourceOpts, Template};

pub const TABLE_NAME: OutputKey = OutputKey::new("memory", "TableName");
pub const TABLE_ARN: OutputKey = OutputKey::new("memory", "TableArn");
pub const DAX_ARN: OutputKey = OutputKey::new("memory", "DaxClusterArn");
pub const DAX_NAME: OutputKey = OutputKey::new("memory", "DaxClusterName");
pub const DAX_ENDPOINT: OutputKey = OutputKey::new("memory", "DaxEndpoint");

/// Item attribute holding the expiry epoch second (the runtime writes it).
pub const TTL_ATTRIBUTE: &str = "expires_at";

pub fn template(i: &Inputs<'_>) -> Template {
    let id = StackId::Memory;
    let mut t = i.template(id, "DynamoDB conversation memory behind DAX");
    let tags = i.tags(id);

    let ddb = &i.sizing.dynamodb;
    let (billing_mode, provisioned_throughput) = match ddb.billing {
        Billing::OnDemand => ("PAY_PER_REQUEST", None),
        Billing::Provisioned => (
            "PROVISIONED",
            Some(ProvisionedThroughput {
                read_capacity_units: ddb.rcu,
                write_capacity_units: ddb.wcu,
            }),
        ),
    };
    // DynamoDB has no snapshot-on-delete; Retain plus PITR keeps the data.
    let table_policy = if i.retain_data() {
        Policy::Retain
    } else {
        Policy::Delete
    };
    let table = t.add_with(
        "ConversationTable",
        Table {
            billing_mode: billing_mode.into(),
            attribute_definitions: vec![
                AttributeDefinition {
                    attribute_name: "session_id".into(),
                    attribute_type: "S".into(),
                },
                AttributeDefinition {
                    attribute_name: "turn".into(),
                    attribute_type: "N".into(),
                },
            ],
            key_schema: vec![
                KeySchema {
                    attribute_name: "session_id".into(),
                    key_type: "HASH".into(),
                },
                KeySchema {
                    attribute_name: "turn".into(),
                    key_type: "RANGE".into(),
                },
            ],
            provisioned_throughput,
            time_to_live_specification: TimeToLive {
                attribute_name: TTL_ATTRIBUTE.into(),
                enabled: true,
            },
            point_in_time_recovery_specification: PointInTimeRecovery {
                point_in_time_recovery_enabled: true,
            },
            sse_specification: Sse { enabled: true },
            deletion_protection_enabled: i.retain_data(),
            tags: tags.clone(),
        },
        ResourceOpts::new().deletion(table_policy),
    );

    t.publish(TABLE_NAME, table.name(), "Conversation table name");
    t.publish(TABLE_ARN, table.arn(), "Conversation table ARN");
    // Sizing leaves DAX out when DynamoDB alone meets the memory-read budget.
    if i.sizing.dax.enabled {
        dax_cluster(i, &mut t, &table);
    }
    t
}

/// The DAX cluster, its role, subnet and parameter groups, and its exports.
fn dax_cluster(i: &Inputs<'_>, t: &mut Template, table: &Handle<Table>) {
    let id = StackId::Memory;
    let tags = i.tags(id);
    let role = t.add(
        "DaxRole",
        Role {
            role_name: None,
            description: "Lets DAX read and write the conversation table".into(),
            assume_role_policy_document: PolicyDocument::assumed_by("dax.amazonaws.com"),
            managed_policy_arns: None,
            policies: Some(vec![InlinePolicy {
                policy_name: "conversation-table".into(),
                policy_document: PolicyDocument::new(vec![Statement::allow(
                    "ConversationTable",
                    &[
                        "dynamodb:BatchGetItem",
                        "dynamodb:BatchWriteItem",
                        "dynamodb:ConditionCheckItem",
                        "dynamodb:DeleteItem",
                        "dynamodb:DescribeTable",
                        "dynamodb:GetItem",
                        "dynamodb:PutItem",
                        "dynamodb:Query",
                        "dynamodb:UpdateItem",
                    ],
                    vec![table.arn()],
                )]),
            }]),
            tags: tags.clone(),
        },
    );

    let subnets = t.consume_list(network::PRIVATE_SUBNETS);
    let dax_sg = t.consume(network::DAX_SG);
    let subnet_group = t.add(
        "DaxSubnetGroup",
        dax::SubnetGroup {
            description: format!("MangaAssist {} DAX private subnets", i.env.name),
            subnet_ids: subnets,
        },
    );
    // The runtime (runtime/src/backends/aws/dax.rs) writes through DAX and reads
    // items (a session head, then its turns) on the primary, so its own writes are
    // never stale; the item TTL bounds the one staleness left: a session head
    // written straight to DynamoDB while DAX was unreachable stays unseen in the
    // item cache until it expires. Sizing sets it just long enough for the oldest
    // history turn a message reads to be cached still (sizing's
    // resources::dax::item_ttl_ms: 4 minutes at 2 messages a minute). The query
    // cache is not used for reads (its consistent Query passes through).
    let params = t.add(
        "DaxParameterGroup",
        dax::ParameterGroup {
            description: format!("MangaAssist {} DAX cache TTLs", i.env.name),
            parameter_name_values: BTreeMap::from([
                ("query-ttl-millis".to_owned(), "60000".to_owned()),
                (
                    "record-ttl-millis".to_owned(),
                    i.sizing.dax.item_ttl_ms.to_string(),
                ),
            ]),
        },
    );
    let cluster = t.add(
        "DaxCluster",
        dax::Cluster {
            description: format!("MangaAssist {} conversation memory cache", i.env.name),
            node_type: i.sizing.dax.node_type.clone(),
            replication_factor: i.sizing.dax.nodes,
            iam_role_arn: role.arn(),
            subnet_group_name: subnet_group.name(),
            parameter_group_name: params.name(),
            security_group_ids: vec![dax_sg],
            sse_specification: dax::DaxSse { enabled: true },
            cluster_endpoint_encryption_type: "TLS".into(),
            tags: i
                .tag_map(id)
                .into_iter()
                .map(|(k, v)| (k, v.into()))
                .collect(),
        },
    );

    t.publish(DAX_ARN, cluster.arn(), "DAX cluster ARN");
    t.publish(DAX_NAME, cluster.name(), "DAX cluster name");
    t.publish(
        DAX_ENDPOINT,
        cluster.discovery_url(),
        "DAX discovery endpoint (daxs://)",
    );
}
