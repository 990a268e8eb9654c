//! The drain that starts when the load balancer starts draining this task
//! (`server/watch.rs`), before SIGTERM:
//! - with a scripted [`TargetHealth`] double under `tokio::time::pause()`: every client
//!   gets `reconnect` and close 1001 well before the simulated deregistration deadline,
//!   the answer in flight completes first and the queued message gets `shutting_down`,
//!   `/readyz` says draining, upgrades are refused, `/healthz` still answers and the
//!   process waits for SIGTERM; failed polls and a not-yet-registered target do not
//!   start a drain;
//! - with the SDK implementation (`ElbTargetHealth`) against moto's ELBv2
//!   (`DescribeTargetHealth` of a registered IP target, then deregistered) and the
//!   task's address read from a fake ECS task metadata endpoint v4 on 127.0.0.1.

use crate::emulators;
use crate::support::{builder, Client, TestServer};
use async_trait::async_trait;
use manga_runtime::backends::aws::target_health::{ElbTargetHealth, TargetId};
use manga_runtime::server::{TargetHealth, TargetHealthError, TargetState, RECONNECT_SPREAD_MS};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The target group's deregistration delay in these tests: the ALB cuts what it still
/// holds when it ends, so every client must have been told to reconnect before.
const DEREGISTRATION_DELAY: Duration = Duration::from_secs(30);

/// Answers a script of states, one per poll, then the last one forever.
#[derive(Debug)]
struct Scripted {
    script: Mutex<Vec<Result<TargetState, String>>>,
    polls: AtomicUsize,
    polled: Notify,
}

impl Scripted {
    fn new(script: Vec<Result<TargetState, String>>) -> Arc<Scripted> {
        Arc::new(Scripted {
            script: Mutex::new(script),
            polls: AtomicUsize::new(0),
            polled: Notify::new(),
        })
    }

    /// From now on, every poll answers `s`.
    fn set(&self, s: TargetState) {
        *self.script.lock().expect("script") = vec![Ok(s)];
    }

    fn polls(&self) -> usize {
        self.polls.load(Ordering::SeqCst)
    }

    async fn wait_polls(&self, n: usize) {
        loop {
            let polled = self.polled.notified();
            if self.polls() >= n {
                return;
            }
            polled.await;
        }
    }
}

#[async_trait]
impl TargetHealth for Scripted {
    async fn state(&self) -> Result<TargetState, TargetHealthError> {
        let next = {
            let mut script = self.script.lock().expect("script");
            if script.len() > 1 {
                script.remove(0)
            } else {
                script[0].clone()
            }
        };
        self.polls.fetch_add(1, Ordering::SeqCst);
        self.polled.notify_waiters();
        next.map_err(TargetHealthError::Api)
    }
}

fn serving() -> TargetState {
    TargetState::Serving("healthy".into())
}

/// Asserts the `reconnect` frame and returns its `retry_after_ms`.
fn assert_reconnect(f: &Value) -> u64 {
    assert_eq!(f["type"], "reconnect", "{f}");
    assert_eq!(f["reason"], "draining", "{f}");
    let ms = f["retry_after_ms"].as_u64().expect("retry_after_ms");
    assert!(ms <= RECONNECT_SPREAD_MS, "{f}");
    ms
}

#[tokio::test(start_paused = true)]
async fn a_draining_target_tells_every_client_to_reconnect_after_its_answer() {
    let health = Scripted::new(vec![Ok(serving())]);
    // 200 ms per word: the answer streams for seconds (virtual time), across the next
    // poll (every second).
    let mut s = TestServer::start(
        builder(&[
            "--word-delay-ms",
            "200",
            "--stream-max-secs",
            "120",
            "--drain-poll-secs",
            "1",
        ])
        .target_health(health.clone()),
    )
    .await;
    health.wait_polls(1).await;
    let mut busy = s.connect().await;
    let mut idle: Vec<Client> = Vec::new();
    for _ in 0..3 {
        idle.push(s.connect().await);
    }
    busy.send("d", "do you have one piece?").await;
    // Queued behind the first: it is refused once the drain has begun.
    busy.send("d", "hello").await;
    let start = busy.next().await.expect("start");
    assert_eq!(start["type"], "start");
    assert_eq!(busy.next().await.expect("first token")["type"], "token");

    // ECS deregisters the task: the ALB drains it for DEREGISTRATION_DELAY.
    health.set(TargetState::Draining);
    let deregistered_at = tokio::time::Instant::now();
    let told = tokio::time::timeout(DEREGISTRATION_DELAY, async {
        let mut tokens = 1;
        let done = loop {
            let f = busy
                .next()
                .await
                .expect("the answer continues during the drain");
            match f["type"].as_str() {
                Some("token") => tokens += 1,
                Some("done") => break f,
                other => panic!("unexpected frame {other:?}: {f}"),
            }
        };
        assert!(tokens > 10, "the whole answer arrived ({tokens} tokens)");
        assert_eq!(done["message_id"], start["message_id"]);
        let queued = busy.next().await.expect("the queued message's error");
        assert_eq!(queued["code"], "shutting_down");
        assert_reconnect(&busy.next().await.expect("reconnect after the answer"));
        assert_eq!(busy.close_code().await, Some(1001));
        for c in &mut idle {
            assert_reconnect(&c.next().await.expect("reconnect"));
            assert_eq!(c.close_code().await, Some(1001));
        }
    })
    .await;
    assert!(
        told.is_ok(),
        "clients were told to reconnect within the deregistration delay"
    );
    assert!(deregistered_at.elapsed() < DEREGISTRATION_DELAY);
    assert!(s.state.is_draining());

    // Draining, but alive until SIGTERM: readiness fails, upgrades are refused, the
    // container health check still passes.
    let ready = reqwest::get(s.url("/readyz")).await.expect("GET /readyz");
    assert_eq!(ready.status(), 503);
    let body: Value = serde_json::from_str(&ready.text().await.expect("body")).expect("json");
    assert_eq!(body["status"], "draining");
    let upgrade = tokio_tungstenite::connect_async(s.ws_url("/v1/chat")).await;
    assert!(upgrade.is_err(), "no upgrade while draining");
    let health_check = reqwest::get(s.url("/healthz")).await.expect("GET /healthz");
    assert_eq!(health_check.status(), 200);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(!s.handle.is_finished(), "the process waits for SIGTERM");
    assert_eq!(s.state.open_connections(), 0);
    let polls = health.polls();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(health.polls(), polls, "the watcher stopped once draining");

    // SIGTERM (ECS, after the deregistration delay): nothing left to wait for.
    s.shutdown();
    let served = tokio::time::timeout(Duration::from_secs(5), &mut s.handle)
        .await
        .expect("server stops at once");
    served.expect("join").expect("serve ok");
}

#[tokio::test(start_paused = true)]
async fn failed_polls_and_an_unregistered_target_do_not_drain() {
    let health = Scripted::new(vec![
        // ECS has not registered the task yet.
        Ok(TargetState::NotRegistered),
        Err("ThrottlingException: Rate exceeded".into()),
        Ok(TargetState::Serving("initial".into())),
        Ok(serving()),
        Err("dispatch failure: connection refused".into()),
        Ok(serving()),
    ]);
    let mut s =
        TestServer::start(builder(&["--drain-poll-secs", "5"]).target_health(health.clone())).await;
    health.wait_polls(8).await;
    assert!(
        !s.state.is_draining(),
        "errors and `unused` before registration are not drains"
    );
    let mut c = s.connect().await;
    assert_eq!(c.ask("u", "hello").await.last()["type"], "done");

    // Deregistration already complete when first seen (no draining poll in between):
    // still a drain.
    health.set(TargetState::NotRegistered);
    let n = health.polls();
    health.wait_polls(n + 1).await;
    assert_reconnect(&c.next().await.expect("reconnect"));
    assert_eq!(c.close_code().await, Some(1001));
    assert!(s.state.is_draining());
    s.shutdown();
}

#[tokio::test]
async fn sigterm_without_a_watcher_also_tells_clients_to_reconnect() {
    let mut s = TestServer::start(builder(&[])).await;
    let mut c = s.connect().await;
    assert_eq!(c.ask("t", "hello").await.last()["type"], "done");
    s.shutdown();
    assert_reconnect(&c.next().await.expect("reconnect"));
    assert_eq!(c.close_code().await, Some(1001));
}

/// A fake ECS task metadata endpoint v4: `GET {uri}/task` answers a task shaped like
/// the documentation's example with `ip`; counts the requests.
async fn fake_task_metadata(ip: &'static str) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().route(
        "/v4/3b1a9f0e-metadata/task",
        axum::routing::get(move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                axum::Json(json!({
                    "Cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/manga",
                    "TaskARN": "arn:aws:ecs:us-east-1:123456789012:task/manga/0f1e2d3c",
                    "DesiredStatus": "RUNNING",
                    "KnownStatus": "RUNNING",
                    "Containers": [{
                        "Name": "runtime",
                        "KnownStatus": "RUNNING",
                        "Type": "NORMAL",
                        "Networks": [{
                            "NetworkMode": "awsvpc",
                            "IPv4Addresses": [ip],
                            "AttachmentIndex": 0,
                            "IPv4SubnetCIDRBlock": "10.0.1.0/24",
                            "PrivateDNSName": "ip-10-0-1-23.ec2.internal"
                        }]
                    }]
                }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/v4/3b1a9f0e-metadata"), hits)
}

/// A VPC in moto (target groups of type `ip` need one). There is no EC2 SDK crate in
/// the runtime, so one EC2 Query API call, unsigned (moto does not check signatures).
async fn moto_vpc(moto: &emulators::Emulator) -> String {
    let body = reqwest::Client::new()
        .post(moto.endpoint())
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .form(&[
            ("Action", "CreateVpc"),
            ("Version", "2016-11-15"),
            ("CidrBlock", "10.0.0.0/16"),
        ])
        .send()
        .await
        .expect("CreateVpc")
        .text()
        .await
        .expect("body");
    let start = body.find("<vpcId>").expect("vpcId in the response") + "<vpcId>".len();
    let end = body[start..].find('<').expect("end tag") + start;
    body[start..end].to_string()
}

#[tokio::test]
async fn the_sdk_watcher_reads_moto_and_the_task_metadata_endpoint() {
    const IP: &str = "10.0.1.23";
    let moto = emulators::moto();
    let sdk = moto.sdk_config();
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let vpc = moto_vpc(&moto).await;
    let group = elb
        .create_target_group()
        .name("manga-runtime")
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(8080)
        .vpc_id(&vpc)
        .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Ip)
        .health_check_path("/healthz")
        .send()
        .await
        .expect("CreateTargetGroup");
    let arn = group.target_groups()[0]
        .target_group_arn()
        .expect("arn")
        .to_string();
    let target = aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
        .id(IP)
        .port(8080)
        .build();

    // The SDK implementation alone: not registered, registered, deregistered.
    let (uri, hits) = fake_task_metadata(IP).await;
    let direct =
        ElbTargetHealth::new(&sdk, &arn, TargetId::TaskMetadata(uri.clone()), 8080).expect("new");
    assert_eq!(
        direct.state().await.expect("state"),
        TargetState::NotRegistered
    );
    elb.register_targets()
        .target_group_arn(&arn)
        .targets(target.clone())
        .send()
        .await
        .expect("RegisterTargets");
    assert_eq!(direct.state().await.expect("state"), serving());
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "the address is looked up once"
    );
    let missing = ElbTargetHealth::new(
        &sdk,
        &arn.replace("manga-runtime", "no-such-group"),
        TargetId::Fixed(IP.into()),
        8080,
    )
    .expect("new");
    let err = missing.state().await.expect_err("no such target group");
    assert!(err.to_string().contains("TargetGroupNotFound"), "{err}");

    // The server with the watcher built from the configuration.
    let (uri, hits) = fake_task_metadata(IP).await;
    let s = TestServer::start(
        builder(&[
            "--target-group-arn",
            &arn,
            "--ecs-metadata-uri",
            &uri,
            "--drain-poll-secs",
            "1",
        ])
        .aws_config(sdk.clone()),
    )
    .await;
    let mut c = s.connect().await;
    assert_eq!(c.ask("m", "hello").await.last()["type"], "done");
    // A few polls see the registered target.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!s.state.is_draining());
    elb.deregister_targets()
        .target_group_arn(&arn)
        .targets(target)
        .send()
        .await
        .expect("DeregisterTargets");
    // moto completes a deregistration at once (`unused`, no `draining` phase): the
    // watcher, which saw the target registered, drains on that too.
    let f = tokio::time::timeout(Duration::from_secs(10), c.next())
        .await
        .expect("reconnect within a few polls")
        .expect("reconnect");
    assert_reconnect(&f);
    assert_eq!(c.close_code().await, Some(1001));
    assert!(s.state.is_draining());
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "the address is looked up once"
    );
}
