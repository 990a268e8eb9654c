//! `search`: the OpenSearch Serverless VECTORSEARCH collection for RAG
//! retrieval, with its encryption policy (AWS-owned key), a network policy
//! that admits only this VPC's endpoint, and a data access policy scoped to
//! the runtime's task role: what `manga-runtime index` needs to create and fill
//! the retrieval index (run as a one-off task of the same task definition) and
//! what serving needs to read it — nothing else (no index updates or deletes, no
//! aliases or templates).
//!
//! OCU minimums and maximums are account-level settings, not template
//! resources: they are recorded in this template's metadata and the
//! manifest, and `mangactl apply` sets the maxima with UpdateAccountSettings
//! (`src/deploy/capacity.rs`; the API has no minimum setting).

use serde_json::json;

use super::{network, task_role_arn, Inputs, StackId};
use crate::model::resources::aoss::*;
use crate::model::resources::Tag;
use crate::model::{Expr, OutputKey, ResourceOpts, Template};

pub const COLLECTION_ARN: OutputKey = OutputKey::new("search", "CollectionArn");
pub const COLLECTION_ENDPOINT: OutputKey = OutputKey::new("search", "CollectionEndpoint");
pub const COLLECTION_ID: OutputKey = OutputKey::new("search", "CollectionId");
pub const COLLECTION_NAME: OutputKey = OutputKey::new("search", "CollectionName");

pub fn template(i: &Inputs<'_>) -> Template {
    let id = StackId::Search;
    let mut t = i.template(id, "OpenSearch Serverless vector collection for retrieval");
    let name = i.prefix();
    let resource = format!("collection/{name}");
    let os = &i.sizing.opensearch;
    t.metadata(
        "Capacity",
        json!({
            "SearchOCU": { "Min": os.search_ocu_min, "Max": os.search_ocu_max },
            "IndexingOCU": { "Min": os.indexing_ocu_min, "Max": os.indexing_ocu_max },
            "Note": "Account-level OpenSearch Serverless capacity limits (UpdateAccountSettings), not stack resources."
        }),
    );

    let encryption = t.add(
        "EncryptionPolicy",
        SecurityPolicy {
            name: format!("{name}-enc"),
            description: "Encrypt the collection with an AWS-owned key".into(),
            kind: "encryption".into(),
            policy: Expr::Str(json!({ "Rules": [{ "ResourceType": "collection", "Resource": [resource] }], "AWSOwnedKey": true }).to_string()),
        },
    );

    let vpc = t.consume(network::VPC_ID);
    let subnets = t.consume_list(network::PRIVATE_SUBNETS);
    let sg = t.consume(network::SEARCH_SG);
    let endpoint = t.add(
        "VpcEndpoint",
        VpcEndpoint {
            name: format!("{name}-vpce"),
            vpc_id: vpc,
            subnet_ids: subnets,
            security_group_ids: vec![sg],
        },
    );
    let network_policy = json!([{
        "Rules": [
            { "ResourceType": "collection", "Resource": [resource] },
        ],
        "AllowFromPublic": false,
        "SourceVPCEs": ["${Endpoint}"],
    }]);
    let network = t.add(
        "NetworkPolicy",
        SecurityPolicy {
            name: format!("{name}-net"),
            description: "Reach the collection only through this VPC's endpoint".into(),
            kind: "network".into(),
            policy: Expr::sub_with(network_policy.to_string(), [("Endpoint", endpoint.id())]),
        },
    );

    // Permission names and the operations they allow: "Supported operations and
    // plugins in Amazon OpenSearch Serverless",
    // https://docs.aws.amazon.com/opensearch-service/latest/developerguide/serverless-genref.html
    // CreateIndex: PUT <index> (the index command, first run); DescribeIndex:
    // GET <index>/_mapping (its model check); WriteDocument: _bulk index/delete (its
    // writes); ReadDocument: _search (retrieval, and the command's idempotency read).
    let access_policy = json!([{
        "Rules": [
            { "ResourceType": "collection", "Resource": [resource], "Permission": ["aoss:DescribeCollectionItems"] },
            { "ResourceType": "index", "Resource": [format!("index/{name}/*")], "Permission": ["aoss:CreateIndex", "aoss:DescribeIndex", "aoss:ReadDocument", "aoss:WriteDocument"] },
        ],
        "Principal": ["${TaskRole}"],
    }]);
    t.add(
        "DataAccessPolicy",
        AccessPolicy {
            name: format!("{name}-read"),
            description: "Runtime task role: create and fill the retrieval index, read it".into(),
            kind: "data".into(),
            policy: Expr::sub_with(
                access_policy.to_string(),
                [("TaskRole", task_role_arn(i.env))],
            ),
        },
    );

    let standby = if os.standby_replicas {
        "ENABLED"
    } else {
        "DISABLED"
    };
    let tags: Vec<Tag> = i.tags(id);
    let collection = t.add_with(
        "Collection",
        Collection {
            name: name.clone(),
            description: format!("MangaAssist {} catalog and FAQ vectors", i.env.name),
            kind: "VECTORSEARCH".into(),
            standby_replicas: standby.into(),
            tags,
        },
        ResourceOpts::new()
            .depends_on(&encryption)
            .depends_on(&network),
    );

    t.publish(COLLECTION_ARN, collection.arn(), "Collection ARN");
    t.publish(
        COLLECTION_ENDPOINT,
        collection.endpoint(),
        "Collection HTTPS endpoint",
    );
    t.publish(COLLECTION_ID, collection.id(), "Collection ID");
    t.publish(COLLECTION_NAME, Expr::Str(name), "Collection name");
    t
}
