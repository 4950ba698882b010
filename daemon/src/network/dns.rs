//! The embedded DNS server skiffd runs on every user network: it listens on the
//! network's gateway address (port 53, UDP), answers A queries for the names and
//! aliases of that network's running containers only, and forwards every other query
//! to the host's resolvers. Without skiffd, containers on user networks resolve each
//! other through `/etc/hosts` entries the engine keeps up to date.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use super::files::nameservers;
use super::manager::Networks;
use super::record::NetworkRecord;

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;
/// TTL of answers about containers: short, names move when containers restart.
const TTL: u32 = 5;

/// A parsed DNS question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The queried name, lower case, without the trailing dot.
    pub name: String,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS.
    pub qclass: u16,
    /// Where the question section ends in the message.
    pub end: usize,
}

/// Parses the first question of a query (no compression occurs in questions).
pub fn parse_question(msg: &[u8]) -> Option<Question> {
    if msg.len() < 12 || u16::from_be_bytes([msg[4], msg[5]]) == 0 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = *msg.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        if len & 0xc0 != 0 {
            return None;
        }
        let label = msg.get(i..i + len)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*msg.get(i)?, *msg.get(i + 1)?]);
    let qclass = u16::from_be_bytes([*msg.get(i + 2)?, *msg.get(i + 3)?]);
    Some(Question {
        name: labels.join("."),
        qtype,
        qclass,
        end: i + 4,
    })
}

/// An answer to `query` (whose question is `q`) with the given addresses; an empty
/// list answers NOERROR without records (an AAAA query for a known name).
pub fn answer(query: &[u8], q: &Question, addrs: &[Ipv4Addr]) -> Vec<u8> {
    let mut out = Vec::with_capacity(q.end + 16 * addrs.len());
    out.extend_from_slice(&query[..2]);
    // QR, opcode 0, AA, RD copied, RA; RCODE 0.
    let rd = query[2] & 0x01;
    out.push(0x84 | rd);
    out.push(0x80);
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(addrs.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&query[12..q.end]);
    for a in addrs {
        out.extend_from_slice(&[0xc0, 12]);
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&TTL.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&a.octets());
    }
    out
}

/// A SERVFAIL reply to `query`.
fn servfail(query: &[u8], q: &Question) -> Vec<u8> {
    let mut out = answer(query, q, &[]);
    out[3] = 0x82;
    out
}

/// The addresses `name` has on network `net`: its running containers' names, aliases
/// and short IDs, bare or as `name.<network>`.
pub fn lookup(net: &NetworkRecord, name: &str) -> Option<Vec<Ipv4Addr>> {
    let suffix = format!(".{}", net.name.to_ascii_lowercase());
    let bare = name.strip_suffix(&suffix).unwrap_or(name);
    let found: Vec<Ipv4Addr> = net
        .members
        .iter()
        .filter(|(id, m)| {
            m.name.eq_ignore_ascii_case(bare)
                || m.aliases.iter().any(|a| a.eq_ignore_ascii_case(bare))
                || (bare.len() == 12 && id.starts_with(bare))
        })
        .filter_map(|(_, m)| m.ip)
        .collect();
    (!found.is_empty()).then_some(found)
}

/// Queries `upstreams` in turn; from each, only a reply that comes from that server's
/// address (the socket is connected to it) and carries the query's transaction ID is
/// taken, anything else is ignored until the server's 2 s are up.
async fn forward(query: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    for up in upstreams {
        let bind: SocketAddr = if up.is_ipv4() {
            "0.0.0.0:0".parse().ok()?
        } else {
            "[::]:0".parse().ok()?
        };
        let Ok(sock) = UdpSocket::bind(bind).await else {
            continue;
        };
        if sock.connect(up).await.is_err() || sock.send(query).await.is_err() {
            continue;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        let mut buf = vec![0u8; 4096];
        // An ICMP error (connection refused) or the deadline ends this server's turn.
        while let Ok(Ok((n, from))) =
            tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await
        {
            if from == *up && n >= 12 && buf[..2] == query[..2] && buf[2] & 0x80 != 0 {
                buf.truncate(n);
                return Some(buf);
            }
        }
    }
    None
}

fn host_upstreams() -> Vec<SocketAddr> {
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    nameservers(&resolv)
        .iter()
        .filter_map(|s| s.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// The servers unknown names go to: `configured` (`dns-upstreams`), else the host's
/// resolv.conf name servers, read at each query so a change on the host applies.
fn upstreams(configured: &[SocketAddr]) -> Vec<SocketAddr> {
    if configured.is_empty() {
        host_upstreams()
    } else {
        configured.to_vec()
    }
}

async fn handle(
    networks: &Networks,
    net_id: &str,
    query: Vec<u8>,
    configured: &[SocketAddr],
) -> Option<Vec<u8>> {
    let q = parse_question(&query)?;
    if q.qclass == CLASS_IN && matches!(q.qtype, TYPE_A | TYPE_AAAA) {
        if let Ok(net) = networks.find(net_id) {
            if let Some(addrs) = lookup(&net, &q.name) {
                let addrs = if q.qtype == TYPE_A { addrs } else { Vec::new() };
                return Some(answer(&query, &q, &addrs));
            }
        }
    }
    match forward(&query, &upstreams(configured)).await {
        Some(reply) => Some(reply),
        None => Some(servfail(&query, &q)),
    }
}

/// Queries one network's server handles at once; more are dropped (the client retries),
/// so a flood cannot make skiffd spawn tasks and bind sockets without bound.
const MAX_IN_FLIGHT: usize = 256;

async fn serve_network(
    networks: Networks,
    net_id: String,
    sock: UdpSocket,
    configured: Arc<Vec<SocketAddr>>,
) {
    let sock = Arc::new(sock);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            tracing::debug!(network = %net_id, "embedded DNS: too many queries in flight, dropping one");
            continue;
        };
        let query = buf[..n].to_vec();
        let (networks, net_id, sock) = (networks.clone(), net_id.clone(), sock.clone());
        let configured = configured.clone();
        tokio::spawn(async move {
            if let Some(reply) = handle(&networks, &net_id, query, &configured).await {
                let _ = sock.send_to(&reply, peer).await;
            }
            drop(permit);
        });
    }
}

/// The file saying which process serves DNS for this run root.
pub fn marker_path(run_root: &Path) -> PathBuf {
    run_root.join("dns.pid")
}

/// Whether a live process serves the embedded DNS for this run root (checked when a
/// container starts, to choose its resolv.conf).
pub fn is_served(run_root: &Path) -> bool {
    let Ok(pid) = std::fs::read_to_string(marker_path(run_root)) else {
        return false;
    };
    let pid = pid.trim();
    !pid.is_empty() && Path::new("/proc").join(pid).exists()
}

/// Runs the embedded DNS servers forever: every second the listeners are brought in
/// line with the user networks that exist (new networks get one, removed ones lose it).
/// Unknown names are forwarded to `upstreams` (`host:port`), or to the host's
/// resolvers when it is empty.
pub async fn run(networks: Networks, run_root: PathBuf, upstreams: Vec<SocketAddr>) {
    let upstreams = Arc::new(upstreams);
    let marker = marker_path(&run_root);
    let _ = std::fs::create_dir_all(&run_root);
    if let Err(e) = std::fs::write(&marker, std::process::id().to_string()) {
        tracing::warn!(error = %e, path = %marker.display(), "embedded DNS: cannot write marker");
    }
    let mut servers: HashMap<String, (Ipv4Addr, JoinHandle<()>)> = HashMap::new();
    loop {
        let nets = networks.list().unwrap_or_default();
        servers.retain(|id, (gw, task)| {
            let keep = nets.iter().any(|n| &n.id == id && n.gateway == *gw);
            if !keep {
                task.abort();
            }
            keep
        });
        for n in nets.iter().filter(|n| !n.is_default()) {
            if servers.contains_key(&n.id) || !super::link::exists(&n.bridge) {
                continue;
            }
            match UdpSocket::bind((n.gateway, 53)).await {
                Ok(sock) => {
                    tracing::info!(network = %n.name, address = %n.gateway, "embedded DNS listening");
                    let task = tokio::spawn(serve_network(
                        networks.clone(),
                        n.id.clone(),
                        sock,
                        upstreams.clone(),
                    ));
                    servers.insert(n.id.clone(), (n.gateway, task));
                }
                Err(e) => {
                    tracing::debug!(network = %n.name, error = %e, "embedded DNS: bind failed, retrying")
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&CLASS_IN.to_be_bytes());
        q
    }

    #[test]
    fn looks_up_only_running_members_of_its_network() {
        let subnet: crate::network::Subnet = "10.1.0.0/24".parse().unwrap();
        let mut net = NetworkRecord {
            id: "n".repeat(64),
            name: "front".into(),
            created: String::new(),
            bridge: "br".into(),
            subnet,
            gateway: subnet.default_gateway(),
            labels: Default::default(),
            members: Default::default(),
            last_allocated: None,
        };
        let mut web = crate::network::Member::new("web", vec!["api".into()]);
        web.ip = Some("10.1.0.2".parse().unwrap());
        net.members.insert("a".repeat(64), web);
        net.members.insert(
            "b".repeat(64),
            crate::network::Member::new("stopped", vec![]),
        );
        let ip: Ipv4Addr = "10.1.0.2".parse().unwrap();
        assert_eq!(lookup(&net, "web"), Some(vec![ip]));
        assert_eq!(lookup(&net, "api.front"), Some(vec![ip]));
        assert_eq!(lookup(&net, "aaaaaaaaaaaa"), Some(vec![ip]));
        assert_eq!(lookup(&net, "stopped"), None);
        assert_eq!(lookup(&net, "elsewhere"), None);
    }

    #[test]
    fn answers_a_records() {
        let msg = query("Web.example", TYPE_A);
        let q = parse_question(&msg).unwrap();
        assert_eq!(q.name, "web.example");
        let a = answer(&msg, &q, &["10.1.0.2".parse().unwrap()]);
        assert_eq!(&a[..2], &[0x12, 0x34]);
        assert_eq!(a[2] & 0x80, 0x80);
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 1);
        assert_eq!(&a[a.len() - 4..], &[10, 1, 0, 2]);
        assert!(parse_question(&msg[..14]).is_none());
        assert!(parse_question(&[0u8; 5]).is_none());
    }

    #[tokio::test]
    async fn forward_takes_only_the_upstreams_reply_with_the_query_id() {
        let upstream = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let up = upstream.local_addr().unwrap();
        let spoofer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let msg = query("example.org", TYPE_A);
        let server = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let (n, client) = upstream.recv_from(&mut buf).await.unwrap();
            let got = buf[..n].to_vec();
            let q = parse_question(&got).unwrap();
            // Another host answers first, with the right ID: ignored (connected socket).
            let mut forged = answer(&got, &q, &[Ipv4Addr::new(6, 6, 6, 6)]);
            spoofer.send_to(&forged, client).await.unwrap();
            // The upstream with a wrong ID: ignored.
            forged[0] ^= 0xff;
            upstream.send_to(&forged, client).await.unwrap();
            let good = answer(&got, &q, &[Ipv4Addr::new(1, 2, 3, 4)]);
            upstream.send_to(&good, client).await.unwrap();
        });
        let reply = forward(&msg, &[up]).await.expect("a reply");
        server.await.unwrap();
        assert_eq!(&reply[..2], &msg[..2]);
        assert_eq!(&reply[reply.len() - 4..], &[1, 2, 3, 4]);
    }
}
