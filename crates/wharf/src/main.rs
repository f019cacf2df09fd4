//! `wharf`: one binary for every component. This crate only parses arguments and
//! wires the component crates together.

mod cmd;

/// mimalloc instead of glibc's malloc: the API server's request path is
/// allocation-heavy (JSON values), and glibc's malloc and free took about a
/// fifth of its CPU in the create benchmark.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "wharf",
    version,
    about = "A Kubernetes-compatible container orchestrator in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane (for now: the cluster state store).
    Server(cmd::server::ServerArgs),
    /// Run a benchmark suite.
    Bench(cmd::bench::BenchArgs),
    /// Developer tools used by the test suite.
    #[command(hide = true)]
    Debug(cmd::debug::DebugArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WHARF_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cli.command {
            Command::Server(a) => cmd::server::run(a).await,
            Command::Bench(a) => cmd::bench::run(a).await,
            Command::Debug(a) => cmd::debug::run(a).await,
        }
    })
}
