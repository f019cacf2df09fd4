pub mod agent;
pub mod bench;
pub mod controller_manager;
pub mod debug;
pub mod elect;
pub mod hollow;
pub mod images;
pub mod join;
pub mod kubelet;
pub mod network;
pub mod proxy;
pub mod scheduler;
pub mod server;
pub mod token;

/// An API client from a kubeconfig file, optionally pointed at another URL,
/// sending `User-Agent: <component>/<version> …` as upstream's components do:
/// the API server names a write's field manager after it.
/// The CA bundle (PEM) of the kubeconfig's current cluster, for the root CA
/// publisher (upstream's controller manager takes `--root-ca-file`, or the
/// kubeconfig's CA).
pub fn root_ca_pem(kubeconfig: &std::path::Path) -> Option<String> {
    use base64::Engine as _;
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).ok()?;
    let ctx_name = kc.current_context.clone();
    let cluster_name = kc
        .contexts
        .iter()
        .find(|c| Some(&c.name) == ctx_name.as_ref())
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone());
    let cluster = kc
        .clusters
        .iter()
        .find(|c| Some(&c.name) == cluster_name.as_ref())
        .or(kc.clusters.first())?
        .cluster
        .clone()?;
    if let Some(data) = cluster.certificate_authority_data {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .ok()?;
        return String::from_utf8(pem).ok();
    }
    std::fs::read_to_string(cluster.certificate_authority?).ok()
}

pub async fn client_from(
    kubeconfig: &std::path::Path,
    server: Option<&str>,
    component: &str,
) -> anyhow::Result<kube::Client> {
    use anyhow::Context;
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    let mut config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .context("loading the kubeconfig")?;
    if let Some(url) = server {
        config.cluster_url = url.parse().with_context(|| format!("--server {url}"))?;
    }
    let ua = format!(
        "{component}/v{} ({}/{}) wharf",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_str(&ua).context("user agent")?,
    ));
    kube::Client::try_from(config).context("building the API client")
}

/// The host's first non-loopback IPv4 address, as `hostname -I` reports it;
/// the loopback address when there is none.
pub fn host_address() -> std::net::IpAddr {
    std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| {
            s.split_whitespace()
                .filter_map(|a| a.parse::<std::net::IpAddr>().ok())
                .find(|a| a.is_ipv4())
        })
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
}

/// Print a line on stdout for whoever started a long-running command, as
/// `println!` would, but never panic: a daemon whose reader went away (a
/// closed pipe) keeps running instead of dying on EPIPE at its next line.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($arg)*);
        let _ = out.flush();
    }};
}
pub(crate) use say;
