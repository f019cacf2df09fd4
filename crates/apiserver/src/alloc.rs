//! Service ClusterIP and NodePort allocation.
//!
//! Each allocated address or port is a key under `/registry/internal/`, created
//! only if absent, so two API servers sharing one store can never hand out the
//! same one, and allocations survive restarts. The key holds the owning
//! service's `namespace/name` for repair and debugging.

use std::net::Ipv4Addr;
use std::sync::Arc;

use bytes::Bytes;
use store::{Precondition, Store, WriteOp, WriteOutcome};

use crate::error::{ApiError, ApiResult, FieldError};

/// Where allocation claims live.
pub const INTERNAL_PREFIX: &str = "/registry/internal/";
const NODE_PORT_MIN: u16 = 30000;
const NODE_PORT_MAX: u16 = 32767;

/// Allocates from the service CIDR and the NodePort range.
#[derive(Clone)]
pub struct ServiceAllocator {
    store: Arc<dyn Store>,
    base: u32,
    size: u32,
}

fn ip_key(ip: Ipv4Addr) -> String {
    format!("{INTERNAL_PREFIX}serviceips/{ip}")
}

fn port_key(port: u16) -> String {
    format!("{INTERNAL_PREFIX}nodeports/{port}")
}

fn random_u32() -> u32 {
    (uuid::Uuid::new_v4().as_u128() & 0xffff_ffff) as u32
}

impl ServiceAllocator {
    /// An allocator over `cidr` (e.g. `10.43.0.0/16`).
    pub fn new(store: Arc<dyn Store>, cidr: &str) -> Result<ServiceAllocator, String> {
        let (addr, len) = cidr
            .split_once('/')
            .ok_or_else(|| format!("invalid service CIDR {cidr:?}"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("invalid service CIDR {cidr:?}"))?;
        let len: u32 = len
            .parse()
            .ok()
            .filter(|l| (8..=30).contains(l))
            .ok_or_else(|| format!("invalid prefix length in {cidr:?}"))?;
        let size = 1u32 << (32 - len);
        let base = u32::from(addr) & !(size - 1);
        Ok(ServiceAllocator { store, base, size })
    }

    /// The first usable address: the `kubernetes` service's.
    pub fn first_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base + 1)
    }

    /// Whether `ip` is usable: inside the range, not the network or broadcast address.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let n = u32::from(ip);
        n > self.base && n < self.base + self.size - 1
    }

    async fn claim(&self, key: String, owner: &str) -> ApiResult<bool> {
        let op = WriteOp::Put {
            key: key.into_bytes(),
            value: Bytes::from(owner.to_string()),
            ttl: None,
        };
        match self
            .store
            .write(Precondition::Absent, op)
            .await
            .map_err(super::registry::store_error)?
        {
            WriteOutcome::Committed { .. } => Ok(true),
            WriteOutcome::Failed { current } => {
                Ok(current.is_some_and(|c| c.value.as_ref() == owner.as_bytes()))
            }
        }
    }

    async fn release(&self, key: String) {
        let op = WriteOp::Delete {
            key: key.clone().into_bytes(),
        };
        if let Err(e) = self.store.write(Precondition::None, op).await {
            tracing::warn!(key, error = %e, "failed to release allocation");
        }
    }

    /// Allocate `requested`, or a free address when `None`.
    pub async fn allocate_ip(
        &self,
        requested: Option<Ipv4Addr>,
        owner: &str,
    ) -> ApiResult<Ipv4Addr> {
        if let Some(ip) = requested {
            if !self.contains(ip) {
                return Err(invalid_ip(
                    ip,
                    "provided IP is not in the valid range. The range of valid IPs is ".to_string()
                        + &self.cidr(),
                ));
            }
            if self.claim(ip_key(ip), owner).await? {
                return Ok(ip);
            }
            return Err(invalid_ip(ip, "provided IP is already allocated".into()));
        }
        let usable = self.size - 2;
        // Leave the lower part of the range to static addresses, as upstream does
        // (the first /16th, at least 16 and at most 256 addresses).
        let reserved = (usable / 16).clamp(16.min(usable / 2), 256);
        let dynamic = usable - reserved;
        let start = random_u32() % dynamic;
        for i in 0..dynamic.min(4096) {
            let ip = Ipv4Addr::from(self.base + 1 + reserved + (start + i) % dynamic);
            if self.claim(ip_key(ip), owner).await? {
                return Ok(ip);
            }
        }
        for off in 0..reserved {
            let ip = Ipv4Addr::from(self.base + 1 + off);
            if self.claim(ip_key(ip), owner).await? {
                return Ok(ip);
            }
        }
        Err(ApiError::internal(
            "failed to allocate a serviceIP: range is full",
        ))
    }

    /// Free an address.
    pub async fn release_ip(&self, ip: Ipv4Addr) {
        self.release(ip_key(ip)).await
    }

    /// Allocate `requested`, or a free NodePort when `None`.
    pub async fn allocate_node_port(
        &self,
        requested: Option<u16>,
        owner: &str,
        field: &str,
    ) -> ApiResult<u16> {
        if let Some(p) = requested {
            if !(NODE_PORT_MIN..=NODE_PORT_MAX).contains(&p) {
                return Err(ApiError::invalid("", "Service", owner_name(owner), &[FieldError::invalid(field, p, format!("provided port is not in the valid range. The range of valid ports is {NODE_PORT_MIN}-{NODE_PORT_MAX}"))]));
            }
            if self.claim(port_key(p), owner).await? {
                return Ok(p);
            }
            return Err(ApiError::invalid(
                "",
                "Service",
                owner_name(owner),
                &[FieldError::invalid(
                    field,
                    p,
                    "provided port is already allocated",
                )],
            ));
        }
        let span = (NODE_PORT_MAX - NODE_PORT_MIN + 1) as u32;
        let start = random_u32() % span;
        for i in 0..span {
            let p = NODE_PORT_MIN + ((start + i) % span) as u16;
            if self.claim(port_key(p), owner).await? {
                return Ok(p);
            }
        }
        Err(ApiError::internal(
            "failed to allocate a nodePort: range is full",
        ))
    }

    /// Free a NodePort.
    pub async fn release_node_port(&self, port: u16) {
        self.release(port_key(port)).await
    }

    /// The range as text.
    pub fn cidr(&self) -> String {
        format!(
            "{}/{}",
            Ipv4Addr::from(self.base),
            32 - self.size.trailing_zeros()
        )
    }
}

fn owner_name(owner: &str) -> &str {
    owner.rsplit('/').next().unwrap_or(owner)
}

fn invalid_ip(ip: Ipv4Addr, why: String) -> ApiError {
    ApiError::invalid(
        "",
        "Service",
        "",
        &[FieldError::invalid("spec.clusterIPs", ip.to_string(), why)],
    )
}
