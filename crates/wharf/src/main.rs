//! `wharf`: one binary for every component. This crate only parses arguments and
//! wires the component crates together.

mod cmd;

/// mimalloc instead of glibc's malloc: the API server's request path is
/// allocation-heavy (JSON values), and glibc's malloc and free took about a
/// fifth of its CPU in the create benchmark.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_eager_commit` in mimalloc v3's `mi_option_e`.
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Commit arena memory as it is used, not up front: with eager commit an
/// idle server's RSS doubled (21 to 40 MiB) for no measurable speed-up.
/// This must run before the first allocation creates the first arena, which
/// happens before `main`, hence a constructor. An explicit
/// `MIMALLOC_ARENA_EAGER_COMMIT` in the environment still wins.
extern "C" fn tune_allocator() {
    // No allocation here: std::env would allocate, so read the variable
    // through libc's getenv.
    // SAFETY: getenv with a NUL-terminated name; mi_option_set only stores an
    // integer in mimalloc's option table.
    unsafe {
        if getenv(c"MIMALLOC_ARENA_EAGER_COMMIT".as_ptr()).is_null() {
            libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
        }
    }
}

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_e`.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Give freed memory back to the OS at once instead of after mimalloc v3's
/// 1 s delay: for the node's long-lived processes (the kubelet alone, the
/// agent), whose memory is a goal (issue 6) and whose allocation rate is
/// low. After 100 pods and the deletion of 50 (`wharf bench kubelet`), the
/// kubelet held 41–43 MiB with the delay and 38–42 MiB without, and 23 MiB
/// instead of 35 MiB before its first pod. An explicit
/// `MIMALLOC_PURGE_DELAY` still wins.
fn purge_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set only stores an integer in the option table.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
}

extern "C" {
    fn getenv(name: *const std::ffi::c_char) -> *const std::ffi::c_char;
}

#[used]
#[link_section = ".init_array"]
static TUNE_ALLOCATOR: extern "C" fn() = tune_allocator;

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
    /// Run the control plane, and the kubelet unless `--disable-agent`.
    Server(Box<cmd::server::ServerArgs>),
    /// Run a benchmark suite.
    Bench(cmd::bench::BenchArgs),
    /// Simulate nodes that run pods on paper (like KWOK), for tests and
    /// benchmarks at scale.
    HollowNodes(cmd::hollow::HollowArgs),
    /// Run the scheduler alone, as a client of an API server.
    Scheduler(cmd::scheduler::SchedulerArgs),
    /// Run the controller manager alone, as a client of an API server.
    ControllerManager(cmd::controller_manager::ControllerManagerArgs),
    /// Join a cluster as a worker node: kubelet and service proxy.
    Agent(Box<cmd::agent::AgentArgs>),
    /// Run the kubelet alone, as a client of an API server.
    Kubelet(cmd::kubelet::KubeletArgs),
    /// Run the service proxy alone (Services to nftables), as a client of an API server.
    Proxy(cmd::proxy::ProxyArgs),
    /// Manage the node's container images.
    Images(cmd::images::ImagesArgs),
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
    if matches!(cli.command, Command::Kubelet(_) | Command::Agent(_)) {
        purge_at_once();
    }
    // The kubelet alone runs on one thread: it mostly waits for containerd
    // and the API server, and its memory is a goal (issue 6). Worker
    // threads cost their stacks, mimalloc's per-thread heaps, and pages
    // that stay committed because objects freed on another thread return
    // to their owner's heap only when that thread allocates again.
    let mut rt = if matches!(cli.command, Command::Kubelet(_)) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let rt = rt.enable_all().build()?;
    rt.block_on(async move {
        match cli.command {
            Command::Server(a) => cmd::server::run(*a).await,
            Command::Bench(a) => cmd::bench::run(a).await,
            Command::HollowNodes(a) => cmd::hollow::run(a).await,
            Command::Scheduler(a) => cmd::scheduler::run(a).await,
            Command::ControllerManager(a) => cmd::controller_manager::run(a).await,
            Command::Agent(a) => cmd::agent::run(*a).await,
            Command::Kubelet(a) => cmd::kubelet::run(a).await,
            Command::Proxy(a) => cmd::proxy::run(a).await,
            Command::Images(a) => cmd::images::run(a).await,
            Command::Debug(a) => cmd::debug::run(a).await,
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_constructor_turned_off_eager_arena_commit() {
        // SAFETY: mi_option_get only reads mimalloc's option table.
        let get = |o| unsafe { libmimalloc_sys::mi_option_get(o) };
        // The constructor ran for this test binary too. The neighbours keep
        // their documented defaults (deprecated_eager_commit = 1 before it,
        // purge_decommits = 1 after it), which catches a renumbering.
        assert_eq!(get(super::MI_OPTION_ARENA_EAGER_COMMIT), 0);
        assert_eq!(get(super::MI_OPTION_ARENA_EAGER_COMMIT - 1), 1);
        assert_eq!(get(super::MI_OPTION_ARENA_EAGER_COMMIT + 1), 1);
    }

    #[test]
    fn purge_at_once_sets_the_purge_delay_and_only_it() {
        // SAFETY: mi_option_get only reads mimalloc's option table.
        let get = |o| unsafe { libmimalloc_sys::mi_option_get(o) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(
                get(super::MI_OPTION_PURGE_DELAY),
                1000,
                "mimalloc v3's default"
            );
        }
        super::purge_at_once();
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(get(super::MI_OPTION_PURGE_DELAY), 0);
        }
        // The neighbours keep their defaults (eager_commit_delay = 1,
        // use_numa_nodes = 0), which catches a renumbering.
        assert_eq!(get(super::MI_OPTION_PURGE_DELAY - 1), 1);
        assert_eq!(get(super::MI_OPTION_PURGE_DELAY + 1), 0);
    }
}
