//! The contents of a container's `/etc/hosts` and `/etc/resolv.conf` on bridge
//! networks: pure functions, so they are unit-tested without a kernel.

use std::net::Ipv4Addr;

/// A name an address answers to in `/etc/hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    /// The address.
    pub ip: Ipv4Addr,
    /// Names, most specific first.
    pub names: Vec<String>,
}

/// `/etc/hosts`: loopback, the container's own addresses with its hostname, then its
/// peers on user networks (so names resolve even without the embedded DNS server).
pub fn hosts(hostname: &str, own: &[Ipv4Addr], peers: &[HostEntry]) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    if own.is_empty() {
        out.push_str(&format!("127.0.0.1\t{hostname}\n"));
    }
    for ip in own {
        out.push_str(&format!("{ip}\t{hostname}\n"));
    }
    for p in peers {
        out.push_str(&format!("{}\t{}\n", p.ip, p.names.join(" ")));
    }
    out
}

/// `/etc/resolv.conf` from the host's: loopback name servers dropped (unreachable from
/// the container's namespace); with `embedded` the only name server is the network's
/// embedded DNS server, which forwards other names to the host's resolvers.
pub fn resolv_conf(host_resolv: &str, embedded: Option<Ipv4Addr>) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host_resolv.lines() {
        let l = line.trim();
        if let Some(addr) = l.strip_prefix("nameserver") {
            let addr = addr.trim();
            if embedded.is_some() || addr.starts_with("127.") || addr == "::1" {
                continue;
            }
            servers += 1;
        }
        out.push_str(l);
        out.push('\n');
    }
    if let Some(dns) = embedded {
        out.push_str(&format!("nameserver {dns}\noptions ndots:0\n"));
    } else if servers == 0 {
        // Docker's fallback when the host has no usable resolver.
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

/// Nameservers of a resolv.conf, in order.
pub fn nameservers(resolv: &str) -> Vec<String> {
    resolv
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lists_self_and_peers() {
        let h = hosts(
            "web",
            &["10.1.0.2".parse().unwrap()],
            &[HostEntry {
                ip: "10.1.0.3".parse().unwrap(),
                names: vec!["db".into(), "database".into()],
            }],
        );
        assert!(h.contains("10.1.0.2\tweb\n"));
        assert!(h.contains("10.1.0.3\tdb database\n"));
        assert!(hosts("x", &[], &[]).contains("127.0.0.1\tx\n"));
    }

    #[test]
    fn resolv_drops_loopback_or_uses_embedded() {
        let host = "search example.org\nnameserver 127.0.0.53\nnameserver 10.0.0.2\n";
        let r = resolv_conf(host, None);
        assert_eq!(r, "search example.org\nnameserver 10.0.0.2\n");
        let r = resolv_conf(host, Some("10.1.0.1".parse().unwrap()));
        assert!(r.contains("nameserver 10.1.0.1\n") && !r.contains("10.0.0.2"));
        assert_eq!(nameservers(host), ["127.0.0.53", "10.0.0.2"]);
    }
}
