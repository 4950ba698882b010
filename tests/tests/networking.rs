//! Container networking end to end: the default bridge and user networks (traffic
//! between containers with busybox `httpd`/`wget`/`nc`, names through `/etc/hosts` and
//! the embedded DNS server), published ports answering on 127.0.0.1, `none`, `host`
//! and `container:` modes, bad input refused without side effects, cleanup after `rm`
//! and after a skiffd kill -9 and restart, the stock docker CLI's `network`
//! commands and `run -p` through skiffd, and isolation: user networks from each other,
//! the host's loopback services from containers.
//!
//! Every test uses its own bridge name and subnets (10.241.N.0/24 and 10.242.N.0/24), so
//! tests run in parallel beside other instances. Traffic only goes to 127.0.0.1 and to
//! the containers the test created; no test needs outbound access.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{skiff_bin, SkiffCli};
use skiff_daemon::network::{firewall, link, Subnet};
use skiff_tests::{fixtures, Registry};

/// One isolated skiff instance with its own default bridge and network pool. Dropping
/// it removes its containers, its networks, its bridges and their rules.
struct NetTest {
    _reg: Registry,
    s: SkiffCli,
    bridge: String,
    subnet: String,
    pool: String,
}

impl NetTest {
    fn new(n: u8) -> NetTest {
        let reg = Registry::start().unwrap();
        fixtures::push_busybox_as(&reg, "library/alpine", "latest").unwrap();
        let s = SkiffCli::new(Some(&reg));
        let t = NetTest {
            _reg: reg,
            s,
            bridge: format!("sktest{n}"),
            subnet: format!("10.241.{n}.0/24"),
            pool: format!("10.242.{n}.0/24"),
        };
        t.ok(&["pull", "-q", "alpine"]);
        t
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.s.cmd(args);
        c.env("SKIFF_BRIDGE_NAME", &self.bridge)
            .env("SKIFF_BRIDGE_SUBNET", &self.subnet)
            .env("SKIFF_NETWORK_POOL", &self.pool);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run skiff")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "skiff {args:?} failed ({:?}): {}{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Runs and requires failure; returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            !o.status.success(),
            "skiff {args:?} should fail: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    fn inspect(&self, name: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["inspect", name])).unwrap();
        v[0].clone()
    }

    fn id_of(&self, name: &str) -> String {
        self.inspect(name)["Id"].as_str().unwrap().to_string()
    }

    fn ip_of(&self, name: &str) -> String {
        self.inspect(name)["NetworkSettings"]["IPAddress"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn records(&self) -> Vec<serde_json::Value> {
        network_records(&self.s.root)
    }
}

fn network_records(root: &Path) -> Vec<serde_json::Value> {
    std::fs::read_dir(root.join("networks"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .filter_map(|e| std::fs::read(e.path()).ok())
                .filter_map(|b| serde_json::from_slice(&b).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Removes the bridges and rules of every network of a data root (after its
/// containers are gone): the default bridge is never removed by `network rm`.
fn remove_networks(root: &Path) {
    for n in network_records(root) {
        let (Some(bridge), Some(subnet)) = (n["bridge"].as_str(), n["subnet"].as_str()) else {
            continue;
        };
        if let Ok(subnet) = subnet.parse::<Subnet>() {
            firewall::remove_network(bridge, &subnet);
        }
        let _ = link::delete(bridge);
    }
}

impl Drop for NetTest {
    fn drop(&mut self) {
        let ids = self.run(&["ps", "-aq", "--no-trunc"]);
        for id in String::from_utf8_lossy(&ids.stdout).lines() {
            let _ = self.run(&["rm", "-f", id]);
        }
        remove_networks(&self.s.root);
    }
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A port nobody on the host uses right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` over HTTP/1.0 to `addr`, retried for a few seconds while the server
/// comes up; returns the whole response.
fn http_get(addr: &str, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut c = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2))?;
            c.set_read_timeout(Some(Duration::from_secs(3)))?;
            write!(c, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n")?;
            let mut s = String::new();
            c.read_to_string(&mut s)?;
            Ok(s)
        })();
        match attempt {
            Ok(s) if s.starts_with("HTTP/") => return s,
            other => {
                assert!(Instant::now() < deadline, "GET {addr}{path}: {other:?}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Lines of `iptables -t nat -S` mentioning `needle`.
fn nat_rules(needle: &str) -> Vec<String> {
    let o = Command::new("iptables")
        .args(["-w", "-t", "nat", "-S"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

fn host_link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Waits until `cond` holds (kernel cleanup of a namespace's links is asynchronous).
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The veth host end a container holds on a network, from the records.
fn veth_of(root: &Path, id: &str) -> Vec<String> {
    network_records(root)
        .iter()
        .filter_map(|n| n["members"][id]["veth"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn default_bridge_connects_containers_and_publishes_ports() {
    let t = NetTest::new(1);
    let (p1, p2) = (free_port(), free_port());
    t.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("127.0.0.1:{p1}:80"),
        "-p",
        &format!("{p2}:80"),
        "alpine",
        "sh",
        "-c",
        "mkdir /www && echo hello-web > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    let ip = t.ip_of("web");
    assert!(ip.starts_with("10.241.1."), "{ip}");
    let id = t.id_of("web");

    // Container to container over the bridge.
    let o = t.run(&["run", "--rm", "alpine", "sh", "-c",
        &format!("for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://{ip}/ && exit 0; sleep 0.3; done; exit 1")]);
    assert_eq!(
        out(&o),
        "hello-web\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The client had its own address, default route and files.
    let o = t.ok(&[
        "run",
        "--rm",
        "alpine",
        "sh",
        "-c",
        "ip route; cat /etc/hosts; hostname",
    ]);
    assert!(o.contains("default via 10.241.1.1 dev eth0"), "{o}");
    let hostname = o.lines().last().unwrap();
    assert!(
        o.contains("10.241.1.") && o.contains(&format!("\t{hostname}")),
        "{o}"
    );

    // Published ports answer from the host on 127.0.0.1 (both the 127.0.0.1-bound
    // and the all-addresses one).
    assert!(http_get(&format!("127.0.0.1:{p1}"), "/").contains("hello-web"));
    assert!(http_get(&format!("127.0.0.1:{p2}"), "/").contains("hello-web"));
    let ports = t.ok(&["port", "web"]);
    assert!(
        ports.contains(&format!("80/tcp -> 127.0.0.1:{p1}")),
        "{ports}"
    );
    assert!(
        ports.contains(&format!("80/tcp -> 0.0.0.0:{p2}")),
        "{ports}"
    );
    assert_eq!(t.ok(&["port", "web", "80/tcp"]).lines().count(), 2);
    let ps = t.ok(&["ps"]);
    assert!(
        ps.contains(&format!("127.0.0.1:{p1}->80/tcp, 0.0.0.0:{p2}->80/tcp")),
        "{ps}"
    );

    // A random host port (-p containerPort).
    t.ok(&[
        "run",
        "-d",
        "--name",
        "rnd",
        "-p",
        "80",
        "alpine",
        "sh",
        "-c",
        "mkdir /w && echo rnd > /w/index.html && exec httpd -f -p 80 -h /w",
    ]);
    let rnd = t.ok(&["port", "rnd", "80"]);
    let rnd_port = rnd.trim().rsplit(':').next().unwrap().to_string();
    assert!(http_get(&format!("127.0.0.1:{rnd_port}"), "/").contains("rnd"));

    // -P with --expose.
    t.ok(&[
        "run",
        "-d",
        "--name",
        "pall",
        "-P",
        "--expose",
        "80",
        "alpine",
        "sh",
        "-c",
        "mkdir /w && echo all > /w/index.html && exec httpd -f -p 80 -h /w",
    ]);
    let pall = t.ok(&["port", "pall"]);
    let pall_port = pall.trim().rsplit(':').next().unwrap().to_string();
    assert!(pall.starts_with("80/tcp -> 0.0.0.0:"), "{pall}");
    assert!(http_get(&format!("127.0.0.1:{pall_port}"), "/").contains("all"));

    // Bad input: a clear error, nothing changes.
    let rules_before = nat_rules("SKIFF-sktest1").len();
    let containers_before = t.ok(&["ps", "-aq"]).lines().count();
    let e = t.fails(&[
        "run",
        "-d",
        "--name",
        "clash",
        "-p",
        &format!("{p2}:80"),
        "alpine",
        "sleep",
        "30",
    ]);
    assert!(e.contains("already allocated by container web"), "{e}");
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let held_port = held.local_addr().unwrap().port();
    let e = t.fails(&[
        "run",
        "-d",
        "-p",
        &format!("127.0.0.1:{held_port}:80"),
        "alpine",
        "sleep",
        "30",
    ]);
    assert!(e.contains("the host cannot bind it"), "{e}");
    drop(held);
    assert_eq!(nat_rules("SKIFF-sktest1").len(), rules_before);
    for bad in ["99999:80", "80:abc", "1:2:3:4", "80/sctp", "8000-8001:80"] {
        let e = t.fails(&["run", "-d", "-p", bad, "alpine", "true"]);
        assert!(e.contains("invalid port specification"), "{bad}: {e}");
    }
    let e = t.fails(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-p",
        "80",
        "alpine",
        "true",
    ]);
    assert!(e.contains("conflicting options"), "{e}");
    // The two failed starts left created containers (as Docker does); nothing else.
    assert_eq!(t.ok(&["ps", "-aq"]).lines().count(), containers_before + 2);

    // rm removes everything the container held.
    let veths = veth_of(&t.s.root, &id);
    assert_eq!(veths.len(), 1);
    assert!(host_link_exists(&veths[0]));
    assert!(!nat_rules(&id).is_empty());
    t.ok(&["rm", "-f", "web"]);
    eventually("veth gone", || !host_link_exists(&veths[0]));
    assert!(nat_rules(&id).is_empty(), "{:?}", nat_rules(&id));
    assert!(!t.s.run_root.join("netns").join(&id).exists());
    assert!(t.records().iter().all(|n| n["members"].get(&id).is_none()));
    assert!(TcpStream::connect(format!("127.0.0.1:{p1}")).is_err());
}

#[test]
fn user_networks_resolve_names_and_guard_their_state() {
    let t = NetTest::new(2);
    // Bad input first: nothing may be created by it.
    let e = t.fails(&["network", "create", "--subnet", "10.241.2.0/33", "n"]);
    assert!(e.contains("invalid subnet"), "{e}");
    let e = t.fails(&["network", "create", "--subnet", "banana", "n"]);
    assert!(e.contains("invalid subnet"), "{e}");
    let e = t.fails(&[
        "network",
        "create",
        "--subnet",
        "10.241.202.0/24",
        "--gateway",
        "10.9.9.9",
        "n",
    ]);
    assert!(e.contains("--gateway"), "{e}");
    let e = t.fails(&["network", "create", "host"]);
    assert!(e.contains("pre-defined"), "{e}");
    let e = t.fails(&["run", "--rm", "--network", "nope", "alpine", "true"]);
    assert!(e.contains("network nope not found"), "{e}");
    assert!(t.records().iter().all(|n| n["name"] != "n"));

    let net_id = t.ok(&["network", "create", "--subnet", "10.241.102.0/24", "front"]);
    let net_id = net_id.trim();
    let e = t.fails(&[
        "network",
        "create",
        "--subnet",
        "10.241.102.128/25",
        "other",
    ]);
    assert!(e.contains("overlaps with network front"), "{e}");
    let e = t.fails(&["network", "create", "--subnet", "10.241.2.0/24", "other"]);
    assert!(e.contains("overlaps with network bridge"), "{e}");
    let e = t.fails(&["network", "create", "front"]);
    assert!(e.contains("already exists"), "{e}");
    let bridge = format!("sk-{}", &net_id[..10]);
    assert!(host_link_exists(&bridge));
    let ls = t.ok(&["network", "ls"]);
    for n in ["bridge", "front", "host", "none"] {
        assert!(ls.contains(n), "{ls}");
    }

    t.ok(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "front",
        "--network-alias",
        "api",
        "alpine",
        "sh",
        "-c",
        "mkdir /w && echo hi > /w/i && exec httpd -f -p 8080 -h /w",
    ]);
    t.ok(&[
        "run",
        "-d",
        "--name",
        "ncs",
        "--network",
        "front",
        "alpine",
        "sh",
        "-c",
        "while true; do echo via-nc | nc -l -p 5000; done",
    ]);
    assert!(t.ip_of("srv").starts_with("10.241.102."));
    // Names and aliases resolve without a daemon, through /etc/hosts.
    let o = t.run(&["run", "--rm", "--network", "front", "alpine", "sh", "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://srv:8080/i && wget -qO- http://api:8080/i && exit 0; sleep 0.3; done; exit 1"]);
    assert_eq!(
        out(&o),
        "hi\nhi\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = t.run(&["run", "--rm", "--network", "front", "alpine", "sh", "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10; do r=$(nc ncs 5000 </dev/null) && [ -n \"$r\" ] && echo $r && exit 0; sleep 0.3; done; exit 1"]);
    assert_eq!(
        out(&o),
        "via-nc\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A rename follows into DNS and /etc/hosts.
    t.ok(&["rename", "ncs", "ncserver"]);
    let o = t.run(&[
        "run",
        "--rm",
        "--network",
        "front",
        "alpine",
        "grep",
        "-c",
        "ncserver",
        "/etc/hosts",
    ]);
    assert_eq!(out(&o).trim(), "1");
    // Not on the default bridge.
    let o = t.run(&["run", "--rm", "alpine", "grep", "-c", "srv", "/etc/hosts"]);
    assert_eq!(out(&o).trim(), "0");

    let e = t.fails(&["network", "rm", "front"]);
    assert!(e.contains("active endpoints"), "{e}");

    // connect / disconnect a running container of the default bridge.
    t.ok(&["run", "-d", "--name", "roamer", "alpine", "sleep", "600"]);
    t.ok(&[
        "network", "connect", "--alias", "wanderer", "front", "roamer",
    ]);
    let addrs = t.ok(&["exec", "roamer", "ip", "-4", "-o", "addr"]);
    assert!(
        addrs.contains("eth1") && addrs.contains("10.241.102."),
        "{addrs}"
    );
    let o = t.run(&[
        "run",
        "--rm",
        "--network",
        "front",
        "alpine",
        "ping",
        "-c1",
        "-W2",
        "wanderer",
    ]);
    assert!(o.status.success(), "{}", out(&o));
    let e = t.fails(&["network", "connect", "front", "roamer"]);
    assert!(e.contains("already exists"), "{e}");
    t.ok(&["network", "disconnect", "front", "roamer"]);
    let addrs = t.ok(&["exec", "roamer", "ip", "-4", "-o", "addr"]);
    assert!(!addrs.contains("10.241.102."), "{addrs}");

    let inspect: serde_json::Value =
        serde_json::from_str(&t.ok(&["network", "inspect", "front"])).unwrap();
    assert_eq!(inspect[0]["IPAM"]["Config"][0]["Subnet"], "10.241.102.0/24");
    assert_eq!(inspect[0]["Containers"].as_object().unwrap().len(), 2);

    t.ok(&["rm", "-f", "srv", "ncserver"]);
    t.ok(&["network", "rm", "front"]);
    assert!(!host_link_exists(&bridge));
    assert!(nat_rules(&format!("SKIFF-{bridge}")).is_empty());
    t.ok(&["network", "create", "unused"]);
    let pruned = t.ok(&["network", "prune", "-f"]);
    assert!(pruned.contains("unused"), "{pruned}");
    assert!(t.records().iter().all(|n| n["name"] != "unused"));
}

#[test]
fn none_host_and_container_modes() {
    let t = NetTest::new(3);
    assert_eq!(
        t.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "alpine",
            "ls",
            "/sys/class/net"
        ]),
        "lo\n"
    );
    t.ok(&["run", "-d", "--name", "base", "alpine", "sleep", "600"]);
    let ip = t.ip_of("base");
    // The host's interfaces, among them this test's bridge.
    let host_view = t.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "alpine",
        "ls",
        "/sys/class/net",
    ]);
    assert!(host_view.lines().any(|l| l == "sktest3"), "{host_view}");
    // Sharing another container's namespace: same address.
    let shared = t.ok(&[
        "run",
        "--rm",
        "--network",
        "container:base",
        "alpine",
        "ip",
        "-4",
        "-o",
        "addr",
    ]);
    assert!(shared.contains(&format!("{ip}/24")), "{shared}");
    t.ok(&["create", "--name", "sleeper", "alpine", "true"]);
    let e = t.fails(&[
        "run",
        "--rm",
        "--network",
        "container:sleeper",
        "alpine",
        "true",
    ]);
    assert!(e.contains("not running"), "{e}");
    let e = t.fails(&[
        "run",
        "--rm",
        "--network",
        "container:ghost",
        "alpine",
        "true",
    ]);
    assert!(e.contains("No such container"), "{e}");
}

/// A skiffd for one NetTest instance.
struct Skiffd {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
    args: Vec<String>,
}

impl Skiffd {
    fn start(t: &NetTest, extra: &[String]) -> Skiffd {
        let dir = t.s.dir.path();
        let socket = dir.join("docker.sock");
        let log = dir.join("skiffd.log");
        let args = vec![
            "--config".to_string(),
            "/dev/null".into(),
            "--data-root".into(),
            t.s.root.display().to_string(),
            "--run-root".into(),
            t.s.run_root.display().to_string(),
            "--docker-socket".into(),
            socket.display().to_string(),
            "--bridge-name".into(),
            t.bridge.clone(),
            "--bridge-subnet".into(),
            t.subnet.clone(),
            "--network-pool".into(),
            t.pool.clone(),
            "--ip-forward".into(),
            "false".into(),
        ];
        let args = [args, extra.to_vec()].concat();
        let mut d = Skiffd {
            child: Self::spawn(&args, &log),
            socket,
            log,
            args,
        };
        d.wait_ready();
        d
    }

    fn spawn(args: &[String], log: &Path) -> Child {
        Command::new(skiff_bin().with_file_name("skiffd"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .unwrap(),
            )
            .spawn()
            .expect("start skiffd")
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&self.socket).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("skiffd exited ({status}):\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "skiffd not ready:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, then a fresh skiffd on the same roots.
    fn kill9_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(&self.args, &self.log);
        self.wait_ready();
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", self.socket.with_file_name("docker-config"))
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::null())
            .output()
            .expect("docker CLI")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed ({:?}): {}{}\n{}",
            o.status.code(),
            out(&o),
            String::from_utf8_lossy(&o.stderr),
            self.log_text()
        );
        out(&o)
    }

    fn fails(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            !o.status.success(),
            "docker {args:?} should fail: {}",
            out(&o)
        );
        String::from_utf8_lossy(&o.stderr).into_owned()
    }
}

impl Drop for Skiffd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nameservers(resolv: &str) -> Vec<&str> {
    resolv
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver "))
        .map(str::trim)
        .collect()
}

/// A DNS server on 127.0.0.1 standing in for the host's resolvers: it answers every A
/// query with 10.241.199.9 (an address nobody uses: only the answer is checked).
struct FakeUpstream {
    addr: String,
}

impl FakeUpstream {
    fn start() -> FakeUpstream {
        use skiff_daemon::network::dns::{answer, parse_question};
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((n, peer)) = sock.recv_from(&mut buf) {
                let query = &buf[..n];
                if let Some(q) = parse_question(query) {
                    let ips = if q.qtype == 1 {
                        vec!["10.241.199.9".parse().unwrap()]
                    } else {
                        Vec::new()
                    };
                    let _ = sock.send_to(&answer(query, &q, &ips), peer);
                }
            }
        });
        FakeUpstream { addr }
    }
}

fn parent_pid(pid: u64) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = stat.rsplit(')').next().unwrap();
    after.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn docker_cli_networks_ports_dns_and_recovery_after_kill9() {
    let t = NetTest::new(4);
    let upstream = FakeUpstream::start();
    let mut d = Skiffd::start(&t, &["--dns-upstream".into(), upstream.addr.clone()]);
    let id = d.ok(&["network", "create", "--subnet", "10.241.104.0/24", "dn"]);
    let bridge = format!("sk-{}", &id.trim()[..10]);
    let e = d.fails(&["network", "create", "--subnet", "10.241.104.0/25", "dn2"]);
    assert!(e.contains("overlaps"), "{e}");
    let e = d.fails(&["network", "create", "--subnet", "10.241.999.0/24", "dn3"]);
    assert!(e.contains("invalid subnet"), "{e}");
    let ls = d.ok(&["network", "ls"]);
    for n in ["bridge", "dn", "host", "none"] {
        assert!(ls.contains(n), "{ls}");
    }
    let inspect: serde_json::Value =
        serde_json::from_str(&d.ok(&["network", "inspect", "dn"])).unwrap();
    assert_eq!(inspect[0]["IPAM"]["Config"][0]["Gateway"], "10.241.104.1");
    let e = d.fails(&["network", "inspect", "nope"]);
    assert!(e.contains("not found"), "{e}");

    let (p1, p2) = (free_port(), free_port());
    d.ok(&[
        "run",
        "-d",
        "--name",
        "dweb",
        "--network",
        "dn",
        "--network-alias",
        "webalias",
        "-p",
        &format!("127.0.0.1:{p1}:80"),
        "alpine",
        "sh",
        "-c",
        "mkdir /w && echo docker-web > /w/index.html && exec httpd -f -p 80 -h /w",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "bweb",
        "-p",
        &format!("{p2}:80"),
        "alpine",
        "sh",
        "-c",
        "mkdir /w && echo bridge-web > /w/index.html && exec httpd -f -p 80 -h /w",
    ]);
    assert_eq!(
        d.ok(&["port", "dweb"]).trim(),
        format!("80/tcp -> 127.0.0.1:{p1}")
    );
    let ps = d.ok(&["ps"]);
    assert!(ps.contains(&format!("127.0.0.1:{p1}->80/tcp")), "{ps}");
    assert!(http_get(&format!("127.0.0.1:{p1}"), "/").contains("docker-web"));
    assert!(http_get(&format!("127.0.0.1:{p2}"), "/").contains("bridge-web"));
    let e = d.fails(&[
        "run",
        "-d",
        "-p",
        &format!("127.0.0.1:{p1}:80"),
        "alpine",
        "true",
    ]);
    assert!(e.contains("already allocated"), "{e}");
    // -P publishes --expose'd ports on random host ports.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "pall",
        "-P",
        "--expose",
        "80",
        "alpine",
        "sh",
        "-c",
        "mkdir /w && echo publish-all > /w/index.html && exec httpd -f -p 80 -h /w",
    ]);
    let pall = d.ok(&["port", "pall", "80/tcp"]);
    let pall_port = pall
        .lines()
        .next()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    assert!(http_get(&format!("127.0.0.1:{pall_port}"), "/").contains("publish-all"));
    d.ok(&["rm", "-f", "pall"]);

    // The embedded DNS server answers for the network's containers.
    let dweb_ip = t.ip_of("dweb");
    // (Checked first: a query must never leave for the host's resolvers.)
    let resolv = d.ok(&[
        "run",
        "--rm",
        "--network",
        "dn",
        "alpine",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert_eq!(nameservers(&resolv), ["10.241.104.1"], "{resolv}");
    let o = d.ok(&[
        "run",
        "--rm",
        "--network",
        "dn",
        "alpine",
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10; do nslookup webalias && exit 0; sleep 0.3; done; exit 1",
    ]);
    assert!(o.contains(&format!("Address: {dweb_ip}")), "{o}");
    let o = d.ok(&[
        "run",
        "--rm",
        "--network",
        "dn",
        "alpine",
        "wget",
        "-qO-",
        "http://dweb/",
    ]);
    assert_eq!(o, "docker-web\n");
    let e = d.fails(&["network", "rm", "dn"]);
    assert!(e.contains("active endpoints"), "{e}");
    // Other names go to the upstream resolvers (here a stand-in on 127.0.0.1).
    let o = d.ok(&[
        "run",
        "--rm",
        "--network",
        "dn",
        "alpine",
        "sh",
        "-c",
        "nslookup elsewhere.example; true",
    ]);
    assert!(o.contains("Address: 10.241.199.9"), "{o}");

    // docker network connect / disconnect, with an alias the DNS server then knows.
    d.ok(&["network", "connect", "--alias", "extra", "dn", "bweb"]);
    let o = d.ok(&[
        "run",
        "--rm",
        "--network",
        "dn",
        "alpine",
        "wget",
        "-qO-",
        "http://extra/",
    ]);
    assert_eq!(o, "bridge-web\n");
    let inspect: serde_json::Value = serde_json::from_str(&d.ok(&["inspect", "bweb"])).unwrap();
    let extra_ip = inspect[0]["NetworkSettings"]["Networks"]["dn"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(extra_ip.starts_with("10.241.104."), "{inspect}");
    let o = d.ok(&[
        "run",
        "--rm",
        "--network",
        "dn",
        "alpine",
        "nslookup",
        "extra",
    ]);
    assert!(o.contains(&format!("Address: {extra_ip}")), "{o}");
    d.ok(&["network", "disconnect", "dn", "bweb"]);
    let inspect: serde_json::Value = serde_json::from_str(&d.ok(&["inspect", "bweb"])).unwrap();
    assert!(
        inspect[0]["NetworkSettings"]["Networks"]["dn"].is_null(),
        "{inspect}"
    );

    // A crash: skiffd is killed, and a container's shim and process die with nobody
    // watching. After the restart, its veth, rules, address and namespace are gone,
    // and the other containers keep their addresses and ports.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "victim",
        "--network",
        "dn",
        "-p",
        "80",
        "alpine",
        "sleep",
        "600",
    ]);
    let victim = t.id_of("victim");
    let victim_veth = veth_of(&t.s.root, &victim);
    assert_eq!(victim_veth.len(), 1);
    let pid = t.inspect("victim")["State"]["Pid"].as_u64().unwrap();
    let shim = parent_pid(pid);
    let _ = d.child.kill();
    let _ = d.child.wait();
    // SAFETY: plain kill(2) of processes this test started (the victim and its shim).
    unsafe {
        libc::kill(shim as i32, libc::SIGKILL);
        libc::kill(pid as i32, libc::SIGKILL);
    }
    d.kill9_and_restart();
    eventually("victim's veth removed", || {
        !host_link_exists(&victim_veth[0])
    });
    eventually("victim's rules removed", || nat_rules(&victim).is_empty());
    eventually("victim's namespace unpinned", || {
        !t.s.run_root.join("netns").join(&victim).exists()
    });
    let recs = t.records();
    let dn = recs.iter().find(|n| n["name"] == "dn").unwrap();
    assert!(dn["members"][&victim]["ip"].is_null(), "{dn}");
    assert_eq!(t.ip_of("dweb"), dweb_ip);
    assert!(http_get(&format!("127.0.0.1:{p1}"), "/").contains("docker-web"));
    assert!(http_get(&format!("127.0.0.1:{p2}"), "/").contains("bridge-web"));
    // DNS is served again by the new skiffd.
    let resolv = d.ok(&[
        "run",
        "--rm",
        "--network",
        "dn",
        "alpine",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert_eq!(nameservers(&resolv), ["10.241.104.1"], "{resolv}");
    let o = d.ok(&[
        "run",
        "--rm",
        "--network",
        "dn",
        "alpine",
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10; do nslookup dweb && exit 0; sleep 0.3; done; exit 1",
    ]);
    assert!(o.contains(&format!("Address: {dweb_ip}")), "{o}");

    d.ok(&["rm", "-f", "dweb", "bweb", "victim"]);
    assert!(nat_rules(&format!("--dport {p1}")).is_empty());
    d.ok(&["network", "rm", "dn"]);
    assert!(!host_link_exists(&bridge));
    let ls = d.ok(&["network", "ls"]);
    assert!(!ls.contains(" dn "), "{ls}");
    d.ok(&["network", "create", "leftover"]);
    let pruned = d.ok(&["network", "prune", "-f"]);
    assert!(pruned.contains("leftover"), "{pruned}");
}

/// A UDP socket that counts the datagrams it receives (a TCP handshake from a
/// container to 127.0.0.1 never completes, its replies are martians in the container,
/// but a datagram, or a blind TCP packet, is delivered all the same).
struct UdpProbe {
    port: u16,
    received: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl UdpProbe {
    fn start(ip: &str) -> UdpProbe {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;
        let sock = std::net::UdpSocket::bind(format!("{ip}:0")).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let port = sock.local_addr().unwrap().port();
        let received = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (received.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !s.load(Ordering::SeqCst) {
                if sock.recv_from(&mut buf).is_ok() {
                    r.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        UdpProbe {
            port,
            received,
            stop,
            thread: Some(thread),
        }
    }

    fn received(&self) -> usize {
        self.received.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for UdpProbe {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn containers_reach_neither_host_loopback_nor_other_networks() {
    let t = NetTest::new(5);

    // A container that routes 127.0.0.0/8 to its gateway (a raw socket could send
    // the same packets) must not reach a host service bound to 127.0.0.1. The same
    // datagram to the gateway's address arrives (the probe works).
    t.ok(&["run", "--rm", "alpine", "true"]);
    let loopback = UdpProbe::start("127.0.0.1");
    let gateway = UdpProbe::start("10.241.5.1");
    let o = t.run(&[
        "run",
        "--rm",
        "--cap-add",
        "NET_ADMIN",
        "alpine",
        "sh",
        "-c",
        &format!(
            "ip route del local 127.0.0.0/8 dev lo table local; \
             ip route del local 127.0.0.1 dev lo table local; \
             ip route add 127.0.0.0/8 via 10.241.5.1 dev eth0 && ip route get 127.0.0.1 && \
             for i in 1 2 3; do \
               timeout 1 tftp -g -r probe -l /tmp/p 127.0.0.1 {lp}; \
               timeout 1 tftp -g -r probe -l /tmp/p 10.241.5.1 {gp}; \
             done; echo done",
            lp = loopback.port,
            gp = gateway.port,
        ),
    ]);
    let o_text = format!("{}{}", out(&o), String::from_utf8_lossy(&o.stderr));
    assert!(o_text.contains("via 10.241.5.1"), "{o_text}");
    assert!(o_text.contains("done"), "{o_text}");
    assert!(gateway.received() > 0, "the probe sent nothing: {o_text}");
    assert_eq!(
        loopback.received(),
        0,
        "a container reached 127.0.0.1: {o_text}"
    );
    let input = Command::new("iptables")
        .args(["-w", "-S", "INPUT"])
        .output()
        .unwrap();
    let input = out(&input);
    assert!(
        input.lines().any(|l| l.contains("-i sktest5")
            && l.contains("-d 127.0.0.0/8")
            && l.contains("skiff:sktest5")
            && l.contains("-j DROP")),
        "{input}"
    );
    drop((loopback, gateway));

    // Two user networks: traffic within one works, traffic from one to the other's
    // containers is dropped, published ports answer across them and on 127.0.0.1.
    t.ok(&["network", "create", "neta"]);
    t.ok(&["network", "create", "--subnet", "10.241.105.0/24", "netb"]);
    let (p1, p2) = (free_port(), free_port());
    t.ok(&[
        "run",
        "-d",
        "--name",
        "wa",
        "--network",
        "neta",
        "-p",
        &format!("127.0.0.1:{p1}:80"),
        "-p",
        &format!("{p2}:80"),
        "alpine",
        "sh",
        "-c",
        "mkdir /w && echo web-a > /w/index.html && exec httpd -f -p 80 -h /w",
    ]);
    let wa = t.ip_of("wa");
    let get = |net: &str, url: &str| {
        t.run(&[
            "run",
            "--rm",
            "--network",
            net,
            "alpine",
            "sh",
            "-c",
            &format!("for i in 1 2 3 4 5 6 7 8 9 10; do timeout 3 wget -qO- {url} && exit 0; sleep 0.3; done; exit 1"),
        ])
    };
    let o = get("neta", &format!("http://{wa}/"));
    assert_eq!(out(&o), "web-a\n", "{}", String::from_utf8_lossy(&o.stderr));
    // (`timeout` in a shell: as PID 1, wget would ignore its SIGTERM.)
    let o = t.run(&[
        "run",
        "--rm",
        "--network",
        "netb",
        "alpine",
        "sh",
        "-c",
        &format!("timeout 3 wget -qO- http://{wa}/; echo rc=$?"),
    ]);
    let o_text = out(&o);
    assert!(
        o_text.contains("rc=") && !o_text.contains("rc=0") && !o_text.contains("web-a"),
        "netb reached a container of neta: {o_text}"
    );
    let o = get("netb", &format!("http://10.241.105.1:{p2}/"));
    assert_eq!(out(&o), "web-a\n", "{}", String::from_utf8_lossy(&o.stderr));
    assert!(http_get(&format!("127.0.0.1:{p1}"), "/").contains("web-a"));
    assert!(http_get(&format!("127.0.0.1:{p2}"), "/").contains("web-a"));
}
