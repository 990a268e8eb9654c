//! `cache`: the ElastiCache Redis replication group for response and FAQ
//! caching: TLS in transit, encryption at rest, automatic failover and
//! multi-AZ where replicas exist, reachable only from the runtime's group,
//! and only as the runtime's IAM-authenticated RBAC user ([`redis_user_id`]).

use super::{network, Inputs, StackId};
use crate::model::resources::elasticache::*;
use crate::model::{OutputKey, Policy, ResourceOpts, Template};
use sizing::resources::redis::RedisPlan;

pub const ENDPOINT: OutputKey = OutputKey::new("cache", "RedisEndpoint");
pub const PORT: OutputKey = OutputKey::new("cache", "RedisPort");
pub const GROUP_ID: OutputKey = OutputKey::new("cache", "ReplicationGroupId");

/// The replication group's ID (`mangaassist-<env>`), which the service
/// stack's `elasticache:Connect` grant names.
pub fn replication_group_id(env: &crate::env::Environment) -> String {
    env.prefix()
}

/// The runtime's Redis user. With IAM authentication the user ID and the
/// user name must be the same (ElastiCache User Guide, "Authenticating
/// with IAM": limitations), so this is both; the runtime sends it as the
/// AUTH user with an IAM token as password (`MANGA_REDIS_USER`).
pub fn redis_user_id(env: &crate::env::Environment) -> String {
    format!("{}-runtime", env.prefix())
}

/// Engine version: IAM authentication needs "Redis OSS 7.0 or later, or
/// Valkey" and in-transit encryption ("IAM authentication requires TLS"),
/// and the client's role `elasticache:Connect` on the cache and the user
/// (ElastiCache User Guide, "Migrating from password-based authentication
/// (AUTH) to IAM authentication", prerequisites).
pub const ENGINE_VERSION: &str = "7.1";

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

    // RBAC: a user group must contain a user named `default`; ours is
    // switched off (`off`, no commands), so only the IAM user can connect
    // (ElastiCache User Guide, "Role-Based Access Control (RBAC)": apply
    // RBAC with a default user you create, access string "off -@all").
    let default_user = t.add(
        "RedisDefaultUser",
        User {
            user_id: format!("{}-default", i.prefix()),
            user_name: "default".into(),
            engine: "redis".into(),
            access_string: "off -@all".into(),
            authentication_mode: None,
            no_password_required: Some(true),
            tags: tags.clone(),
        },
    );
    let runtime_user = t.add(
        "RedisRuntimeUser",
        User {
            user_id: redis_user_id(i.env),
            user_name: redis_user_id(i.env),
            engine: "redis".into(),
            access_string: "on ~* +@all".into(),
            authentication_mode: Some(AuthenticationMode { kind: "iam".into() }),
            no_password_required: None,
            tags: tags.clone(),
        },
    );
    let user_group = t.add(
        "RedisUserGroup",
        UserGroup {
            user_group_id: format!("{}-users", i.prefix()),
            engine: "redis".into(),
            user_ids: vec![default_user.id(), runtime_user.id()],
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
            replication_group_id: replication_group_id(i.env),
            replication_group_description: format!("MangaAssist {} response cache", i.env.name),
            engine: "redis".into(),
            engine_version: ENGINE_VERSION.into(),
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
            user_group_ids: vec![user_group.id()],
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
