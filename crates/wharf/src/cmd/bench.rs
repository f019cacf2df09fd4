//! `wharf bench …`: the benchmark suites.

use clap::{Args, Subcommand};

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    suite: Suite,
}

#[derive(Subcommand, Debug)]
enum Suite {
    /// The embedded store against a local single-member etcd.
    Store,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.suite {
        Suite::Store => anyhow::bail!("the store benchmark is being wired in"),
    }
}
