//! How a worker host runs: the argv of its processes, built in one place
//! so that moving the workers from `wharf kubelet` + `wharf proxy` to
//! `wharf agent` is a one-line change of
//! [`Options::worker_command`](super::Options::worker_command).

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::net;

/// How a worker host joins the cluster: the argv of the processes it runs.
/// Switching every worker to `wharf agent` is a change of
/// [`Options::worker_command`](super::Options::worker_command).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkerCommand {
    /// `wharf kubelet` and `wharf proxy`, each with a copy of the admin
    /// kubeconfig (what exists before `wharf agent`).
    KubeletAndProxy,
    /// `wharf agent --server URL --token TOKEN`: it joins with the token
    /// the server wrote to `<data-dir>/server/token` (else the passphrase
    /// the harness gave `wharf server --token`).
    Agent,
}

/// What a worker's command line is built from.
#[derive(Clone, Debug)]
pub struct WorkerSpec {
    pub node_name: String,
    pub data_dir: PathBuf,
    pub node_ip: Ipv4Addr,
    pub server_url: String,
    pub token: String,
    /// The worker's copy of the admin kubeconfig.
    pub kubeconfig: PathBuf,
}

impl WorkerCommand {
    /// Each process of the worker: a name (for its log file) and its
    /// arguments after the `wharf` binary.
    pub fn argvs(&self, w: &WorkerSpec) -> Vec<(&'static str, Vec<OsString>)> {
        let s = |x: &str| OsString::from(x);
        let common = vec![
            s("--node-name"),
            s(&w.node_name),
            s("--data-dir"),
            w.data_dir.clone().into(),
            s("--node-ip"),
            s(&w.node_ip.to_string()),
        ];
        match self {
            WorkerCommand::KubeletAndProxy => {
                let mut kubelet =
                    vec![s("kubelet"), s("--kubeconfig"), w.kubeconfig.clone().into()];
                kubelet.extend(common);
                // No registries file of the machine's: the workers pull nothing.
                kubelet.extend([
                    s("--private-registry"),
                    w.data_dir.join("registries.yaml").into(),
                ]);
                let proxy = vec![
                    s("proxy"),
                    s("--kubeconfig"),
                    w.kubeconfig.clone().into(),
                    s("--hostname-override"),
                    s(&w.node_name),
                    s("--cluster-cidr"),
                    s(net::CLUSTER_CIDR),
                ];
                vec![("kubelet", kubelet), ("proxy", proxy)]
            }
            WorkerCommand::Agent => {
                let mut agent = vec![
                    s("agent"),
                    s("--server"),
                    s(&w.server_url),
                    s("--token"),
                    s(&w.token),
                ];
                agent.extend(common);
                vec![("agent", agent)]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> WorkerSpec {
        WorkerSpec {
            node_name: "worker-1".into(),
            data_dir: "/d/host-1".into(),
            node_ip: Ipv4Addr::new(172, 20, 3, 11),
            server_url: "https://172.20.3.10:6443".into(),
            token: "tok".into(),
            kubeconfig: "/d/host-1/kubeconfig.yaml".into(),
        }
    }

    fn strs(v: &[OsString]) -> Vec<&str> {
        v.iter().map(|s| s.to_str().unwrap()).collect()
    }

    #[test]
    fn kubelet_and_proxy_argv() {
        let a = WorkerCommand::KubeletAndProxy.argvs(&spec());
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].0, "kubelet");
        assert_eq!(
            strs(&a[0].1),
            [
                "kubelet",
                "--kubeconfig",
                "/d/host-1/kubeconfig.yaml",
                "--node-name",
                "worker-1",
                "--data-dir",
                "/d/host-1",
                "--node-ip",
                "172.20.3.11",
                "--private-registry",
                "/d/host-1/registries.yaml"
            ]
        );
        assert_eq!(
            strs(&a[1].1),
            [
                "proxy",
                "--kubeconfig",
                "/d/host-1/kubeconfig.yaml",
                "--hostname-override",
                "worker-1",
                "--cluster-cidr",
                "10.42.0.0/16"
            ]
        );
    }

    #[test]
    fn agent_argv_joins_with_the_token() {
        let a = WorkerCommand::Agent.argvs(&spec());
        assert_eq!(a.len(), 1);
        assert_eq!(
            strs(&a[0].1)[..5],
            [
                "agent",
                "--server",
                "https://172.20.3.10:6443",
                "--token",
                "tok"
            ]
        );
    }
}
