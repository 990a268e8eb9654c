//! `mangactl render`: environment file → templates and manifest on disk.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use stacks::env;
use stacks::render::{self, Format, Rendered};
use stacks::stacks::{Inputs, StackId};

use super::shared::{parse_stack, EnvArgs};
use super::{Cli, Output};
use crate::outcome::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub env: EnvArgs,

    /// Directory to write to [default: out/NAME].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Template format.
    #[arg(long, value_enum, default_value_t = FormatArg::Json)]
    pub format: FormatArg,

    /// Write only this stack's template (the manifest still covers all).
    #[arg(long, value_parser = parse_stack, value_name = "NAME")]
    pub stack: Option<StackId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    Json,
    Yaml,
}

/// Loads the environment named or pointed at by `spec`.
pub(crate) fn load_env(cli: &Cli, spec: &str) -> anyhow::Result<env::Environment> {
    let path = env::resolve(spec, &cli.environments)?;
    Ok(env::load(&path)?)
}

/// Loads an environment, sizes it and renders all its stacks: what
/// `render`, `plan`, `apply` and `destroy` all start from. Sizing warnings
/// go to stderr; sizing errors (a target that cannot be met) fail here.
pub(crate) fn render_environment(
    cli: &Cli,
    spec: &str,
    format: Format,
) -> anyhow::Result<(env::Environment, Rendered)> {
    let environment = load_env(cli, spec)?;
    let plan = super::size::size_environment(&environment)?;
    let inputs = Inputs::new(&environment, &plan);
    let rendered = render::render(&inputs, format)
        .with_context(|| format!("rendering environment `{}`", environment.name))?;
    Ok((environment, rendered))
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<Outcome> {
    let format = match args.format {
        FormatArg::Json => Format::Json,
        FormatArg::Yaml => Format::Yaml,
    };
    let (environment, rendered) = render_environment(cli, &args.env.env, format)?;

    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("out").join(&environment.name));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut written = Vec::new();
    for s in &rendered.stacks {
        if args.stack.is_some_and(|only| only != s.id) {
            continue;
        }
        let path = out.join(&s.file_name);
        write_atomic(&path, s.body.as_bytes())?;
        // A template of the other format left from an earlier render would
        // be mistaken for current output.
        let other = match format {
            Format::Json => Format::Yaml,
            Format::Yaml => Format::Json,
        };
        let stale = out.join(format!("{}.{}", s.id.name(), other.extension()));
        if stale.is_file() {
            std::fs::remove_file(&stale)
                .with_context(|| format!("removing stale {}", stale.display()))?;
        }
        written.push((s, path));
    }
    let manifest = serde_json::to_string_pretty(&rendered.manifest)? + "\n";
    write_atomic(&out.join("manifest.json"), manifest.as_bytes())?;

    let mut stdout = std::io::stdout().lock();
    match cli.output {
        Output::Json => stdout.write_all(manifest.as_bytes())?,
        Output::Text | Output::Junit => {
            writeln!(
                stdout,
                "Rendered {} of {} stacks for `{}` ({}) into {}",
                written.len(),
                rendered.stacks.len(),
                environment.name,
                environment.region,
                out.display()
            )?;
            for (s, path) in &written {
                let m = &rendered.manifest.stacks[&s.id];
                // A stack outside the environment's region says where it is.
                let elsewhere = if m.region == environment.region {
                    String::new()
                } else {
                    format!("  (in {})", m.region)
                };
                writeln!(
                    stdout,
                    "  {:<14} {:>3} resources {:>7} bytes  {}{elsewhere}",
                    s.id.name(),
                    m.resource_count,
                    m.bytes,
                    path.display()
                )?;
            }
            let waves: Vec<String> = rendered
                .graph
                .waves
                .iter()
                .map(|w| w.iter().map(|s| s.name()).collect::<Vec<_>>().join(" + "))
                .collect();
            writeln!(stdout, "Deploy order: {}", waves.join(" -> "))?;
            writeln!(stdout, "Manifest: {}", out.join("manifest.json").display())?;
            writeln!(stdout, "{}", rendered.sizing.summary_line())?;
        }
    }
    Ok(Outcome::Success)
}

/// Writes through a temporary file and a rename, so an interrupted render
/// never leaves a half-written template behind.
fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}
