pub mod bench;
pub mod controller_manager;
pub mod debug;
pub mod elect;
pub mod hollow;
pub mod images;
pub mod kubelet;
pub mod proxy;
pub mod scheduler;
pub mod server;

/// An API client from a kubeconfig file, optionally pointed at another URL,
/// sending `User-Agent: <component>/<version> …` as upstream's components do:
/// the API server names a write's field manager after it.
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
