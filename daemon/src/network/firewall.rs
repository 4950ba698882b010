//! NAT and port publishing with iptables (nf_tables or legacy backend alike).
//!
//! Per network (bridge `BR`): a nat chain `SKIFF-BR` holding its containers' DNAT
//! rules, reached from PREROUTING (traffic from outside) and OUTPUT (from the host,
//! 127.0.0.1 included) for local destinations; MASQUERADE for the subnet's outbound
//! traffic and for host-loopback sources reaching containers; FORWARD accepts for the
//! bridge. Every rule carries a comment (`skiff:BR`, or `skiff:<container id>` for
//! ports) so cleanup and reconciliation find exactly what skiff added.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use super::error::NetworkError;
use super::ports::PortBinding;
use super::subnet::Subnet;

/// The nat chain of a bridge's published ports.
pub fn chain(bridge: &str) -> String {
    format!("SKIFF-{bridge}")
}

fn iptables(args: &[&str], doing: &str) -> Result<String, NetworkError> {
    let out = Command::new("iptables")
        .arg("-w")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| NetworkError::Tool {
            tool: "iptables",
            doing: doing.to_string(),
            why: format!("cannot run iptables: {e}"),
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(NetworkError::Tool {
            tool: "iptables",
            doing: doing.to_string(),
            why: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Feeds rules to `iptables-restore --noflush` in one go (one process for many rules).
fn restore(table: &str, lines: &[String], doing: &str) -> Result<(), NetworkError> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut input = format!("*{table}\n");
    for l in lines {
        input.push_str(l);
        input.push('\n');
    }
    input.push_str("COMMIT\n");
    let mut cmd = Command::new("iptables-restore");
    cmd.args(["-w", "--noflush"]);
    super::tool::run_with_input(cmd, &input, "iptables-restore", doing)
}

/// A rule: (table, chain, the arguments after the chain name).
type Rule = (&'static str, &'static str, Vec<String>);

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// `head`, the comment tagging the rule as skiff's for `bridge`, then `tail`.
fn tagged(bridge: &str, head: &[&str], tail: &[&str]) -> Vec<String> {
    let tag = format!("skiff:{bridge}");
    let mut v = args(head);
    v.extend(args(&["-m", "comment", "--comment", &tag]));
    v.extend(args(tail));
    v
}

/// The filter INPUT rule dropping what arrives on the bridge for 127.0.0.0/8:
/// `route_localnet` (needed for ports published on 127.0.0.1) would otherwise let a
/// container send packets to 127.0.0.1 through the gateway and reach host
/// services bound to loopback (CVE-2020-8558); replies of DNAT-ed flows pass.
fn loopback_guard(bridge: &str) -> Rule {
    (
        "filter",
        "INPUT",
        tagged(
            bridge,
            &["-i", bridge, "-d", "127.0.0.0/8", "!", "-s", "127.0.0.0/8"],
            &[
                "-m",
                "conntrack",
                "!",
                "--ctstate",
                "RELATED,ESTABLISHED,DNAT",
                "-j",
                "DROP",
            ],
        ),
    )
}

/// The nat rules of a bridge, and its guard in filter INPUT.
fn base_rules(bridge: &str, subnet: &Subnet) -> Vec<Rule> {
    let jump = chain(bridge);
    let subnet = subnet.to_string();
    vec![
        (
            "nat",
            "PREROUTING",
            tagged(
                bridge,
                &["-m", "addrtype", "--dst-type", "LOCAL"],
                &["-j", &jump],
            ),
        ),
        (
            "nat",
            "OUTPUT",
            tagged(
                bridge,
                &["-m", "addrtype", "--dst-type", "LOCAL"],
                &["-j", &jump],
            ),
        ),
        (
            "nat",
            "POSTROUTING",
            tagged(
                bridge,
                &["-s", &subnet, "!", "-o", bridge],
                &["-j", "MASQUERADE"],
            ),
        ),
        (
            "nat",
            "POSTROUTING",
            tagged(
                bridge,
                &["-s", "127.0.0.0/8", "-o", bridge],
                &["-j", "MASQUERADE"],
            ),
        ),
        loopback_guard(bridge),
    ]
}

/// Whether a bridge's INPUT guard against packets to 127.0.0.0/8 is in place (a bridge
/// set up by an earlier version has not got it).
pub fn has_loopback_guard(bridge: &str) -> bool {
    let (table, ch, rule) = loopback_guard(bridge);
    has_rule(table, ch, &rule)
}

/// The FORWARD rules that must stay above every skiff bridge's outbound accept, in
/// order: replies and published ports (DNAT) in, traffic within the bridge, and
/// nothing else (another bridge, a LAN host routing the subnet).
fn forward_inbound(bridge: &str) -> Vec<Vec<String>> {
    vec![
        tagged(
            bridge,
            &[
                "-o",
                bridge,
                "-m",
                "conntrack",
                "--ctstate",
                "RELATED,ESTABLISHED,DNAT",
            ],
            &["-j", "ACCEPT"],
        ),
        tagged(bridge, &["-i", bridge, "-o", bridge], &["-j", "ACCEPT"]),
        tagged(bridge, &["-o", bridge], &["-j", "DROP"]),
    ]
}

/// The FORWARD rule letting a bridge's containers out; it sits below every skiff
/// bridge's inbound rules, so traffic to another skiff bridge meets that bridge's DROP.
fn forward_outbound(bridge: &str) -> Vec<String> {
    tagged(bridge, &["-i", bridge], &["-j", "ACCEPT"])
}

/// Rules of earlier versions, removed when found.
fn legacy_rules(bridge: &str) -> Vec<Rule> {
    vec![(
        "filter",
        "FORWARD",
        tagged(bridge, &["-o", bridge], &["-j", "ACCEPT"]),
    )]
}

fn has_rule(table: &str, ch: &str, rule: &[String]) -> bool {
    let mut check = vec!["-t", table, "-C", ch];
    check.extend(rule.iter().map(String::as_str));
    iptables(&check, "checking a rule").is_ok()
}

fn delete_rule(table: &str, ch: &str, rule: &[String]) {
    let mut del = vec!["-t", table, "-D", ch];
    del.extend(rule.iter().map(String::as_str));
    while iptables(&del, "deleting a rule").is_ok() {}
}

fn insert_rule(
    table: &str,
    ch: &str,
    pos: Option<usize>,
    rule: &[String],
    bridge: &str,
) -> Result<(), NetworkError> {
    let pos = pos.map(|p| p.to_string());
    let mut add = vec!["-t", table];
    match &pos {
        Some(p) => add.extend(["-I", ch, p.as_str()]),
        None => add.extend(["-A", ch]),
    }
    add.extend(rule.iter().map(String::as_str));
    iptables(&add, &format!("adding a {table} {ch} rule for {bridge}")).map(|_| ())
}

/// The position just below the last inbound rule of any skiff bridge in FORWARD (1
/// when there is none): where outbound accepts go.
fn below_inbound_rules() -> Result<usize, NetworkError> {
    let listing = iptables(&["-t", "filter", "-S", "FORWARD"], "listing FORWARD")?;
    let last = listing
        .lines()
        .filter(|l| l.starts_with("-A "))
        .enumerate()
        .filter(|(_, l)| l.contains("skiff:") && l.contains(" -o "))
        .map(|(i, _)| i + 1)
        .last()
        .unwrap_or(0);
    Ok(last + 1)
}

/// FORWARD for a bridge: its inbound rules at the top (all re-inserted together when
/// one is missing, to keep their order), its outbound accept below every skiff
/// bridge's inbound rules.
fn ensure_forward(bridge: &str) -> Result<(), NetworkError> {
    for (table, ch, rule) in legacy_rules(bridge) {
        delete_rule(table, ch, &rule);
    }
    let inbound = forward_inbound(bridge);
    if !inbound.iter().all(|r| has_rule("filter", "FORWARD", r)) {
        for r in &inbound {
            delete_rule("filter", "FORWARD", r);
        }
        for r in inbound.iter().rev() {
            insert_rule("filter", "FORWARD", Some(1), r, bridge)?;
        }
    }
    let out = forward_outbound(bridge);
    if !has_rule("filter", "FORWARD", &out) {
        insert_rule(
            "filter",
            "FORWARD",
            Some(below_inbound_rules()?),
            &out,
            bridge,
        )?;
    }
    Ok(())
}

/// Sets up a network's chain and rules; each rule is added only when missing, so this
/// is safe to repeat (reconciliation does).
pub fn ensure_network(bridge: &str, subnet: &Subnet) -> Result<(), NetworkError> {
    let jump = chain(bridge);
    if iptables(&["-t", "nat", "-S", &jump], "listing").is_err() {
        if let Err(e) = iptables(
            &["-t", "nat", "-N", &jump],
            &format!("creating chain {jump}"),
        ) {
            // Another process may have created it meanwhile.
            iptables(&["-t", "nat", "-S", &jump], "listing").map_err(|_| e)?;
        }
    }
    for (table, ch, rule) in base_rules(bridge, subnet) {
        if has_rule(table, ch, &rule) {
            continue;
        }
        let pos = (table == "filter").then_some(1);
        insert_rule(table, ch, pos, &rule, bridge)?;
    }
    ensure_forward(bridge)?;
    // Lets DNAT-ed packets from 127.0.0.1 be routed to the bridge (the INPUT guard
    // above keeps containers from using it to reach the host's loopback).
    let localnet = format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet");
    std::fs::write(&localnet, "1").map_err(|e| NetworkError::io("writing", localnet, e))?;
    Ok(())
}

/// Removes a network's rules and chain; missing ones are fine.
pub fn remove_network(bridge: &str, subnet: &Subnet) {
    for (table, ch, rule) in base_rules(bridge, subnet)
        .into_iter()
        .chain(legacy_rules(bridge))
        .chain(
            forward_inbound(bridge)
                .into_iter()
                .chain([forward_outbound(bridge)])
                .map(|r| ("filter", "FORWARD", r)),
        )
    {
        delete_rule(table, ch, &rule);
    }
    let jump = chain(bridge);
    let _ = iptables(&["-t", "nat", "-F", &jump], "flushing");
    let _ = iptables(&["-t", "nat", "-X", &jump], "deleting chain");
}

fn port_rule(bridge: &str, container: &str, ip: Ipv4Addr, b: &PortBinding) -> String {
    let dst = if b.host_ip.is_unspecified() {
        String::new()
    } else {
        format!("-d {}/32 ", b.host_ip)
    };
    format!(
        "{chain} {dst}-p {proto} -m {proto} --dport {hp} -m comment --comment skiff:{container} -j DNAT --to-destination {ip}:{cp}",
        chain = chain(bridge),
        proto = b.proto.as_str(),
        hp = b.host_port,
        cp = b.container_port,
    )
}

/// Adds DNAT rules publishing `bindings` of container `container` (at `ip`).
pub fn add_ports(
    bridge: &str,
    container: &str,
    ip: Ipv4Addr,
    bindings: &[PortBinding],
) -> Result<(), NetworkError> {
    let lines: Vec<String> = bindings
        .iter()
        .map(|b| format!("-A {}", port_rule(bridge, container, ip, b)))
        .collect();
    restore(
        "nat",
        &lines,
        &format!("publishing ports of container {container}"),
    )
}

/// Containers that have port rules in a bridge's chain.
pub fn port_owners(bridge: &str) -> Vec<String> {
    let Ok(rules) = iptables(&["-t", "nat", "-S", &chain(bridge)], "listing") else {
        return Vec::new();
    };
    let mut owners: Vec<String> = rules
        .lines()
        .filter_map(|l| l.split("--comment skiff:").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(|s| s.trim_matches('"').to_string())
        .collect();
    owners.sort();
    owners.dedup();
    owners
}

/// Removes every port rule of container `container` from a bridge's chain.
pub fn remove_ports(bridge: &str, container: &str) -> Result<(), NetworkError> {
    let Ok(rules) = iptables(&["-t", "nat", "-S", &chain(bridge)], "listing") else {
        return Ok(());
    };
    let tag = format!("skiff:{container}");
    let lines: Vec<String> = rules
        .lines()
        .filter(|l| l.split_whitespace().any(|w| w.trim_matches('"') == tag))
        .filter_map(|l| l.strip_prefix("-A "))
        .map(|rule| format!("-D {rule}"))
        .collect();
    restore(
        "nat",
        &lines,
        &format!("removing published ports of container {container}"),
    )
}

/// Turns on IPv4 forwarding, so containers reach beyond the host through NAT; a host
/// that forbids it (read-only /proc/sys) keeps containers host-local. When skiff is
/// the one turning it on (it was 0), the FORWARD policy becomes DROP, as Docker does,
/// so the host does not start routing between its other interfaces; a host that
/// already forwarded keeps its policy.
pub fn enable_forwarding() {
    let p = "/proc/sys/net/ipv4/ip_forward";
    if std::fs::read_to_string(p)
        .map(|v| v.trim() == "1")
        .unwrap_or(false)
    {
        return;
    }
    if let Err(e) = std::fs::write(p, "1") {
        tracing::warn!(error = %e, "cannot enable IPv4 forwarding: containers stay host-local");
        return;
    }
    if let Err(e) = iptables(
        &["-t", "filter", "-P", "FORWARD", "DROP"],
        "setting the FORWARD policy to DROP",
    ) {
        tracing::warn!(error = %e, "IPv4 forwarding enabled but the FORWARD policy stays");
    }
}
