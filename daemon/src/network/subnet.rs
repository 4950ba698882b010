//! IPv4 subnets (`10.88.0.0/16`): parsing with clear errors, overlap checks and the
//! addresses inside one.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::NetworkError;

/// An IPv4 subnet in CIDR notation; the address is always the network address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    /// The network address (host bits zero).
    pub addr: Ipv4Addr,
    /// Prefix length, 8 to 30 (smaller networks leave no room for containers).
    pub prefix: u8,
}

impl Subnet {
    /// The netmask as a number.
    fn mask(&self) -> u32 {
        u32::MAX << (32 - u32::from(self.prefix))
    }

    /// Whether `ip` is inside the subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr)
    }

    /// Whether the two subnets share any address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        let prefix = self.prefix.min(other.prefix);
        let mask = u32::MAX << (32 - u32::from(prefix));
        u32::from(self.addr) & mask == u32::from(other.addr) & mask
    }

    /// The `n`th address of the subnet (0 is the network address).
    pub fn nth(&self, n: u32) -> Option<Ipv4Addr> {
        (n < self.size()).then(|| Ipv4Addr::from(u32::from(self.addr) + n))
    }

    /// How many addresses it spans.
    pub fn size(&self) -> u32 {
        1u32 << (32 - u32::from(self.prefix))
    }

    /// The broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    /// The first usable address, the default gateway.
    pub fn default_gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) + 1)
    }

    /// Whether `ip` may be given to a host or gateway (not network or broadcast).
    pub fn is_host(&self, ip: Ipv4Addr) -> bool {
        self.contains(ip) && ip != self.addr && ip != self.broadcast()
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = NetworkError;

    /// Parses `A.B.C.D/N`; host bits must be zero, N between 8 and 30.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| NetworkError::InvalidSubnet {
            subnet: s.to_string(),
            why: why.to_string(),
        };
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| bad("expected CIDR notation like 10.88.0.0/16"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| bad("not an IPv4 address (IPv6 subnets are not supported)"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| bad("the prefix length is not a number"))?;
        if !(8..=30).contains(&prefix) {
            return Err(bad("the prefix length must be between 8 and 30"));
        }
        let net = Subnet { addr, prefix };
        if u32::from(addr) & !net.mask() != 0 {
            return Err(bad(&format!(
                "host bits are set; did you mean {}/{prefix}?",
                Ipv4Addr::from(u32::from(addr) & net.mask())
            )));
        }
        Ok(net)
    }
}

impl Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let n: Subnet = "10.88.0.0/16".parse().unwrap();
        assert_eq!(n.to_string(), "10.88.0.0/16");
        assert_eq!(n.default_gateway(), Ipv4Addr::new(10, 88, 0, 1));
        assert_eq!(n.broadcast(), Ipv4Addr::new(10, 88, 255, 255));
        for bad in [
            "10.88.0.0",
            "10.88.0.1/16",
            "10.88.0.0/33",
            "10.88.0.0/31",
            "fd00::/64",
            "x/8",
            "10.0.0.0/abc",
        ] {
            assert!(bad.parse::<Subnet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn overlap_and_membership() {
        let a: Subnet = "10.1.0.0/16".parse().unwrap();
        let b: Subnet = "10.1.200.0/24".parse().unwrap();
        let c: Subnet = "10.2.0.0/24".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
        assert!(b.contains(Ipv4Addr::new(10, 1, 200, 9)));
        assert!(!b.is_host(Ipv4Addr::new(10, 1, 200, 255)));
        assert!(!b.is_host(Ipv4Addr::new(10, 1, 200, 0)));
    }
}
