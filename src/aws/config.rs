//! The AWS SDK configuration every command and test client is built from:
//! the standard credential chain (environment, profile, SSO, process,
//! web identity, container and instance metadata), with the profile,
//! region and endpoint the command line names.
//!
//! The SDK crates are compiled without their default HTTP client (which
//! would bring aws-lc-rs); [`http_client`] supplies hyper + rustls on ring,
//! the one TLS stack in the workspace.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::Builder;

pub use aws_config::SdkConfig as Config;
pub use aws_sdk_cloudformation::config::SharedHttpClient;

/// Where and as whom to call AWS.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// A named profile from `~/.aws/config`; `None` uses `AWS_PROFILE` or the default chain.
    pub profile: Option<String>,
    pub region: String,
    /// An emulator or VPC endpoint; `None` uses `AWS_ENDPOINT_URL` if set, else AWS.
    pub endpoint_url: Option<String>,
}

/// The HTTP client for every SDK client: HTTPS through rustls with ring
/// (plain HTTP too, for emulators on 127.0.0.1).
pub fn http_client() -> SharedHttpClient {
    Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Loads the shared SDK configuration for `target`.
pub async fn load(target: &Target) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .region(Region::new(target.region.clone()));
    if let Some(profile) = &target.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &target.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}
