//! `--config FILE`: a YAML file whose keys are the long flag names (`stale-after: 5m`,
//! `host-suffix: mesh`, lists as YAML lists). Flags given on the command line win; the file
//! wins over environment variables and defaults.

use std::collections::BTreeMap;
use std::ffi::OsString;

use anyhow::{Context, bail};
use serde_json::Value;

/// The arguments with the config file's settings added for every flag not given.
pub(super) fn expand(args: Vec<OsString>) -> anyhow::Result<Vec<OsString>> {
    let Some(position) = args
        .iter()
        .position(|a| a == "--config" || a.to_string_lossy().starts_with("--config="))
    else {
        return Ok(args);
    };
    let mut args = args;
    let flag = args.remove(position).to_string_lossy().into_owned();
    let path = match flag.strip_prefix("--config=") {
        Some(path) => path.to_owned(),
        None if position < args.len() => args.remove(position).to_string_lossy().into_owned(),
        None => bail!("--config needs a file"),
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading config file {path}"))?;
    let settings: BTreeMap<String, Value> = serde_saphyr::from_str(&text)
        .with_context(|| format!("config file {path}: expected a map of flag names to values"))?;
    let given: Vec<String> = args
        .iter()
        .filter_map(|a| a.to_str())
        .filter_map(|a| a.strip_prefix("--"))
        .map(|a| a.split('=').next().unwrap_or(a).to_owned())
        .collect();
    for (key, value) in settings {
        if given.contains(&key) {
            continue;
        }
        let value = match value {
            Value::String(s) => s,
            Value::Bool(b) => {
                if b {
                    args.push(format!("--{key}").into());
                }
                continue;
            }
            Value::Number(n) => n.to_string(),
            Value::Array(items) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect::<Vec<_>>()
                .join(","),
            other => bail!("config file {path}: {key} has an unsupported value {other}"),
        };
        args.push(format!("--{key}={value}").into());
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_values_fill_in_what_the_command_line_does_not_say() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("federator.yaml");
        std::fs::write(&file, "stale-after: 5m\nhost-suffix: mesh\nidentity-keys: [label:app, annotation:id]\nstrict: true\n").unwrap();
        let args: Vec<OsString> = ["federator", "render", "--host-suffix", "global", "--config"]
            .iter()
            .map(OsString::from)
            .chain([file.clone().into_os_string()])
            .collect();
        let got: Vec<String> = expand(args)
            .unwrap()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            got,
            [
                "federator",
                "render",
                "--host-suffix",
                "global",
                "--identity-keys=label:app,annotation:id",
                "--stale-after=5m",
                "--strict",
            ]
        );
    }

    #[test]
    fn a_missing_file_is_a_clear_error() {
        let args = ["federator", "run", "--config=/nonexistent.yaml"]
            .iter()
            .map(OsString::from)
            .collect();
        let err = format!("{:#}", expand(args).unwrap_err());
        assert!(
            err.contains("reading config file /nonexistent.yaml"),
            "{err}"
        );
    }
}
