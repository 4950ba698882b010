//! skiffd's optional TCP listener: TLS with client certificates required, checked with
//! the stock docker CLI (`--tlsverify`) on 127.0.0.1. A client without a certificate, or
//! with one from another CA, or speaking plain HTTP, gets nothing; skiffd refuses to
//! open TCP without TLS; the Unix socket is 0660 and can be given to a group.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{skiff_bin, SkiffCli};

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (Debian package openssl)");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A CA and a certificate it signs for `cn`, with `ext` (OpenSSL extension lines).
fn ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}-key.pem"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

fn signed(dir: &Path, ca: &str, name: &str, ext: &str) {
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}-key.pem"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-days",
            "1",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}-key.pem"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn docker(args: &[&str], config: &Path) -> Output {
    let bin: PathBuf = ["/usr/local/bin/docker", "/usr/bin/docker"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("the stock docker CLI");
    let mut child = Command::new(bin)
        .args(args)
        .env("DOCKER_CONFIG", config)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    child.wait_with_output().unwrap()
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn skiffd(s: &SkiffCli, extra: &[&str]) -> Command {
    let mut c = Command::new(skiff_bin().with_file_name("skiffd"));
    c.args(["--config", "/dev/null", "--data-root"])
        .arg(&s.root)
        .arg("--run-root")
        .arg(&s.run_root)
        .arg("--docker-socket")
        .arg(s.dir.path().join("docker.sock"))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(s.dir.path().join("skiffd.log")).unwrap());
    c
}

#[test]
fn tcp_only_with_tls_and_client_certificates() {
    let s = SkiffCli::new(None);
    let dir = s.dir.path().join("pki");
    std::fs::create_dir_all(&dir).unwrap();
    ca(&dir, "ca");
    ca(&dir, "other-ca");
    signed(
        &dir,
        "ca",
        "server",
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    );
    signed(&dir, "ca", "client", "extendedKeyUsage=clientAuth\n");
    signed(
        &dir,
        "other-ca",
        "stranger",
        "extendedKeyUsage=clientAuth\n",
    );
    let p = |n: &str| dir.join(n).display().to_string();

    // No TCP without TLS: refused at the command line.
    let refused = skiffd(&s, &["--tls-listen", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));

    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let group = std::fs::read_to_string("/etc/group")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("daemon:").map(|_| "daemon"))
        .unwrap_or("0")
        .to_string();
    let child = skiffd(
        &s,
        &[
            "--tls-listen",
            &addr,
            "--tlscacert",
            &p("ca.pem"),
            "--tlscert",
            &p("server.pem"),
            "--tlskey",
            &p("server-key.pem"),
            "--docker-socket-group",
            &group,
        ],
    )
    .spawn()
    .unwrap();
    let _d = Daemon(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "skiffd did not listen on {addr}: {}",
            std::fs::read_to_string(s.dir.path().join("skiffd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let socket = std::fs::metadata(s.dir.path().join("docker.sock")).unwrap();
    assert_eq!(socket.permissions().mode() & 0o777, 0o660);
    if group == "daemon" {
        assert_eq!(
            socket.gid(),
            1,
            "the daemon group (gid 1 on Debian) owns the socket"
        );
    }

    let config = s.dir.path().join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    let host = format!("tcp://{addr}");
    let ok = docker(
        &[
            "-H",
            &host,
            "--tlsverify",
            "--tlscacert",
            &p("ca.pem"),
            "--tlscert",
            &p("client.pem"),
            "--tlskey",
            &p("client-key.pem"),
            "version",
            "--format",
            "{{.Server.Version}}",
        ],
        &config,
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(!String::from_utf8_lossy(&ok.stdout).trim().is_empty());

    // Without a client certificate, or with one from another CA: no answer.
    for extra in [
        vec!["--tls", "--tlscacert", &p("ca.pem")],
        vec![
            "--tlsverify",
            "--tlscacert",
            &p("ca.pem"),
            "--tlscert",
            &p("stranger.pem"),
            "--tlskey",
            &p("stranger-key.pem"),
        ],
    ] {
        let mut args = vec!["-H", host.as_str()];
        args.extend(extra.iter().copied());
        args.extend(["version", "--format", "{{.Server.Version}}"]);
        let o = docker(&args, &config);
        assert!(!o.status.success(), "refused: {args:?}");
        let err = String::from_utf8_lossy(&o.stderr).to_lowercase();
        assert!(
            err.contains("tls") || err.contains("certificate"),
            "refused by the TLS handshake, not for another reason: {err}"
        );
    }
    // skiffd is still there for a client with a certificate.
    let again = docker(
        &[
            "-H",
            &host,
            "--tlsverify",
            "--tlscacert",
            &p("ca.pem"),
            "--tlscert",
            &p("client.pem"),
            "--tlskey",
            &p("client-key.pem"),
            "ps",
            "-a",
        ],
        &config,
    );
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    // Plain HTTP on the TLS port: nothing that looks like the API comes back.
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(&addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    assert!(!String::from_utf8_lossy(&buf).contains("ApiVersion"));
}
