//! A moto server for the deploy tests: `scripts/moto-server` (moto plus the
//! change-set and placeholder fixes it documents) from the repo's `.venv`
//! (installed by scripts/install-test-tools), on a free 127.0.0.1 port,
//! stopped when the [`Moto`] is dropped. Without moto the tests fail with
//! a message saying how to install it, rather than pass unchecked.
//!
//! Also: the `mangactl` command and SDK clients aimed at it, with static
//! dummy credentials and no profile or instance metadata lookups.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{mangactl, repo};

pub const REGION: &str = "us-east-1";

#[derive(Debug)]
pub struct Moto {
    child: Child,
    pub endpoint: String,
    log: PathBuf,
    /// Empty AWS config and credentials files, so no profile on the host applies.
    empty: PathBuf,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

impl Moto {
    pub fn start() -> Moto {
        Moto::start_with(&[])
    }

    /// With environment variables for moto (`MOTO_ECS_SERVICE_RUNNING`).
    pub fn start_with(env: &[(&str, &str)]) -> Moto {
        let python = std::env::var_os("MOTO_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join(".venv/bin/python"));
        assert!(
            python.is_file(),
            "no python at {}; run scripts/install-test-tools (or set MOTO_PYTHON)",
            python.display()
        );
        let port = free_port();
        let log =
            std::env::temp_dir().join(format!("mangactl-moto-{}-{port}.log", std::process::id()));
        let log_file = std::fs::File::create(&log).expect("moto log file");
        let child = Command::new(&python)
            .arg(repo().join("scripts/moto-server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file)
            .spawn()
            .expect("start scripts/moto-server");
        let empty =
            std::env::temp_dir().join(format!("mangactl-moto-{}-{port}.aws", std::process::id()));
        std::fs::write(&empty, "").expect("empty aws config");
        let mut moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
            empty,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!(
                    "moto-server exited ({status}) before listening:\n{}",
                    moto.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "moto-server did not listen within 60 s:\n{}",
                moto.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        moto
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `mangactl` talking to this moto only.
    pub fn mangactl(&self) -> Command {
        let mut cmd = mangactl();
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", &self.empty)
            .env("AWS_SHARED_CREDENTIALS_FILE", &self.empty)
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            // moto has no images, artifacts or certificates for the
            // environment files (preflight itself: tests/it/preflight.rs).
            .env("MANGACTL_SKIP_PREFLIGHT", "true")
            .env("CI", "true");
        cmd
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
        let _ = std::fs::remove_file(&self.empty);
    }
}

/// An SDK client of `$krate` aimed at `moto`, with dummy static credentials.
#[macro_export]
macro_rules! moto_client {
    ($krate:ident, $moto:expr) => {{
        $crate::moto_client!($krate, $moto, $crate::moto::REGION)
    }};
    ($krate:ident, $moto:expr, $region:expr) => {{
        let conf = $krate::Config::builder()
            .behavior_version($krate::config::BehaviorVersion::latest())
            .region($krate::config::Region::new($region))
            .endpoint_url(&$moto.endpoint)
            .credentials_provider($krate::config::Credentials::new(
                "test",
                "test",
                None,
                None,
                "mangactl-tests",
            ))
            .http_client(mangactl::aws::config::http_client())
            .build();
        $krate::Client::from_conf(conf)
    }};
}
