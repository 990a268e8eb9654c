//! `network`: the VPC over the configured AZs, public and private subnets,
//! NAT (one per AZ in prod, one elsewhere), security groups carrying only
//! the flows the design needs, and a gateway endpoint for DynamoDB.
//!
//! Security groups for every tier live here, not beside their resources,
//! so the cache, memory and search stacks can admit the service's group
//! without importing from the service stack (which imports from them).

use super::{Inputs, StackId};
use crate::model::resources::ec2::*;
use crate::model::{Expr, Handle, Lookup, OutputKey, ResourceOpts, Template};

pub const VPC_ID: OutputKey = OutputKey::new("network", "VpcId");
pub const PUBLIC_SUBNETS: OutputKey = OutputKey::new("network", "PublicSubnetIds");
pub const PRIVATE_SUBNETS: OutputKey = OutputKey::new("network", "PrivateSubnetIds");
pub const ALB_SG: OutputKey = OutputKey::new("network", "AlbSecurityGroupId");
pub const SERVICE_SG: OutputKey = OutputKey::new("network", "ServiceSecurityGroupId");
pub const REDIS_SG: OutputKey = OutputKey::new("network", "RedisSecurityGroupId");
pub const DAX_SG: OutputKey = OutputKey::new("network", "DaxSecurityGroupId");
pub const SEARCH_SG: OutputKey = OutputKey::new("network", "SearchSecurityGroupId");

/// Port the runtime container listens on (runtime/README.md).
pub const CONTAINER_PORT: u16 = 8080;
pub const REDIS_PORT: u16 = 6379;
/// DAX's TLS endpoint port.
pub const DAX_TLS_PORT: u16 = 9111;
/// The AWS-managed prefix list of CloudFront's origin-facing addresses. Its
/// ID differs per region, so the template takes it as a parameter that
/// mangactl looks up by this name at deploy time (CloudFront Developer
/// Guide, "Use the CloudFront managed prefix list").
pub const CLOUDFRONT_ORIGIN_PREFIX_LIST: &str = "com.amazonaws.global.cloudfront.origin-facing";

const VPC_CIDR: &str = "10.0.0.0/16";

pub fn template(i: &Inputs<'_>) -> Template {
    let id = StackId::Network;
    let mut t = i.template(
        id,
        "VPC, subnets, NAT, security groups and the DynamoDB endpoint",
    );
    let tags = |name: &str| {
        let mut v = i.tags(id);
        v.push(crate::model::resources::Tag {
            key: "Name".into(),
            value: Expr::Str(format!("{}-{name}", i.prefix())),
        });
        v
    };

    let vpc = t.add(
        "Vpc",
        Vpc {
            cidr_block: VPC_CIDR.into(),
            enable_dns_hostnames: true,
            enable_dns_support: true,
            tags: tags("vpc"),
        },
    );
    let igw = t.add("InternetGateway", InternetGateway { tags: tags("igw") });
    let attach = t.add(
        "InternetGatewayAttachment",
        VpcGatewayAttachment {
            vpc_id: vpc.id(),
            internet_gateway_id: igw.reference(),
        },
    );

    let public_rt = t.add(
        "PublicRouteTable",
        RouteTable {
            vpc_id: vpc.id(),
            tags: tags("public"),
        },
    );
    t.add_with(
        "PublicDefaultRoute",
        Route {
            route_table_id: public_rt.reference(),
            destination_cidr_block: "0.0.0.0/0".into(),
            gateway_id: Some(igw.reference()),
            nat_gateway_id: None,
        },
        ResourceOpts::new().depends_on(&attach),
    );

    let azs = i.env.az_count;
    let nat_count = if i.env.is_production() { azs } else { 1 };
    let mut public = Vec::new();
    let mut private = Vec::new();
    let mut nats: Vec<Handle<NatGateway>> = Vec::new();
    let mut private_rts = Vec::new();
    for az in 0..azs {
        let n = az + 1;
        let pub_subnet = t.add(
            &format!("PublicSubnet{n}"),
            Subnet {
                vpc_id: vpc.id(),
                cidr_block: format!("10.0.{az}.0/24"),
                availability_zone: Expr::az(az),
                map_public_ip_on_launch: false,
                tags: tags(&format!("public-{n}")),
            },
        );
        t.add(
            &format!("PublicSubnet{n}RouteTableAssociation"),
            SubnetRouteTableAssociation {
                subnet_id: pub_subnet.reference(),
                route_table_id: public_rt.reference(),
            },
        );
        if az < nat_count {
            let eip = t.add_with(
                &format!("NatEip{n}"),
                Eip {
                    domain: "vpc".into(),
                    tags: tags(&format!("nat-{n}")),
                },
                ResourceOpts::new().depends_on(&attach),
            );
            nats.push(t.add(
                &format!("NatGateway{n}"),
                NatGateway {
                    allocation_id: eip.allocation_id(),
                    subnet_id: pub_subnet.reference(),
                    tags: tags(&format!("nat-{n}")),
                },
            ));
        }
        public.push(pub_subnet);

        let priv_subnet = t.add(
            &format!("PrivateSubnet{n}"),
            Subnet {
                vpc_id: vpc.id(),
                cidr_block: format!("10.0.{}.0/19", (az + 1) * 32),
                availability_zone: Expr::az(az),
                map_public_ip_on_launch: false,
                tags: tags(&format!("private-{n}")),
            },
        );
        let rt = t.add(
            &format!("PrivateRouteTable{n}"),
            RouteTable {
                vpc_id: vpc.id(),
                tags: tags(&format!("private-{n}")),
            },
        );
        let nat = &nats[(az as usize).min(nats.len() - 1)];
        t.add(
            &format!("PrivateDefaultRoute{n}"),
            Route {
                route_table_id: rt.reference(),
                destination_cidr_block: "0.0.0.0/0".into(),
                gateway_id: None,
                nat_gateway_id: Some(nat.reference()),
            },
        );
        t.add(
            &format!("PrivateSubnet{n}RouteTableAssociation"),
            SubnetRouteTableAssociation {
                subnet_id: priv_subnet.reference(),
                route_table_id: rt.reference(),
            },
        );
        private.push(priv_subnet);
        private_rts.push(rt);
    }

    t.add(
        "DynamoDbEndpoint",
        VpcEndpoint {
            vpc_id: vpc.id(),
            service_name: Expr::sub("com.amazonaws.${AWS::Region}.dynamodb"),
            vpc_endpoint_type: "Gateway".into(),
            route_table_ids: private_rts.iter().map(|rt| rt.reference()).collect(),
        },
    );

    // Groups that accept traffic only; an egress rule to loopback replaces
    // the default allow-all, so they originate nothing.
    let no_egress = || {
        vec![EgressRule {
            ip_protocol: "-1".into(),
            from_port: None,
            to_port: None,
            cidr_ip: Some("127.0.0.1/32".into()),
            description: "No outbound traffic".into(),
        }]
    };
    let sg = |t: &mut Template,
              logical: &str,
              what: &str,
              ingress: Vec<IngressRule>,
              egress: Vec<EgressRule>| {
        t.add(
            logical,
            SecurityGroup {
                group_description: format!("MangaAssist {} {what}", i.env.name),
                vpc_id: vpc.id(),
                security_group_ingress: ingress,
                security_group_egress: egress,
                tags: tags(&logical.to_lowercase()),
            },
        )
    };
    let listener_port = if i.env.domain.is_some() { 443 } else { 80 };
    let cloudfront_prefix_list = t.lookup(
        "CloudFrontOriginPrefixListId",
        Lookup::ManagedPrefixList(CLOUDFRONT_ORIGIN_PREFIX_LIST.into()),
        "ID of the CloudFront origin-facing managed prefix list in this region (looked up by mangactl at deploy time)",
    );
    let from_cloudfront = IngressRule {
        ip_protocol: "tcp".into(),
        from_port: listener_port,
        to_port: listener_port,
        source_prefix_list_id: Some(cloudfront_prefix_list),
        cidr_ip: None,
        description: "CloudFront origin-facing addresses".into(),
    };
    let alb = sg(
        &mut t,
        "AlbSecurityGroup",
        "load balancer: from CloudFront only",
        vec![from_cloudfront],
        no_egress(),
    );
    let https_out = EgressRule {
        ip_protocol: "tcp".into(),
        from_port: Some(443),
        to_port: Some(443),
        cidr_ip: Some("0.0.0.0/0".into()),
        description: "AWS APIs (Bedrock, SageMaker, DynamoDB, ECR, logs) and the search endpoint"
            .into(),
    };
    let service = sg(
        &mut t,
        "ServiceSecurityGroup",
        "runtime tasks",
        vec![],
        vec![https_out],
    );
    let redis = sg(
        &mut t,
        "RedisSecurityGroup",
        "Redis: from the runtime only",
        vec![],
        no_egress(),
    );
    let dax = sg(
        &mut t,
        "DaxSecurityGroup",
        "DAX: from the runtime only",
        vec![],
        no_egress(),
    );
    let search = sg(
        &mut t,
        "SearchSecurityGroup",
        "OpenSearch Serverless endpoint: from the runtime only",
        vec![],
        no_egress(),
    );

    let flow = |t: &mut Template,
                name: &str,
                from: &Handle<SecurityGroup>,
                to: &Handle<SecurityGroup>,
                port: u16,
                what: &str| {
        t.add(
            &format!("{name}Egress"),
            SecurityGroupEgress {
                group_id: from.group_id(),
                ip_protocol: "tcp".into(),
                from_port: port,
                to_port: port,
                destination_security_group_id: to.group_id(),
                description: what.to_owned(),
            },
        );
        t.add(
            &format!("{name}Ingress"),
            SecurityGroupIngress {
                group_id: to.group_id(),
                ip_protocol: "tcp".into(),
                from_port: port,
                to_port: port,
                source_security_group_id: from.group_id(),
                description: what.to_owned(),
            },
        );
    };
    flow(
        &mut t,
        "AlbToService",
        &alb,
        &service,
        CONTAINER_PORT,
        "ALB to runtime tasks",
    );
    flow(
        &mut t,
        "ServiceToRedis",
        &service,
        &redis,
        REDIS_PORT,
        "Runtime to Redis (TLS)",
    );
    flow(
        &mut t,
        "ServiceToDax",
        &service,
        &dax,
        DAX_TLS_PORT,
        "Runtime to DAX (TLS)",
    );
    flow(
        &mut t,
        "ServiceToSearch",
        &service,
        &search,
        443,
        "Runtime to the OpenSearch Serverless endpoint",
    );

    let join = |hs: &[Handle<Subnet>]| Expr::join(",", hs.iter().map(Handle::reference));
    t.publish(VPC_ID, vpc.id(), "VPC ID");
    t.publish(
        PUBLIC_SUBNETS,
        join(&public),
        "Public subnet IDs, comma-separated",
    );
    t.publish(
        PRIVATE_SUBNETS,
        join(&private),
        "Private subnet IDs, comma-separated",
    );
    t.publish(ALB_SG, alb.group_id(), "Load balancer security group");
    t.publish(
        SERVICE_SG,
        service.group_id(),
        "Runtime task security group",
    );
    t.publish(REDIS_SG, redis.group_id(), "Redis security group");
    t.publish(DAX_SG, dax.group_id(), "DAX security group");
    t.publish(
        SEARCH_SG,
        search.group_id(),
        "OpenSearch Serverless VPC endpoint security group",
    );
    t
}
