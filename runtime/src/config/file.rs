//! The `--config` / `MANGA_CONFIG` file: `MANGA_NAME=value` lines with the names of the
//! environment variables, applied as clap defaults so that flags and the real
//! environment win over it (precedence flag > environment > config file > default).
//! Called by [`super::Cli::load_from`]; the flags themselves are defined in `mod.rs`,
//! the budget readers are in `budgets.rs`.

use super::ConfigError;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Overlays the config file named by `--config` in `args`, else by `MANGA_CONFIG` in
/// `env`, on `cmd` as argument defaults. Names unknown to `cmd` are errors; a name also
/// set in `env` is skipped (the real environment wins over the file). Without a config
/// file `cmd` is returned unchanged.
pub(super) fn overlay_defaults(
    mut cmd: clap::Command,
    args: &[OsString],
    env: &impl Fn(&str) -> Option<OsString>,
) -> Result<clap::Command, ConfigError> {
    let Some(path) = config_file_arg(args).or_else(|| env("MANGA_CONFIG").map(PathBuf::from))
    else {
        return Ok(cmd);
    };
    let pairs = parse_config_file(&path)?;
    let known: Vec<(String, String)> = cmd
        .get_arguments()
        .filter_map(|a| {
            a.get_env()
                .map(|e| (e.to_string_lossy().into_owned(), a.get_id().to_string()))
        })
        .collect();
    for (line, key, value) in pairs {
        let Some((_, id)) = known.iter().find(|(e, _)| *e == key) else {
            return Err(ConfigError::ConfigFile {
                path,
                line,
                message: format!("unknown setting {key}"),
            });
        };
        if key == "MANGA_CONFIG" || env(&key).is_some() {
            continue; // the real environment wins over the file
        }
        // clap keeps defaults as &'static str; these few short strings live for the
        // whole process anyway, so leaking them once at start-up is harmless.
        let value: &'static str = Box::leak(value.into_boxed_str());
        cmd = cmd.mut_arg(id.as_str(), |a| a.default_value(value));
    }
    Ok(cmd)
}

fn config_file_arg(args: &[OsString]) -> Option<PathBuf> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let s = a.to_string_lossy();
        if s == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(v) = s.strip_prefix("--config=") {
            return Some(PathBuf::from(v));
        }
    }
    None
}

/// `KEY=value` lines; `#` comments and blank lines ignored; optional surrounding quotes.
fn parse_config_file(path: &Path) -> Result<Vec<(usize, String, String)>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            return Err(ConfigError::ConfigFile {
                path: path.to_path_buf(),
                line: i + 1,
                message: "expected MANGA_NAME=value".into(),
            });
        };
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(v);
        out.push((i + 1, k.trim().to_string(), v.to_string()));
    }
    Ok(out)
}
