//! The node CIDRs of one cluster CIDR: which are taken, and the next one to
//! hand out, as upstream's `cidrset`. Allocation goes round the range from
//! the last CIDR handed out (not from the lowest free one), so a CIDR just
//! released is reused only once the others have been tried.

use std::net::IpAddr;

/// Errors of the settings or of a CIDR read from a node.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("invalid CIDR address: {0}")]
    Parse(String),
    #[error("--node-cidr-mask-size {mask} must be at least the cluster CIDR's prefix length {prefix} and at most {max}")]
    Mask { mask: u8, prefix: u8, max: u8 },
    #[error("--node-cidr-mask-size {mask} cuts {cidr} into more than 2^16 node CIDRs")]
    TooMany { mask: u8, cidr: String },
    #[error("CIDR {0} is not within the cluster CIDR")]
    Outside(String),
}

/// One cluster CIDR cut into node CIDRs of one size.
#[derive(Debug, Clone)]
pub struct CidrSet {
    /// The cluster CIDR's first address, as an integer.
    base: u128,
    v6: bool,
    prefix: u8,
    mask: u8,
    used: Vec<bool>,
    free: usize,
    next: usize,
}

/// `a.b.c.d/len` or `x::/len`, the address masked to its prefix.
pub fn parse_cidr(s: &str) -> Result<(u128, bool, u8), Error> {
    let bad = || Error::Parse(s.to_string());
    let (addr, len) = s.trim().split_once('/').ok_or_else(bad)?;
    let ip: IpAddr = addr.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    let (v, v6, bits) = match ip {
        IpAddr::V4(a) => (u32::from(a) as u128, false, 32),
        IpAddr::V6(a) => (u128::from(a), true, 128),
    };
    if len > bits {
        return Err(bad());
    }
    Ok((v & net_mask(len, bits), v6, len))
}

fn net_mask(len: u8, bits: u8) -> u128 {
    let all = if bits == 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    };
    if len == 0 {
        0
    } else {
        all & !((1u128 << (bits - len)) - 1) & all
    }
}

impl CidrSet {
    /// The set of `cluster_cidr` cut into `/mask` CIDRs.
    pub fn parse(cluster_cidr: &str, mask: u8) -> Result<CidrSet, Error> {
        let (base, v6, prefix) = parse_cidr(cluster_cidr)?;
        let max = if v6 { 128 } else { 32 };
        if mask < prefix || mask > max {
            return Err(Error::Mask { mask, prefix, max });
        }
        // Upstream's limit too: a bitmap of at most 2^16 node CIDRs.
        if mask - prefix > 16 {
            return Err(Error::TooMany {
                mask,
                cidr: cluster_cidr.to_string(),
            });
        }
        let n = 1usize << (mask - prefix);
        Ok(CidrSet {
            base,
            v6,
            prefix,
            mask,
            used: vec![false; n],
            free: n,
            next: 0,
        })
    }

    fn bits(&self) -> u8 {
        if self.v6 {
            128
        } else {
            32
        }
    }

    fn format(&self, i: usize) -> String {
        let v = self.base + ((i as u128) << (self.bits() - self.mask));
        let ip: IpAddr = if self.v6 {
            IpAddr::V6(v.into())
        } else {
            IpAddr::V4((v as u32).into())
        };
        format!("{ip}/{}", self.mask)
    }

    /// The indexes of the node CIDRs `cidr` covers (one for a node CIDR).
    fn range(&self, cidr: &str) -> Result<std::ops::Range<usize>, Error> {
        let (v, v6, len) = parse_cidr(cidr)?;
        let outside = || Error::Outside(cidr.to_string());
        if v6 != self.v6 || len < self.prefix || v & net_mask(self.prefix, self.bits()) != self.base
        {
            return Err(outside());
        }
        let shift = self.bits() - self.mask;
        let first = ((v - self.base) >> shift) as usize;
        // A CIDR larger than a node CIDR covers several; a smaller one, the
        // node CIDR that contains it.
        let count = if len < self.mask {
            1usize << (self.mask - len)
        } else {
            1
        };
        Ok(first..(first + count).min(self.used.len()))
    }

    /// Hand out the next free node CIDR; `None` when all are taken.
    pub fn allocate_next(&mut self) -> Option<String> {
        if self.free == 0 {
            return None;
        }
        let n = self.used.len();
        let i = (0..n)
            .map(|k| (self.next + k) % n)
            .find(|&i| !self.used[i])?;
        self.used[i] = true;
        self.free -= 1;
        self.next = (i + 1) % n;
        Some(self.format(i))
    }

    /// Mark `cidr` (from a node) as taken.
    pub fn occupy(&mut self, cidr: &str) -> Result<(), Error> {
        for i in self.range(cidr)? {
            if !self.used[i] {
                self.used[i] = true;
                self.free -= 1;
            }
        }
        Ok(())
    }

    /// Give `cidr` back.
    pub fn release(&mut self, cidr: &str) -> Result<(), Error> {
        for i in self.range(cidr)? {
            if self.used[i] {
                self.used[i] = false;
                self.free += 1;
            }
        }
        Ok(())
    }

    /// Node CIDRs still free.
    pub fn free(&self) -> usize {
        self.free
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_distinct_cidrs_round_the_range() {
        let mut s = CidrSet::parse("10.42.0.0/22", 24).unwrap();
        let got: Vec<_> = (0..4).map(|_| s.allocate_next().unwrap()).collect();
        assert_eq!(
            got,
            [
                "10.42.0.0/24",
                "10.42.1.0/24",
                "10.42.2.0/24",
                "10.42.3.0/24"
            ]
        );
        assert_eq!(s.allocate_next(), None, "exhausted");
        s.release("10.42.1.0/24").unwrap();
        assert_eq!(s.free(), 1);
        assert_eq!(s.allocate_next().as_deref(), Some("10.42.1.0/24"));
        // Round the range: after a release, the next candidate comes first.
        s.release("10.42.0.0/24").unwrap();
        s.release("10.42.3.0/24").unwrap();
        assert_eq!(s.allocate_next().as_deref(), Some("10.42.3.0/24"));
        assert_eq!(s.allocate_next().as_deref(), Some("10.42.0.0/24"));
    }

    #[test]
    fn occupies_what_nodes_already_have() {
        let mut s = CidrSet::parse("10.42.0.0/16", 24).unwrap();
        s.occupy("10.42.0.0/24").unwrap();
        s.occupy("10.42.1.0/24").unwrap();
        assert_eq!(s.allocate_next().as_deref(), Some("10.42.2.0/24"));
        assert_eq!(s.free(), 253);
        // Occupying twice counts once; a larger block takes all it covers.
        s.occupy("10.42.1.0/24").unwrap();
        s.occupy("10.42.4.0/23").unwrap();
        assert_eq!(s.free(), 251);
        assert_eq!(s.allocate_next().as_deref(), Some("10.42.3.0/24"));
        assert_eq!(s.allocate_next().as_deref(), Some("10.42.6.0/24"));
        assert!(matches!(s.occupy("10.43.0.0/24"), Err(Error::Outside(_))));
        assert!(matches!(s.occupy("fd00::/64"), Err(Error::Outside(_))));
        assert!(matches!(s.occupy("nonsense"), Err(Error::Parse(_))));
    }

    #[test]
    fn settings_are_checked() {
        assert!(matches!(
            CidrSet::parse("10.42.0.0/16", 8),
            Err(Error::Mask { .. })
        ));
        assert!(matches!(
            CidrSet::parse("10.0.0.0/8", 30),
            Err(Error::TooMany { .. })
        ));
        assert!(CidrSet::parse("10.42.0.0", 24).is_err());
        // The address is masked to its prefix.
        let mut s = CidrSet::parse("10.42.7.9/16", 24).unwrap();
        assert_eq!(s.allocate_next().as_deref(), Some("10.42.0.0/24"));
        let mut v6 = CidrSet::parse("fd00:10::/56", 64).unwrap();
        assert_eq!(v6.allocate_next().as_deref(), Some("fd00:10::/64"));
        assert_eq!(v6.allocate_next().as_deref(), Some("fd00:10:0:1::/64"));
    }
}
