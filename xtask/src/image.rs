//! `cargo xtask image prometheus`: build the local Prometheus image the component tier runs.

use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// Pack the `prometheus` binary on PATH (or --binary) and its shared libraries into
    /// `localhost/e2e-prometheus:<version>` with `docker import`.
    Prometheus {
        /// The prometheus executable to pack (default: the one on PATH).
        #[arg(long)]
        binary: Option<PathBuf>,
        /// Image tag (default: `v<version>` from `prometheus --version`).
        #[arg(long)]
        tag: Option<String>,
    },
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.what {
        What::Prometheus { binary, tag } => {
            let built = e2e::image::build_prometheus_image(binary.as_deref(), tag.as_deref())?;
            let what = if built.rebuilt {
                "built"
            } else {
                "up to date (same binary)"
            };
            eprintln!(
                "{} {what}: prometheus {}, {} files packed",
                built.image,
                built.version,
                built.files.len()
            );
            // stdout carries only the line to eval, so `eval "$(cargo xtask image prometheus)"` works.
            println!("export E2E_PROMETHEUS_IMAGE={}", built.image);
            Ok(ExitCode::SUCCESS)
        }
    }
}
