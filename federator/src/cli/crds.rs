use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use federator::crd::crd_files;

/// `federator crds`.
#[derive(Args, Debug)]
pub(super) struct CrdsArgs {
    /// Write each manifest below this folder (as in the repository's `crds/`) instead of
    /// printing them.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub(super) fn run(args: CrdsArgs) -> anyhow::Result<ExitCode> {
    let files = crd_files();
    match args.out {
        Some(dir) => {
            for file in files {
                let path = dir.join(&file.path);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("creating {}", parent.display()))?;
                }
                let yaml = file.yaml().context("serialising CRD")?;
                std::fs::write(&path, yaml)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        None => {
            for file in files {
                print!("---\n{}", file.yaml().context("serialising CRD")?);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
