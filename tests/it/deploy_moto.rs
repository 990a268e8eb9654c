//! `plan`, `apply` and `destroy` run as the built binary against moto
//! (`moto.rs`): the dev environment from nothing, a second plan without
//! changes, a change to the environment file, and destroy.
//!
//! moto reports CREATE_COMPLETE for resource types it does not implement
//! (and `scripts/moto-server` gives several of them placeholder models), so
//! what exists is checked through the service APIs moto does implement:
//! ECS (cluster, service desired count, task definition memory and
//! container environment; moto's model drops the task CPU), DynamoDB (table and key schema), EC2 (VPC,
//! subnets, security groups) and ELBv2 (load balancer, target group health
//! check). NOT checked here: CloudFront, WAFv2, DAX, ElastiCache,
//! OpenSearch Serverless, SageMaker, CloudWatch alarms and dashboard,
//! Application Auto Scaling, IAM and Logs; per-resource events, failures and
//! stuck states are covered by the scripted fake (`deploy_fake.rs`).
//!
//! moto has no OpenSearch Serverless account settings; the repo's wrapper
//! adds them (`scripts/moto-server`), so `apply` sets the capacity limits
//! here too; their failure paths are tested against the fake
//! (`deploy_capacity.rs`).

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::moto::Moto;
use crate::moto_client;
use crate::support::{stderr, stdout, TempDir};

const STACKS: [&str; 8] = [
    "network",
    "memory",
    "cache",
    "search",
    "intent",
    "service",
    "edge",
    "observability",
];

fn read_json(path: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())),
    )
    .unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// Renders `env` from `envs` into `out` and returns the templates by stack.
fn render(moto: &Moto, envs: &Path, out: &Path) -> std::collections::BTreeMap<&'static str, Value> {
    let o = moto
        .mangactl()
        .args([
            "render",
            "--env",
            "dev",
            "--environments",
            envs.to_str().expect("utf8"),
            "--out",
            out.to_str().expect("utf8"),
        ])
        .output()
        .expect("run render");
    assert!(o.status.success(), "render: {}", stderr(&o));
    STACKS
        .iter()
        .map(|s| (*s, read_json(&out.join(format!("{s}.json")))))
        .collect()
}

fn resources_of_type<'a>(template: &'a Value, ty: &str) -> Vec<(&'a String, &'a Value)> {
    template["Resources"]
        .as_object()
        .expect("resources")
        .iter()
        .filter(|(_, r)| r["Type"] == ty)
        .collect()
}

fn one_of_type<'a>(template: &'a Value, ty: &str) -> &'a Value {
    let found = resources_of_type(template, ty);
    assert_eq!(found.len(), 1, "one {ty} expected");
    found[0].1
}

fn run(moto: &Moto, args: &[&str]) -> std::process::Output {
    let o = moto.mangactl().args(args).output().expect("run mangactl");
    eprintln!(
        "$ mangactl {}\n{}{}",
        args.join(" "),
        stdout(&o),
        stderr(&o)
    );
    o
}

/// A copy of `environments/<name>.yaml`, passed through `edit`, in its own
/// directory under `tmp`; returns that directory as an argument.
fn environments_with(tmp: &TempDir, name: &str, edit: impl Fn(&str) -> String) -> String {
    let envs = tmp.path().join("environments");
    std::fs::create_dir_all(&envs).expect("envs dir");
    let base =
        std::fs::read_to_string(crate::support::repo().join(format!("environments/{name}.yaml")))
            .unwrap_or_else(|e| panic!("{name}.yaml: {e}"));
    std::fs::write(envs.join(format!("{name}.yaml")), edit(&base)).expect("write env");
    envs.to_str().expect("utf8").to_owned()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Names of the stacks that exist (not DELETE_COMPLETE), sorted.
async fn live_stacks(cfn: &aws_sdk_cloudformation::Client) -> Vec<String> {
    let mut names: Vec<String> = cfn
        .list_stacks()
        .send()
        .await
        .expect("list stacks")
        .stack_summaries()
        .iter()
        .filter(|s| s.stack_status().map(|s| s.as_str()) != Some("DELETE_COMPLETE"))
        .filter_map(|s| s.stack_name().map(str::to_owned))
        .collect();
    names.sort();
    names
}

#[test]
fn dev_applies_from_nothing_converges_after_a_change_and_destroys_against_moto() {
    let moto = Moto::start();
    let tmp = TempDir::new("deploy-moto");
    let envs = tmp.path().join("environments");
    std::fs::create_dir_all(&envs).expect("envs dir");
    let base = std::fs::read_to_string(crate::support::repo().join("environments/dev.yaml"))
        .expect("dev.yaml");
    std::fs::write(envs.join("dev.yaml"), &base).expect("copy dev.yaml");
    let envs_arg = envs.to_str().expect("utf8").to_owned();
    let out = tmp.path().join("out");
    let out_arg = out.to_str().expect("utf8").to_owned();
    let templates = render(&moto, &envs, &tmp.path().join("rendered"));

    // 1. Apply from nothing.
    let o = run(
        &moto,
        &[
            "apply",
            "--env",
            "dev",
            "--environments",
            &envs_arg,
            "--yes",
            "--progress",
            "plain",
            "--out",
            &out_arg,
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "apply failed:\n{}{}\nmoto log:\n{}",
        stdout(&o),
        stderr(&o),
        moto.log_text()
    );
    let text = stdout(&o);
    assert!(
        text.contains("Apply complete: 8 stacks deployed, 0 unchanged, 0 not deployed"),
        "{text}"
    );
    let outputs = read_json(&out.join("outputs.json"));
    assert_eq!(outputs["environment"], "dev");
    let output = |stack: &str, key: &str| -> String {
        outputs["stacks"][stack][key]
            .as_str()
            .unwrap_or_else(|| panic!("output {stack}.{key} in {outputs}"))
            .to_owned()
    };
    assert!(
        text.contains(&format!(
            "Load balancer DNS    {}",
            output("service", "AlbDnsName")
        )),
        "{text}"
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let cfn = moto_client!(aws_sdk_cloudformation, moto);
        for s in STACKS {
            let d = cfn
                .describe_stacks()
                .stack_name(format!("mangaassist-dev-{s}"))
                .send()
                .await
                .expect("describe stack");
            let stack = &d.stacks()[0];
            assert_eq!(
                stack.stack_status().map(|s| s.as_str()),
                Some("CREATE_COMPLETE"),
                "{s}"
            );
            let tags: BTreeSet<(String, String)> = stack
                .tags()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_owned(),
                        t.value().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            assert!(
                tags.contains(&("ManagedBy".into(), "mangactl".into()))
                    && tags.contains(&("Stack".into(), s.into())),
                "{s}: {tags:?}"
            );
        }

        // EC2: the VPC, its subnets and the security groups of the network stack.
        let ec2 = moto_client!(aws_sdk_ec2, moto);
        let vpc_id = output("network", "VpcId");
        let vpcs = ec2
            .describe_vpcs()
            .vpc_ids(&vpc_id)
            .send()
            .await
            .expect("describe vpcs");
        assert_eq!(vpcs.vpcs().len(), 1);
        let network = &templates["network"];
        assert_eq!(
            vpcs.vpcs()[0].cidr_block(),
            one_of_type(network, "AWS::EC2::VPC")["Properties"]["CidrBlock"].as_str()
        );
        let vpc_filter = aws_sdk_ec2::types::Filter::builder()
            .name("vpc-id")
            .values(&vpc_id)
            .build();
        let subnets = ec2
            .describe_subnets()
            .filters(vpc_filter.clone())
            .send()
            .await
            .expect("subnets");
        assert_eq!(
            subnets.subnets().len(),
            resources_of_type(network, "AWS::EC2::Subnet").len()
        );
        let groups = ec2
            .describe_security_groups()
            .filters(vpc_filter)
            .send()
            .await
            .expect("groups");
        let named: Vec<_> = groups
            .security_groups()
            .iter()
            .filter(|g| g.group_name() != Some("default"))
            .collect();
        assert_eq!(
            named.len(),
            resources_of_type(network, "AWS::EC2::SecurityGroup").len(),
            "{named:?}"
        );

        // DynamoDB: the conversation table with the template's key schema.
        let ddb = moto_client!(aws_sdk_dynamodb, moto);
        let table = ddb
            .describe_table()
            .table_name(output("memory", "TableName"))
            .send()
            .await
            .expect("describe table");
        let keys: Vec<(String, String)> = table
            .table()
            .expect("table")
            .key_schema()
            .iter()
            .map(|k| {
                (
                    k.attribute_name().to_owned(),
                    k.key_type().as_str().to_owned(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = one_of_type(&templates["memory"], "AWS::DynamoDB::Table")
            ["Properties"]["KeySchema"]
            .as_array()
            .expect("key schema")
            .iter()
            .map(|k| {
                (
                    k["AttributeName"].as_str().expect("name").to_owned(),
                    k["KeyType"].as_str().expect("type").to_owned(),
                )
            })
            .collect();
        assert_eq!(keys, want);

        // ELBv2: the ALB and its target group's health check on the runtime's /healthz.
        let elb = moto_client!(aws_sdk_elasticloadbalancingv2, moto);
        let lbs = elb
            .describe_load_balancers()
            .send()
            .await
            .expect("load balancers");
        let alb = lbs
            .load_balancers()
            .iter()
            .find(|l| l.dns_name() == Some(output("service", "AlbDnsName").as_str()))
            .expect("the ALB");
        let tgs = elb
            .describe_target_groups()
            .load_balancer_arn(alb.load_balancer_arn().expect("arn"))
            .send()
            .await
            .expect("target groups");
        assert_eq!(tgs.target_groups().len(), 1);
        assert_eq!(tgs.target_groups()[0].health_check_path(), Some("/healthz"));
        assert_eq!(tgs.target_groups()[0].port(), Some(8080));
        // The origin lock as moto's ELBv2 holds it: the listener's default
        // is a fixed 403, and the one forward rule needs X-Origin-Verify.
        let listeners = elb
            .describe_listeners()
            .load_balancer_arn(alb.load_balancer_arn().expect("arn"))
            .send()
            .await
            .expect("listeners");
        for l in listeners.listeners() {
            let default = &l.default_actions()[0];
            assert_eq!(
                default.r#type(),
                Some(&aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::FixedResponse)
            );
            assert_eq!(
                default
                    .fixed_response_config()
                    .and_then(|f| f.status_code()),
                Some("403")
            );
            let rules = elb
                .describe_rules()
                .listener_arn(l.listener_arn().expect("listener arn"))
                .send()
                .await
                .expect("rules");
            let forwards: Vec<_> = rules
                .rules()
                .iter()
                .filter(|r| r.is_default() != Some(true))
                .collect();
            assert_eq!(forwards.len(), 1, "{forwards:?}");
            let header = forwards[0]
                .conditions()
                .iter()
                .find_map(|c| c.http_header_config())
                .expect("an http-header condition");
            assert_eq!(header.http_header_name(), Some("X-Origin-Verify"));
            assert!(!header.values().is_empty());
        }

        // ECS: service count, task size and container environment as rendered.
        let service_t = &templates["service"];
        let (desired, _) = ecs_state(
            &moto,
            &output("service", "ClusterName"),
            &output("service", "ServiceName"),
        )
        .await;
        // No DesiredCount in the template: apply set the sized count after
        // the first create.
        assert!(one_of_type(service_t, "AWS::ECS::Service")["Properties"]
            .get("DesiredCount")
            .is_none());
        assert_eq!(
            Some(desired),
            service_t["Metadata"]["Capacity"]["Tasks"]
                .as_i64()
                .map(|n| n as i32)
        );
        let ecs = moto_client!(aws_sdk_ecs, moto);
        let svc = ecs
            .describe_services()
            .cluster(output("service", "ClusterName"))
            .services(output("service", "ServiceName"))
            .send()
            .await
            .expect("services");
        let td_arn = svc.services()[0]
            .task_definition()
            .expect("task definition")
            .to_owned();
        let td = ecs
            .describe_task_definition()
            .task_definition(td_arn)
            .send()
            .await
            .expect("task definition");
        let td = td.task_definition().expect("td");
        let td_t = &one_of_type(service_t, "AWS::ECS::TaskDefinition")["Properties"];
        // moto's CloudFormation model of a task definition keeps Memory but
        // drops Cpu, so only memory is compared.
        assert_eq!(td.memory(), td_t["Memory"].as_str());
        let env_names: BTreeSet<&str> = td.container_definitions()[0]
            .environment()
            .iter()
            .filter_map(|kv| kv.name())
            .collect();
        assert!(env_names.contains("MANGA_BUDGETS_JSON"), "{env_names:?}");
    });

    // 2. Nothing changed: plan exits 0 and says so for every stack.
    let o = run(
        &moto,
        &["plan", "--env", "dev", "--environments", &envs_arg],
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        stdout(&o).matches("  no changes").count(),
        8,
        "{}",
        stdout(&o)
    );
    let o = run(
        &moto,
        &[
            "plan",
            "--env",
            "dev",
            "--environments",
            &envs_arg,
            "--output",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    let plan: Value = serde_json::from_str(&stdout(&o)).expect("plan json");
    assert_eq!(plan["summary"]["stacks_unchanged"], 8);

    // 3. A higher autoscaling floor: plan exits 2 showing the scalable
    // target's change, apply converges. (The task count itself is the
    // autoscaler's once the service runs: the template sets no DesiredCount.)
    let current = templates["service"]["Resources"]["ScalableTarget"]["Properties"]["MinCapacity"]
        .as_i64()
        .expect("MinCapacity");
    assert!(
        !base.lines().any(|l| l.starts_with("capacity:")),
        "dev.yaml gained a capacity block; adjust this test's edit"
    );
    let wanted = current + 1;
    let edited = format!(
        "{base}\ncapacity:\n  service:\n    tasks: {wanted}\n    min_tasks: {wanted}\n    max_tasks: {}\n",
        wanted + 2
    );
    std::fs::write(envs.join("dev.yaml"), edited).expect("edit dev.yaml");
    let changed = render(&moto, &envs, &tmp.path().join("rendered2"));
    assert_eq!(
        changed["service"]["Resources"]["ScalableTarget"]["Properties"]["MinCapacity"].as_i64(),
        Some(wanted),
        "the edit must reach the template"
    );

    let o = run(
        &moto,
        &["plan", "--env", "dev", "--environments", &envs_arg],
    );
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    assert!(
        text.lines().any(|l| l.starts_with("  ~ ScalableTarget ")
            && l.contains("AWS::ApplicationAutoScaling::ScalableTarget")),
        "{text}"
    );

    let o = run(
        &moto,
        &[
            "apply",
            "--env",
            "dev",
            "--environments",
            &envs_arg,
            "--yes",
            "--progress",
            "plain",
            "--out",
            &out_arg,
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    rt.block_on(async {
        let id = format!(
            "service/{}/{}",
            output("service", "ClusterName"),
            output("service", "ServiceName")
        );
        let targets = moto_client!(aws_sdk_applicationautoscaling, moto)
            .describe_scalable_targets()
            .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
            .resource_ids(id)
            .send()
            .await
            .expect("scalable targets");
        assert_eq!(
            i64::from(targets.scalable_targets()[0].min_capacity()),
            wanted
        );
    });
    let o = run(
        &moto,
        &["plan", "--env", "dev", "--environments", &envs_arg],
    );
    assert_eq!(o.status.code(), Some(0), "converged: {}", stdout(&o));

    // 4. Destroy removes every stack (dev retains no data).
    let o = run(
        &moto,
        &[
            "destroy",
            "--env",
            "dev",
            "--environments",
            &envs_arg,
            "--yes",
            "--progress",
            "plain",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("Destroy complete: 8 stacks deleted"),
        "{}",
        stdout(&o)
    );
    rt.block_on(async {
        let cfn = moto_client!(aws_sdk_cloudformation, moto);
        for s in STACKS {
            let r = cfn
                .describe_stacks()
                .stack_name(format!("mangaassist-dev-{s}"))
                .send()
                .await;
            assert!(r.is_err(), "{s} still exists: {r:?}");
        }
        let ddb = moto_client!(aws_sdk_dynamodb, moto);
        assert!(
            ddb.describe_table()
                .table_name(output("memory", "TableName"))
                .send()
                .await
                .is_err(),
            "table deleted"
        );
    });
    let o = run(
        &moto,
        &[
            "destroy",
            "--env",
            "dev",
            "--environments",
            &envs_arg,
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("Nothing to destroy"), "{}", stdout(&o));
}

async fn ecs_state(moto: &Moto, cluster: &str, service: &str) -> (i32, String) {
    let ecs = moto_client!(aws_sdk_ecs, moto);
    let svc = ecs
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await
        .expect("describe services");
    assert_eq!(
        svc.services().len(),
        1,
        "service {service} in {cluster}: {svc:?}"
    );
    let s = &svc.services()[0];
    (s.desired_count(), s.status().unwrap_or_default().to_owned())
}

/// An environment with `termination_protection: true` applies against moto
/// (through the wrapper's UpdateTerminationProtection, which moto lacks),
/// every stack comes out protected, CloudFormation (the wrapper, as the API
/// reference says) refuses to delete a protected stack, `destroy` refuses
/// without `--disable-termination-protection` and succeeds with it.
#[test]
fn termination_protection_is_set_by_apply_and_honoured_by_destroy_against_moto() {
    let moto = Moto::start();
    let tmp = TempDir::new("deploy-moto-protected");
    let envs_arg = environments_with(&tmp, "dev", |base| {
        let protected = base.replace(
            "  termination_protection: false",
            "  termination_protection: true",
        );
        assert_ne!(protected, base, "dev.yaml states termination_protection");
        protected
    });
    let out_arg = tmp.path().join("out").to_str().expect("utf8").to_owned();
    let common = ["--env", "dev", "--environments", &envs_arg];

    let o = run(
        &moto,
        &[
            &["apply"],
            &common[..],
            &["--yes", "--progress", "plain", "--out", &out_arg],
        ]
        .concat(),
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        stdout(&o).matches("termination protection on").count(),
        8,
        "{}",
        stdout(&o)
    );

    block_on(async {
        let cfn = moto_client!(aws_sdk_cloudformation, moto);
        for s in STACKS {
            let d = cfn
                .describe_stacks()
                .stack_name(format!("mangaassist-dev-{s}"))
                .send()
                .await
                .expect("describe stack");
            assert_eq!(
                d.stacks()[0].enable_termination_protection(),
                Some(true),
                "{s}"
            );
        }
        let err = cfn
            .delete_stack()
            .stack_name("mangaassist-dev-observability")
            .send()
            .await
            .expect_err("a protected stack cannot be deleted");
        let err = mangactl::aws::AwsError::from_sdk(
            "CloudFormation",
            "DeleteStack",
            Some("mangaassist-dev-observability"),
            err,
        );
        assert_eq!(err.code(), Some("ValidationError"), "{err}");
        assert!(err.message().contains("TerminationProtection"), "{err}");
        assert_eq!(err.http_status, Some(400), "{err}");
    });

    // A second plan sees the protection and has nothing to do.
    let o = run(&moto, &[&["plan"], &common[..]].concat());
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));

    let o = run(&moto, &[&["destroy"], &common[..], &["--yes"]].concat());
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let o = run(
        &moto,
        &[
            &["destroy"],
            &common[..],
            &[
                "--yes",
                "--disable-termination-protection",
                "--progress",
                "plain",
            ],
        ]
        .concat(),
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let alive = block_on(async { live_stacks(&moto_client!(aws_sdk_cloudformation, moto)).await });
    assert!(alive.is_empty(), "{alive:?}");
}

/// An operation the endpoint does not implement (moto's own OpenSearch
/// Serverless has no account settings; the wrapper is told not to add
/// them) fails the apply with the service, the operation, the HTTP status
/// and the class, never as `Unknown: (no message)`.
#[test]
fn an_operation_the_emulator_lacks_is_named_with_its_status_against_moto() {
    let moto = Moto::start_with(&[("MOTO_WRAPPER_WITHOUT", "aoss-account-settings")]);
    let o = run(
        &moto,
        &[
            "apply",
            "--env",
            "dev",
            "--environments",
            crate::support::repo()
                .join("environments")
                .to_str()
                .expect("utf8"),
            "--yes",
            "--progress",
            "plain",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let err = stderr(&o);
    assert!(!err.contains("Unknown"), "{err}");
    assert!(!err.contains("(no message)"), "{err}");
    assert!(
        err.contains("OpenSearch Serverless GetAccountSettings"),
        "{err}"
    );
    assert!(
        err.contains("HTTP 500 with no error code or message"),
        "{err}"
    );
    assert!(
        err.contains("the endpoint likely does not implement this operation"),
        "{err}"
    );
}

/// `az_count` 2 → 3 on a running environment, through the binary: plan
/// shows network's new subnets and the consumers whose parameters follow
/// its subnet outputs, apply updates network and then them, and a second
/// plan has nothing to do. Checked through ELBv2 (the load balancer's
/// subnets come from network's public subnet output, through the service
/// stack's parameter) and EC2 (network's subnets).
#[test]
fn az_count_2_to_3_updates_network_then_its_consumers_against_moto() {
    let moto = Moto::start();
    let tmp = TempDir::new("deploy-moto-azs");
    let envs_arg = environments_with(&tmp, "dev", str::to_owned);
    let envs = std::path::PathBuf::from(&envs_arg);
    let base = std::fs::read_to_string(envs.join("dev.yaml")).expect("dev.yaml");
    let out_arg = tmp.path().join("out").to_str().expect("utf8").to_owned();
    let common = ["--env", "dev", "--environments", &envs_arg];
    let apply = ["--yes", "--progress", "plain", "--out", &out_arg];
    let o = run(&moto, &[&["apply"], &common[..], &apply[..]].concat());
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));

    let three = base.replace("az_count: 2", "az_count: 3");
    assert_ne!(three, base, "dev.yaml states az_count: 2");
    std::fs::write(envs.join("dev.yaml"), three).expect("edit dev.yaml");
    let o = run(&moto, &[&["plan"], &common[..]].concat());
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    assert!(
        text.lines()
            .any(|l| l.starts_with("  + PrivateSubnet3 ") && l.contains("AWS::EC2::Subnet")),
        "{text}"
    );
    for (stack, user) in [
        ("memory", "DaxSubnetGroup"),
        ("cache", "RedisSubnetGroup"),
        ("search", "VpcEndpoint"),
        ("service", "Service"),
    ] {
        assert!(
            text.contains(&format!("mangaassist-dev-{stack}  update after network")),
            "{stack}: {text}"
        );
        assert!(
            text.contains(&format!("~ parameter NetworkPrivateSubnetIds follows network.PrivateSubnetIds (changed by this apply); used by {user}")),
            "{stack}: {text}"
        );
    }

    let o = run(&moto, &[&["apply"], &common[..], &apply[..]].concat());
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let o = run(&moto, &[&["plan"], &common[..]].concat());
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));

    let outputs = read_json(&tmp.path().join("out/outputs.json"));
    let output = |stack: &str, key: &str| {
        outputs["stacks"][stack][key]
            .as_str()
            .unwrap_or_else(|| panic!("output {stack}.{key} in {outputs}"))
            .to_owned()
    };
    block_on(async {
        let elb = moto_client!(aws_sdk_elasticloadbalancingv2, moto);
        let lbs = elb
            .describe_load_balancers()
            .send()
            .await
            .expect("describe load balancers");
        let lb = lbs
            .load_balancers()
            .iter()
            .find(|l| Some(output("service", "AlbDnsName").as_str()) == l.dns_name())
            .expect("the service's load balancer");
        assert_eq!(lb.availability_zones().len(), 3, "{lb:?}");
        // moto's CloudFormation model of an ECS service keeps no network
        // configuration, so the service's private subnets are not checked
        // here (the fake test checks the parameter reaches it); network's
        // own subnets are.
        let ec2 = moto_client!(aws_sdk_ec2, moto);
        let subnets = ec2
            .describe_subnets()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("vpc-id")
                    .values(output("network", "VpcId"))
                    .build(),
            )
            .send()
            .await
            .expect("describe subnets");
        assert_eq!(subnets.subnets().len(), 6, "3 public and 3 private");
    });
}

/// The Japanese example (`environments/tokyo.yaml`) on one moto serving two
/// regions: the edge stack lands in us-east-1, every other stack in
/// ap-northeast-1, the edge's reference to the load balancer crosses
/// regions as a parameter, a second plan has nothing to do, and destroy
/// empties both regions. moto's ELBv2 checks listener certificates in its
/// ACM (as AWS does), which holds none, so the copy deployed here leaves
/// out the `domain` block; the two-certificate rendering is checked by the
/// snapshots, cfn-lint and the environment tests.
#[test]
fn the_tokyo_example_deploys_across_two_regions_against_moto() {
    let moto = Moto::start();
    let tmp = TempDir::new("deploy-moto-tokyo");
    let envs_arg = environments_with(&tmp, "tokyo", |tokyo| {
        let mut without_domain = Vec::new();
        let mut in_domain = false;
        for line in tokyo.lines() {
            if line.starts_with("domain:") {
                in_domain = true;
                continue;
            }
            if in_domain && line.starts_with(' ') {
                continue;
            }
            in_domain = false;
            without_domain.push(line);
        }
        assert!(
            tokyo.contains("domain:") && !without_domain.join("\n").contains("certificate_arn")
        );
        without_domain.join("\n") + "\n"
    });
    let out_arg = tmp.path().join("out").to_str().expect("utf8").to_owned();
    let common = ["--env", "tokyo", "--environments", &envs_arg];
    let o = run(
        &moto,
        &[
            &["apply"],
            &common[..],
            &["--yes", "--progress", "plain", "--out", &out_arg],
        ]
        .concat(),
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("mangaassist-tokyo-edge (in us-east-1)"),
        "{}",
        stdout(&o)
    );
    block_on(async {
        let tokyo = moto_client!(aws_sdk_cloudformation, moto, "ap-northeast-1");
        let virginia = moto_client!(aws_sdk_cloudformation, moto, "us-east-1");
        let in_tokyo = live_stacks(&tokyo).await;
        let in_virginia = live_stacks(&virginia).await;
        assert_eq!(in_virginia, ["mangaassist-tokyo-edge"]);
        assert_eq!(in_tokyo.len(), 7, "{in_tokyo:?}");
        assert!(!in_tokyo.contains(&"mangaassist-tokyo-edge".to_owned()));

        let service = tokyo
            .describe_stacks()
            .stack_name("mangaassist-tokyo-service")
            .send()
            .await
            .expect("service");
        let alb = service.stacks()[0]
            .outputs()
            .iter()
            .find(|o| o.output_key() == Some("AlbDnsName"))
            .and_then(|o| o.output_value())
            .expect("AlbDnsName")
            .to_owned();
        let edge = virginia
            .describe_stacks()
            .stack_name("mangaassist-tokyo-edge")
            .send()
            .await
            .expect("edge");
        let passed = edge.stacks()[0]
            .parameters()
            .iter()
            .find(|p| p.parameter_key() == Some("ServiceAlbDnsName"))
            .and_then(|p| p.parameter_value())
            .map(str::to_owned);
        assert_eq!(passed, Some(alb), "the edge reads the Tokyo load balancer");
    });

    let o = run(&moto, &[&["plan"], &common[..]].concat());
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let o = run(
        &moto,
        &[&["destroy"], &common[..], &["--yes", "--progress", "plain"]].concat(),
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    block_on(async {
        for region in ["ap-northeast-1", "us-east-1"] {
            let left = live_stacks(&moto_client!(aws_sdk_cloudformation, moto, region)).await;
            assert!(left.is_empty(), "{region}: {left:?}");
        }
    });
}
