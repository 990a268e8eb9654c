//! `cache`: the ElastiCache Redis replication group for response and FAQ
//! caching: TLS in transit, encryption at rest, automatic failover and
//! multi-AZ where replicas exist, reachable only from the runtime's group.

use super::{network, Inputs, StackId};
use crate::model::resources::elasticache::*;
use crate::model::{OutputKey, Policy, ResourceOpts, Template};
use sizing::resources::redis::RedisPlan;

pub const ENDPOINT: OutputKey = OutputKey::new("cache", "RedisEndpoint");
pub const PORT: OutputKey = OutputKey::new("cache", "RedisPort");
pub const GROUP_ID: OutputKey = OutputKey::new("cache", "ReplicationGroupId");

/// Whether the replication group is cluster mode enabled: more than one shard needs
/// it. It decides the parameter group and which endpoint [`ENDPOINT`] publishes here,
/// and which Redis client the runtime uses (`MANGA_REDIS_CLUSTER`, service stack).
pub fn cluster_mode(redis: &RedisPlan) -> bool {
    redis.shards > 1
}

pub fn template(i: &Inputs<'_>) -> Template {
    let id = StackId::Cache;
    let mut t = i.template(id, "ElastiCache Redis response cache");
    let tags = i.tags(id);
    let cap = &i.sizing.redis;

    let subnets = t.consume_list(network::PRIVATE_SUBNETS);
    let sg = t.consume(network::REDIS_SG);
    let subnet_group = t.add(
        "RedisSubnetGroup",
        SubnetGroup {
            description: format!("MangaAssist {} Redis private subnets", i.env.name),
            subnet_ids: subnets,
            tags: tags.clone(),
        },
    );

    let cluster = cluster_mode(cap);
    let failover = cap.replicas_per_shard >= 1;
    // A snapshot on delete only makes sense where data is kept at all.
    let policy = if i.retain_data() {
        Policy::Snapshot
    } else {
        Policy::Delete
    };
    let group = t.add_with(
        "Redis",
        ReplicationGroup {
            replication_group_id: i.prefix(),
            replication_group_description: format!("MangaAssist {} response cache", i.env.name),
            engine: "redis".into(),
            engine_version: "7.1".into(),
            cache_node_type: cap.node_type.clone(),
            cache_parameter_group_name: if cluster {
                "default.redis7.cluster.on"
            } else {
                "default.redis7"
            }
            .into(),
            num_node_groups: cap.shards,
            replicas_per_node_group: cap.replicas_per_shard,
            automatic_failover_enabled: failover,
            multi_az_enabled: failover,
            transit_encryption_enabled: true,
            at_rest_encryption_enabled: true,
            cache_subnet_group_name: subnet_group.name(),
            security_group_ids: vec![sg],
            port: network::REDIS_PORT,
            snapshot_retention_limit: if i.retain_data() { 7 } else { 0 },
            tags,
        },
        ResourceOpts::new().deletion(policy),
    );

    let endpoint = if cluster {
        group.configuration_address()
    } else {
        group.primary_address()
    };
    t.publish(ENDPOINT, endpoint, "Redis endpoint address (TLS)");
    t.publish(PORT, network::REDIS_PORT.to_string().into(), "Redis port");
    t.publish(GROUP_ID, group.id(), "Replication group ID");
    t
}
