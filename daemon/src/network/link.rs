//! Links and addresses through iproute2's `ip`, batched so a container's wiring costs
//! two short processes: the bridge, the veth pair between a container's namespace and
//! the bridge, and the address and default route inside.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use super::error::NetworkError;
use super::netns;

/// Whether host interface `name` exists.
pub fn exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Whether host interface `name` is a bridge.
pub fn is_bridge(name: &str) -> bool {
    Path::new("/sys/class/net")
        .join(name)
        .join("bridge")
        .exists()
}

/// Runs `ip -batch -` with `batch` on stdin.
fn ip_batch(mut cmd: Command, batch: &str, doing: String) -> Result<(), NetworkError> {
    cmd.args(["-batch", "-"]);
    super::tool::run_with_input(cmd, batch, "ip", &doing)
}

/// Creates bridge `name` with `gateway/prefix` and brings it up; an existing bridge
/// gets its address (again) and is brought up. An existing interface that is not a
/// bridge (`eth0`) is refused, never reconfigured.
pub fn ensure_bridge(name: &str, gateway: Ipv4Addr, prefix: u8) -> Result<(), NetworkError> {
    let mut batch = String::new();
    if !exists(name) {
        batch.push_str(&format!("link add {name} type bridge\n"));
    } else if !is_bridge(name) {
        return Err(NetworkError::InvalidOption {
            option: "bridge-name",
            value: name.to_string(),
            why: format!("host interface {name} exists and is not a bridge"),
        });
    }
    batch.push_str(&format!(
        "addr replace {gateway}/{prefix} dev {name}\nlink set {name} up\n"
    ));
    ip_batch(
        Command::new("ip"),
        &batch,
        format!("setting up bridge {name}"),
    )
}

/// Deletes host interface `name` (a bridge, or a veth with its peer); a missing one is
/// fine.
pub fn delete(name: &str) -> Result<(), NetworkError> {
    if !exists(name) {
        return Ok(());
    }
    ip_batch(
        Command::new("ip"),
        &format!("link del {name}\n"),
        format!("deleting interface {name}"),
    )
    .or_else(|e| if exists(name) { Err(e) } else { Ok(()) })
}

/// The MAC address skiff gives an interface with address `ip` (Docker's scheme).
pub fn mac_for(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

/// What the container end of a veth pair gets.
pub struct Wiring<'a> {
    /// The host end's name.
    pub veth: &'a str,
    /// The bridge the host end joins.
    pub bridge: &'a str,
    /// The namespace of the container end.
    pub netns: &'a Path,
    /// The container end's name (`eth0`).
    pub ifname: &'a str,
    /// Its address.
    pub ip: Ipv4Addr,
    /// The subnet's prefix length.
    pub prefix: u8,
    /// The default route, if this interface carries it.
    pub gateway: Option<Ipv4Addr>,
}

/// Creates the veth pair, puts its container end into the namespace with its address,
/// MAC and (optionally) the default route, and brings both ends and `lo` up.
pub fn wire(w: &Wiring) -> Result<(), NetworkError> {
    // A host end left over from a crash would make `link add` fail.
    delete(w.veth)?;
    let mac = mac_for(w.ip);
    ip_batch(
        Command::new("ip"),
        &format!(
            "link add {veth} type veth peer name {ifname} address {mac} netns {ns}\n\
             link set {veth} master {bridge} up\n",
            veth = w.veth,
            ifname = w.ifname,
            ns = w.netns.display(),
            bridge = w.bridge,
        ),
        format!("creating veth {} on {}", w.veth, w.bridge),
    )?;
    let mut inside = format!(
        "link set lo up\naddr add {ip}/{prefix} dev {ifname}\nlink set {ifname} up\n",
        ip = w.ip,
        prefix = w.prefix,
        ifname = w.ifname
    );
    if let Some(gw) = w.gateway {
        inside.push_str(&format!(
            "route replace default via {gw} dev {}\n",
            w.ifname
        ));
    }
    let (cmd, _ns_file) = netns::command_in(w.netns, "ip")?;
    ip_batch(
        cmd,
        &inside,
        format!("configuring {} in {}", w.ifname, w.netns.display()),
    )
    .inspect_err(|_| {
        let _ = delete(w.veth);
    })
}

/// Brings `lo` up in a namespace (for `--network none`-style namespaces).
pub fn loopback_up(ns: &Path) -> Result<(), NetworkError> {
    let (cmd, _ns_file) = netns::command_in(ns, "ip")?;
    ip_batch(
        cmd,
        "link set lo up\n",
        format!("bringing lo up in {}", ns.display()),
    )
}
