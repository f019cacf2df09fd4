//! `wharf images import FILE.tar`: load docker or OCI archives into the
//! node's containerd (the `k8s.io` namespace the kubelet's CRI uses), for
//! machines without registry access.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

#[derive(Args, Debug)]
pub struct ImagesArgs {
    #[command(subcommand)]
    pub command: ImagesCommand,
}

#[derive(Subcommand, Debug)]
pub enum ImagesCommand {
    /// Import docker-archive or OCI tarballs.
    Import(ImportArgs),
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The archives.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// wharf's data directory (its containerd socket is under `agent/`).
    #[arg(long, env = "WHARF_DATA_DIR", default_value = "/var/lib/wharf")]
    pub data_dir: PathBuf,
    /// The containerd socket, instead of the data directory's.
    #[arg(long, env = "WHARF_CONTAINER_RUNTIME_ENDPOINT")]
    pub container_runtime_endpoint: Option<String>,
}

pub async fn run(args: ImagesArgs) -> anyhow::Result<()> {
    let ImagesCommand::Import(a) = args.command;
    let socket = match &a.container_runtime_endpoint {
        Some(e) => PathBuf::from(e.strip_prefix("unix://").unwrap_or(e)),
        None => kubelet::containerd::Layout::new(&a.data_dir).socket(),
    };
    for f in &a.files {
        let out = kubelet::images::import(&socket, f)
            .await
            .with_context(|| format!("importing {}", f.display()))?;
        print!("{out}");
    }
    Ok(())
}
