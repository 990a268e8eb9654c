//! What several commands share on the command line, defined once and
//! flattened into each command's `Args`: the environment ([`EnvArgs`]),
//! the AWS connection ([`AwsArgs`]), confirmation ([`ConfirmArgs`]) and the
//! progress display ([`ProgressArgs`]); plus what the AWS commands share at
//! run time: the tokio runtime, the SDK configuration, the live layer's
//! clients and the Ctrl-C listener, and [`with_environment`], which starts
//! such a command. Loading and rendering the environment itself is
//! `render.rs::render_environment`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use stacks::env::Environment;
use stacks::render::{Format, Rendered};
use stacks::stacks::StackId;
use tokio::sync::watch;

use super::render::render_environment;
use super::Cli;
use crate::aws::capacity::SdkCapacity;
use crate::aws::cloudformation::SdkCloudFormation;
use crate::aws::config::{self, Target};
use crate::aws::opensearch::SdkSearchCapacity;
use crate::aws::regional::RegionalCloudFormation;
use crate::aws::scale_records::{self, ScaleRecord};
use crate::aws::{lookups, CloudFormation, ErrorClass};
use crate::deploy::live::LiveReaders;
use crate::deploy::progress::Progress;
use crate::outcome::Outcome;

/// `--env`: which environment.
#[derive(Debug, Clone, clap::Args)]
pub struct EnvArgs {
    /// Environment name (a file in the environments directory) or a path to an environment file.
    #[arg(long, short = 'e', value_name = "NAME|PATH")]
    pub env: String,
}

/// Where and as whom to call AWS (the standard credential chain applies).
#[derive(Debug, Clone, clap::Args)]
pub struct AwsArgs {
    /// AWS profile from ~/.aws/config [default: AWS_PROFILE, else the default chain].
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,

    /// AWS region [default: the environment file's region].
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// Send AWS calls here instead (an emulator such as moto, or a VPC endpoint).
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub endpoint_url: Option<String>,
}

/// How a changing command is confirmed (rules in `src/deploy/confirm.rs`).
#[derive(Debug, Clone, clap::Args)]
pub struct ConfirmArgs {
    /// Do not ask for confirmation (required when stdin is not a terminal; where prod asks for its name, that is still needed).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// The environment's name, where prod asks for it (data loss on apply, any destroy), instead of typing it.
    #[arg(long, value_name = "NAME")]
    pub confirm_env: Option<String>,
}

/// `--progress`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProgressArgs {
    /// Progress display: spinners on a terminal, or one plain line per event.
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressArg {
    /// tty when stdout is a terminal and CI is not set, else plain.
    Auto,
    Tty,
    Plain,
}

impl ProgressArgs {
    /// The progress display asked for.
    pub fn display(&self) -> Progress {
        let tty = match self.progress {
            ProgressArg::Tty => true,
            ProgressArg::Plain => false,
            ProgressArg::Auto => {
                std::io::stdout().is_terminal() && std::env::var_os("CI").is_none()
            }
        };
        if tty {
            Progress::tty()
        } else {
            Progress::plain(Box::new(std::io::stdout()))
        }
    }
}

/// `--stack NAME`.
pub(crate) fn parse_stack(s: &str) -> Result<StackId, String> {
    StackId::parse(s).ok_or_else(|| {
        let names: Vec<&str> = StackId::ALL.iter().map(|s| s.name()).collect();
        format!("unknown stack `{s}`; stacks are: {}", names.join(", "))
    })
}

/// The runtime for the AWS commands (I/O-bound; two workers leave one for
/// the Ctrl-C listener while a prompt blocks the other).
pub(super) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// How the AWS commands start: the environment `--env` names, loaded and
/// rendered, then, on the [`runtime`], AWS [`connect`]ed for it; `f` is the
/// rest of the command.
pub(super) fn with_environment<T>(
    cli: &Cli,
    env: &EnvArgs,
    aws: &AwsArgs,
    f: impl AsyncFnOnce(Environment, Rendered, Connections) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let (environment, rendered) = render_environment(cli, &env.env, Format::Json)?;
    runtime()?.block_on(async {
        let connections = connect(aws, &rendered).await;
        f(environment, rendered, connections).await
    })
}

/// The SDK configuration for `region`, with the command's AWS flags.
async fn load_config(aws: &AwsArgs, region: &str) -> config::Config {
    let target = Target {
        profile: aws.profile.clone(),
        region: region.to_owned(),
        endpoint_url: aws.endpoint_url.clone(),
    };
    tracing::info!(region = %target.region, endpoint = ?target.endpoint_url, profile = ?target.profile, "connecting to AWS");
    config::load(&target).await
}

/// AWS for one environment: a configuration per region its stacks live in
/// (the environment's region, or `--region`, and us-east-1 for the edge
/// stack), and CloudFormation routed to each stack's region.
#[derive(Debug)]
pub(super) struct Connections {
    /// The environment's own region (after `--region`).
    pub home: config::Config,
    pub by_region: BTreeMap<String, config::Config>,
    pub cfn: RegionalCloudFormation,
}

pub(super) async fn connect(aws: &AwsArgs, rendered: &Rendered) -> Connections {
    let env_region = rendered.manifest.region.as_str();
    let home_region = aws.region.clone().unwrap_or_else(|| env_region.to_owned());
    let stack_regions: BTreeMap<String, String> = rendered
        .manifest
        .stacks
        .values()
        .map(|m| {
            let region = if m.region == env_region {
                home_region.clone()
            } else {
                m.region.clone()
            };
            (m.stack_name.clone(), region)
        })
        .collect();
    let mut by_region = BTreeMap::new();
    let regions: BTreeSet<&String> = stack_regions
        .values()
        .chain(std::iter::once(&home_region))
        .collect();
    for region in regions {
        by_region.insert(region.clone(), load_config(aws, region).await);
    }
    let clients = by_region
        .iter()
        .map(|(r, c)| {
            (
                r.clone(),
                Arc::new(SdkCloudFormation::new(c)) as Arc<dyn CloudFormation>,
            )
        })
        .collect();
    let home = match by_region.get(&home_region) {
        Some(c) => c.clone(),
        None => load_config(aws, &home_region).await,
    };
    Connections {
        home,
        cfn: RegionalCloudFormation::new(clients, stack_regions.clone(), home_region),
        by_region,
    }
}

/// The clients the live layer (`src/deploy/live.rs`) reads through, in the
/// environment's own region, where everything sized lives.
#[derive(Debug)]
pub(super) struct LiveClients {
    capacity: SdkCapacity,
    search: SdkSearchCapacity,
}

impl LiveClients {
    /// Both clients, the OpenSearch Serverless limits included, judging at
    /// the system clock's now.
    pub fn readers(&self) -> LiveReaders<'_> {
        LiveReaders {
            capacity: &self.capacity,
            search: Some(&self.search),
            now: crate::deploy::live::unix_now(),
        }
    }
}

impl Connections {
    /// The live layer's clients, in [`Connections::home`].
    pub fn live_clients(&self) -> LiveClients {
        LiveClients {
            capacity: SdkCapacity::new(&self.home),
            search: SdkSearchCapacity::new(&self.home),
        }
    }

    /// Fills `rendered.lookups`: each stack's lookups read in its region.
    pub async fn look_up(&self, rendered: &mut Rendered) -> anyhow::Result<()> {
        for (id, m) in &rendered.manifest.stacks {
            let region = self.cfn.region_of(&m.stack_name).to_owned();
            let Some(config) = self.by_region.get(&region) else {
                anyhow::bail!("no AWS configuration for {region}");
            };
            for (param, what) in &m.lookups {
                let value = lookups::look_up(config, what)
                    .await
                    .with_context(|| format!("looking up {param} of {} in {region}", m.stack_name))?
                    .with_context(|| {
                        format!(
                            "{} needs {what:?} in {region}, which does not exist there",
                            m.stack_name
                        )
                    })?;
                rendered
                    .lookups
                    .entry(*id)
                    .or_default()
                    .insert(param.clone(), value);
            }
        }
        Ok(())
    }
}

/// Counts Ctrl-C presses into the returned channel; the second one exits
/// the process at once (CloudFormation carries on with what it started).
pub(super) fn interrupts() -> watch::Receiver<u32> {
    let (tx, rx) = watch::channel(0u32);
    tokio::spawn(async move {
        let mut presses = 0u32;
        while tokio::signal::ctrl_c().await.is_ok() {
            presses += 1;
            if presses >= 2 {
                eprintln!("\nSecond Ctrl-C: exiting now. Operations already started continue in CloudFormation.");
                std::process::exit(Outcome::Aborted.code().into());
            }
            let _ = tx.send(presses);
        }
    });
    rx
}

/// Today's date in UTC as `YYYY-MM-DD` (civil from days since the epoch,
/// H. Hinnant's algorithm), for `drift.accept` expiry dates.
pub(super) fn today() -> String {
    let days = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    civil_date(days)
}

pub(super) fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The environment's scale records (`src/aws/scale_records.rs`), read in
/// its own region; an endpoint without Parameter Store (an emulator) has
/// none, with a warning.
pub(super) async fn read_scale_records(
    aws: &Connections,
    environment: &str,
) -> anyhow::Result<Vec<ScaleRecord>> {
    match scale_records::read(&aws.home, environment).await {
        Ok(r) => Ok(r),
        Err(e) if e.class == ErrorClass::NotImplemented => {
            tracing::warn!("scale records not read: {e}");
            Ok(Vec::new())
        }
        Err(e) => Err(e).context("reading the scale records"),
    }
}

/// `90`, `90s`, `5m`, `1h`.
pub(super) fn parse_duration(s: &str) -> Result<Duration, String> {
    let (digits, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, ""), |i| s.split_at(i));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a duration such as 90s, 5m or 1h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("`{s}` is not a duration such as 90s, 5m or 1h")),
    };
    if secs == 0 {
        return Err("the timeout must be more than 0".into());
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("0").is_err());
    }
    #[test]
    fn days_since_the_epoch_become_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(20_788), "2026-12-01");
        assert_eq!(civil_date(11_016), "2000-02-29");
    }
}
