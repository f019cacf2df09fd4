//! From what the kernel has to what the plan wants: the changes, as pure
//! functions. Only our own device and routes marked with our protocol are
//! ever compared, so nothing else is touched.

use std::collections::BTreeSet;

use crate::kernel::{Link, Observed, Op, VxlanInfo, VxlanSpec};
use crate::plan::{Cidr, Desired};

/// The changes that make the VXLAN device `name` match `want` (None: no
/// device, as in host-gw mode). A device with other tunnel parameters is
/// recreated: VNI, port, local address and underlay cannot be changed in
/// place.
pub fn device_ops(name: &str, existing: Option<&Link>, want: Option<&VxlanSpec>) -> Vec<Op> {
    let Some(spec) = want else {
        return match existing {
            Some(l) if l.vxlan.is_some() => vec![Op::DeleteLink(name.to_string())],
            _ => Vec::new(),
        };
    };
    let wanted_info = VxlanInfo {
        vni: spec.vni,
        port: spec.port,
        local: Some(spec.local),
        underlay: Some(spec.underlay.clone()),
        learning: false,
    };
    let vtep = Cidr {
        addr: spec.address,
        prefix: 32,
    };
    let mut ops = Vec::new();
    let have: &[Cidr] = match existing {
        Some(l) if l.vxlan.as_ref() == Some(&wanted_info) => {
            if l.mtu != spec.mtu || !l.up {
                ops.push(Op::SetMtuUp {
                    dev: name.to_string(),
                    mtu: spec.mtu,
                });
            }
            &l.addrs
        }
        other => {
            if other.is_some() {
                ops.push(Op::DeleteLink(name.to_string()));
            }
            ops.push(Op::CreateVxlan(spec.clone()));
            ops.push(Op::SetMtuUp {
                dev: name.to_string(),
                mtu: spec.mtu,
            });
            &[]
        }
    };
    for a in have.iter().filter(|a| **a != vtep) {
        ops.push(Op::DelAddr {
            dev: name.to_string(),
            addr: *a,
        });
    }
    if !have.contains(&vtep) {
        ops.push(Op::AddAddr {
            dev: name.to_string(),
            addr: vtep,
        });
    }
    ops
}

/// The changes that make our routes, neighbours and FDB entries those of
/// `desired`. Stale entries go first (a moved podCIDR's old route before
/// the new one); new L2 entries come before the routes that use them.
pub fn peer_ops(observed: &Observed, desired: &Desired) -> Vec<Op> {
    let routes: BTreeSet<_> = observed.routes.iter().cloned().collect();
    let neighs: BTreeSet<_> = observed.neighs.iter().cloned().collect();
    let fdb: BTreeSet<_> = observed.fdb.iter().cloned().collect();
    let mut ops = Vec::new();
    ops.extend(
        routes
            .difference(&desired.routes)
            .cloned()
            .map(Op::DelRoute),
    );
    ops.extend(
        neighs
            .difference(&desired.neighs)
            .cloned()
            .map(Op::DelNeigh),
    );
    ops.extend(fdb.difference(&desired.fdb).cloned().map(Op::DelFdb));
    ops.extend(desired.fdb.difference(&fdb).cloned().map(Op::AddFdb));
    ops.extend(
        desired
            .neighs
            .difference(&neighs)
            .cloned()
            .map(Op::AddNeigh),
    );
    ops.extend(
        desired
            .routes
            .difference(&routes)
            .cloned()
            .map(Op::AddRoute),
    );
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Fdb, Neigh, Route};
    use std::net::Ipv4Addr;

    fn spec() -> VxlanSpec {
        VxlanSpec {
            name: "wv0".into(),
            vni: 1,
            port: 8472,
            local: Ipv4Addr::new(192, 168, 1, 1),
            underlay: "eth0".into(),
            mtu: 1450,
            address: Ipv4Addr::new(10, 42, 0, 0),
        }
    }

    fn link(info: VxlanInfo, mtu: u32, addrs: &[&str]) -> Link {
        Link {
            name: "wv0".into(),
            mtu,
            mac: Some("02:00:00:00:00:01".parse().unwrap()),
            up: true,
            vxlan: Some(info),
            addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        }
    }

    fn good_info() -> VxlanInfo {
        VxlanInfo {
            vni: 1,
            port: 8472,
            local: Some(Ipv4Addr::new(192, 168, 1, 1)),
            underlay: Some("eth0".into()),
            learning: false,
        }
    }

    #[test]
    fn missing_device_is_created_with_its_address() {
        let ops = device_ops("wv0", None, Some(&spec()));
        assert_eq!(
            ops,
            vec![
                Op::CreateVxlan(spec()),
                Op::SetMtuUp {
                    dev: "wv0".into(),
                    mtu: 1450
                },
                Op::AddAddr {
                    dev: "wv0".into(),
                    addr: "10.42.0.0/32".parse().unwrap()
                },
            ]
        );
    }

    #[test]
    fn a_matching_device_is_left_alone() {
        let l = link(good_info(), 1450, &["10.42.0.0/32"]);
        assert!(device_ops("wv0", Some(&l), Some(&spec())).is_empty());
    }

    #[test]
    fn mtu_and_addresses_are_fixed_in_place() {
        let l = link(good_info(), 1500, &["10.42.9.0/32"]);
        let ops = device_ops("wv0", Some(&l), Some(&spec()));
        assert_eq!(
            ops,
            vec![
                Op::SetMtuUp {
                    dev: "wv0".into(),
                    mtu: 1450
                },
                Op::DelAddr {
                    dev: "wv0".into(),
                    addr: "10.42.9.0/32".parse().unwrap()
                },
                Op::AddAddr {
                    dev: "wv0".into(),
                    addr: "10.42.0.0/32".parse().unwrap()
                },
            ]
        );
    }

    #[test]
    fn other_tunnel_parameters_recreate_the_device() {
        for info in [
            VxlanInfo {
                vni: 2,
                ..good_info()
            },
            VxlanInfo {
                local: Some(Ipv4Addr::new(192, 168, 1, 7)),
                ..good_info()
            },
            VxlanInfo {
                learning: true,
                ..good_info()
            },
        ] {
            let l = link(info, 1450, &["10.42.0.0/32"]);
            let ops = device_ops("wv0", Some(&l), Some(&spec()));
            assert_eq!(ops[0], Op::DeleteLink("wv0".into()));
            assert_eq!(ops[1], Op::CreateVxlan(spec()));
        }
    }

    #[test]
    fn host_gw_removes_our_vxlan_device_only() {
        let l = link(good_info(), 1450, &[]);
        assert_eq!(
            device_ops("wv0", Some(&l), None),
            vec![Op::DeleteLink("wv0".into())]
        );
        let not_vxlan = Link { vxlan: None, ..l };
        assert!(device_ops("wv0", Some(&not_vxlan), None).is_empty());
        assert!(device_ops("wv0", None, None).is_empty());
    }

    #[test]
    fn peers_diff_removes_stale_then_adds() {
        let mac = "02:00:00:00:00:0b".parse().unwrap();
        let route = |dst: &str, via: [u8; 4]| Route {
            dst: dst.parse().unwrap(),
            via: Ipv4Addr::from(via),
            dev: "wv0".into(),
            onlink: true,
        };
        let observed = Observed {
            routes: vec![route("10.42.1.0/24", [10, 42, 1, 0])],
            neighs: vec![Neigh {
                dev: "wv0".into(),
                ip: Ipv4Addr::new(10, 42, 1, 0),
                mac,
            }],
            fdb: vec![Fdb {
                dev: "wv0".into(),
                mac,
                dst: Ipv4Addr::new(192, 168, 1, 2),
            }],
        };
        // The node's podCIDR moved to 10.42.7.0/24.
        let mut desired = Desired::default();
        desired.routes.insert(route("10.42.7.0/24", [10, 42, 7, 0]));
        desired.neighs.insert(Neigh {
            dev: "wv0".into(),
            ip: Ipv4Addr::new(10, 42, 7, 0),
            mac,
        });
        desired.fdb.insert(observed.fdb[0].clone());
        let ops = peer_ops(&observed, &desired);
        assert_eq!(
            ops,
            vec![
                Op::DelRoute(observed.routes[0].clone()),
                Op::DelNeigh(observed.neighs[0].clone()),
                Op::AddNeigh(desired.neighs.iter().next().unwrap().clone()),
                Op::AddRoute(desired.routes.iter().next().unwrap().clone()),
            ]
        );
        // Once applied, nothing is left to do.
        let now = Observed {
            routes: desired.routes.iter().cloned().collect(),
            neighs: desired.neighs.iter().cloned().collect(),
            fdb: desired.fdb.iter().cloned().collect(),
        };
        assert!(peer_ops(&now, &desired).is_empty());
        // A node removed: everything of it goes.
        let gone = peer_ops(&now, &Desired::default());
        assert_eq!(gone.len(), 3);
        assert!(gone
            .iter()
            .all(|o| matches!(o, Op::DelRoute(_) | Op::DelNeigh(_) | Op::DelFdb(_))));
    }
}
