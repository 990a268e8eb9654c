//! Real emulators for the AWS backend tests, each on a free 127.0.0.1 port and stopped
//! when its guard is dropped: moto (`.venv/bin/moto_server`, installed by
//! scripts/install-test-tools) for DynamoDB and SageMaker runtime, and `redis-server`
//! (Debian package, same script), alone or as a cluster node. Missing tools fail the test with the install hint
//! rather than letting it pass unchecked.

use manga_runtime::backends::aws::static_config;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REGION: &str = "us-east-1";

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A child process listening on `port`, killed on drop.
#[derive(Debug)]
pub struct Emulator {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Emulator {
    fn spawn(name: &str, mut cmd: Command, port: u16) -> Emulator {
        let log = std::env::temp_dir().join(format!(
            "manga-runtime-{name}-{}-{port}.log",
            std::process::id()
        ));
        let file = std::fs::File::create(&log).expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {name} ({e}); run scripts/install-test-tools")
            });
        let mut emu = Emulator { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = emu.child.try_wait() {
                panic!(
                    "{name} exited ({status}) before listening:\n{}",
                    emu.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        emu
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SDK configuration aimed at this emulator with static dummy credentials.
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        static_config(&self.endpoint(), REGION)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

pub fn moto() -> Emulator {
    let bin = std::env::var_os("MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/moto_server"));
    assert!(
        bin.is_file(),
        "no moto_server at {}; run scripts/install-test-tools (or set MOTO_SERVER)",
        bin.display()
    );
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    Emulator::spawn("moto", cmd, port)
}

pub fn redis() -> Emulator {
    let port = free_port();
    let mut cmd = Command::new("redis-server");
    cmd.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]);
    Emulator::spawn("redis-server", cmd, port)
}

/// A `redis-server` with cluster support on `port`, keeping its cluster state file in
/// `dir` (which the caller removes); it owns no slots until it is given some
/// (`tests/it/redis_cluster.rs` forms the cluster).
pub fn redis_cluster_node(port: u16, dir: &Path) -> Emulator {
    let mut cmd = Command::new("redis-server");
    cmd.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
    ])
    .arg(dir.join(format!("nodes-{port}.conf")))
    .current_dir(dir);
    Emulator::spawn("redis-cluster-node", cmd, port)
}
