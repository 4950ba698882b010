//! The stock `docker` CLI against skiffd's Docker Engine API: version negotiation,
//! info, pull with progress, images, `run --rm` (attach before start, wait for removal,
//! exit codes passed through), detached containers and their verbs, errors in Docker's
//! words, and nothing left behind.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{skiff_bin, SkiffCli};
use skiff_tests::{fixtures, Registry};

/// A skiffd serving the Docker API for one isolated skiff instance.
struct Skiffd {
    child: Child,
    socket: PathBuf,
    docker_config: PathBuf,
    log: PathBuf,
}

impl Skiffd {
    fn start(s: &SkiffCli, reg: &Registry) -> Skiffd {
        let dir = s.dir.path();
        let config = dir.join("skiffd.toml");
        std::fs::write(
            &config,
            format!(
                "registry-mirrors = [\"http://{}\"]\nip-forward = false\n",
                reg.addr()
            ),
        )
        .unwrap();
        let socket = dir.join("docker.sock");
        let log = dir.join("skiffd.log");
        let docker_config = dir.join("docker-config");
        std::fs::create_dir_all(&docker_config).unwrap();
        let child = Command::new(skiff_bin().with_file_name("skiffd"))
            .arg("--config")
            .arg(&config)
            .arg("--data-root")
            .arg(&s.root)
            .arg("--run-root")
            .arg(&s.run_root)
            .arg("--docker-socket")
            .arg(&socket)
            .env("SKIFF_LOG", "skiff_api=debug,info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start skiffd");
        let mut d = Skiffd {
            child,
            socket,
            docker_config,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&d.socket).is_err() {
            if let Ok(Some(status)) = d.child.try_wait() {
                let log = d.log_text();
                let hint = if log.contains("unknown flag --docker-socket") {
                    "\n(target/debug/skiffd is the build without the Docker API: build it with `cargo build -p skiff-api`)"
                } else {
                    ""
                };
                panic!("skiffd exited ({status}):\n{log}{hint}");
            }
            assert!(
                Instant::now() < deadline,
                "skiffd did not open {}:\n{}",
                d.socket.display(),
                d.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The stock docker CLI pointed at this daemon.
    fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(docker_bin());
        c.args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", &self.docker_config)
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::null());
        c
    }

    /// Runs the docker CLI (killed after a minute) and returns its output.
    fn docker(&self, args: &[&str]) -> Output {
        run_with_timeout(self.docker_cmd(args), None, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("docker {args:?} hung\n{}", self.log_text()))
    }

    /// Runs the docker CLI and requires success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed ({:?})\nstdout: {}\nstderr: {}\nskiffd log:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// One raw HTTP/1.1 request on the socket; returns status code and body.
    fn raw(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut c = UnixStream::connect(&self.socket).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            c,
            "{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut resp = String::new();
        c.read_to_string(&mut resp).unwrap();
        let status = resp
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = resp.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        (status, body)
    }
}

impl Drop for Skiffd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn docker_bin() -> PathBuf {
    let stock = Path::new("/usr/local/bin/docker");
    if stock.exists() {
        return stock.to_path_buf();
    }
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("docker"))
                .find(|d| d.exists())
        })
        .expect("the stock docker CLI is needed (/usr/local/bin/docker)")
}

/// Runs `cmd` (feeding `input` to its stdin), killing it after `timeout`.
fn run_with_timeout(mut cmd: Command, input: Option<&[u8]>, timeout: Duration) -> Option<Output> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if input.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().expect("spawn");
    if let Some(data) = input {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(data).unwrap();
    }
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Some(Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    })
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn setup() -> (Registry, SkiffCli) {
    let reg = Registry::start().unwrap();
    fixtures::push_busybox_as(&reg, "library/alpine", "latest").unwrap();
    let s = SkiffCli::new(Some(&reg));
    (reg, s)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Nothing is left: no containers in `ps -a`, no mounts under the instance.
fn assert_clean(d: &Skiffd, s: &SkiffCli) {
    eventually("no containers left", || {
        d.ok(&["ps", "-aq"]).trim().is_empty()
    });
    assert!(s.mounts().is_empty(), "mounts left: {:?}", s.mounts());
}

#[test]
fn version_info_pull_images() {
    let (reg, s) = setup();
    let d = Skiffd::start(&s, &reg);

    let v = d.ok(&["version"]);
    assert!(v.contains("Server: skiff"), "{v}");
    assert!(
        v.contains("API version:      1.47 (minimum version 1.41)"),
        "{v}"
    );
    assert!(
        v.contains("1.47 (downgraded from"),
        "the CLI negotiated down: {v}"
    );

    let info = d.ok(&["info"]);
    for want in [
        "Containers: 0",
        "Images: 0",
        "Storage Driver: ",
        "Default Runtime: oci",
        "Runtimes: oci",
        "Logging Driver: json-file",
        "Operating System: ",
    ] {
        assert!(info.contains(want), "missing {want:?} in:\n{info}");
    }

    let pull = d.ok(&["pull", "alpine"]);
    for want in [
        "latest: Pulling from library/alpine",
        ": Pulling fs layer",
        ": Pull complete",
        "Digest: sha256:",
        "Status: Downloaded newer image for alpine:latest",
        "docker.io/library/alpine:latest",
    ] {
        assert!(pull.contains(want), "missing {want:?} in:\n{pull}");
    }
    let again = d.ok(&["pull", "alpine"]);
    assert!(
        again.contains("Status: Image is up to date for alpine:latest"),
        "{again}"
    );

    let images = d.ok(&["images"]);
    let row = images
        .lines()
        .find(|l| l.starts_with("alpine "))
        .unwrap_or_else(|| panic!("no alpine row:\n{images}"));
    assert!(row.contains("latest"), "{row}");

    let id = d.ok(&["inspect", "--format", "{{.Id}}", "alpine"]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let inspect: serde_json::Value =
        serde_json::from_str(&d.ok(&["image", "inspect", "alpine"])).unwrap();
    assert_eq!(inspect[0]["Os"], "linux");
    assert_eq!(inspect[0]["RepoTags"][0], "alpine:latest");

    d.ok(&["tag", "alpine", "me/app:v1"]);
    let filtered = d.ok(&["images", "me/*"]);
    assert!(
        filtered.contains("me/app") && !filtered.contains("alpine"),
        "{filtered}"
    );
    let rmi = d.ok(&["rmi", "me/app:v1"]);
    assert!(rmi.contains("Untagged: me/app:v1"), "{rmi}");

    let info = d.ok(&["info", "--format", "{{.Images}}"]);
    assert_eq!(info.trim(), "1");

    let rmi = d.ok(&["rmi", "alpine"]);
    assert!(rmi.contains("Untagged: alpine:latest"), "{rmi}");
    assert!(rmi.contains("Deleted: sha256:"), "{rmi}");
    assert_eq!(d.ok(&["images", "-q"]).trim(), "");

    let missing = d.docker(&["rmi", "alpine"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("Error response from daemon: No such image: alpine"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn run_in_the_foreground() {
    let (reg, s) = setup();
    let d = Skiffd::start(&s, &reg);

    // No pull first: create answers 404, the CLI pulls and creates again.
    let out = d.docker(&["run", "--rm", "alpine", "echo", "hello"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hello\n");
    assert!(
        stderr(&out).contains("Unable to find image 'alpine:latest' locally"),
        "{}",
        stderr(&out)
    );

    let out = d.docker(&[
        "run",
        "--rm",
        "alpine",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "out\n");
    assert!(stderr(&out).contains("err"), "{}", stderr(&out));

    // Without --rm: wait?condition=next-exit, and the container stays.
    let out = d.docker(&[
        "run",
        "--name",
        "kept",
        "alpine",
        "sh",
        "-c",
        "echo kept; exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert_eq!(stdout(&out), "kept\n");
    let ps = d.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.contains("kept Exited (5)"), "{ps}");
    d.ok(&["rm", "kept"]);

    // Standard input with -i.
    let out = run_with_timeout(
        d.docker_cmd(&["run", "--rm", "-i", "alpine", "sh", "-c", "cat; echo end"]),
        Some(b"one\ntwo\n"),
        Duration::from_secs(60),
    )
    .expect("docker run -i hung");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "one\ntwo\nend\n");

    // Docker's exit codes for failures: 127 command not found, 125 daemon errors.
    let out = d.docker(&["run", "--rm", "alpine", "nosuchcmd"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("executable file not found"),
        "{}",
        stderr(&out)
    );
    let out = d.docker(&["run", "--rm", "--runtime", "bogus", "alpine", "true"]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Error response from daemon: unknown or invalid runtime name: bogus"),
        "{}",
        stderr(&out)
    );
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-p",
        "8080:80",
        "alpine",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("conflicting options: port publishing"),
        "{}",
        stderr(&out)
    );

    assert_clean(&d, &s);
}

#[test]
fn detached_container_lifecycle() {
    let (reg, s) = setup();
    let d = Skiffd::start(&s, &reg);
    d.ok(&["pull", "-q", "alpine"]);

    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "alpine",
        "sh",
        "-c",
        "echo ready; sleep 30",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");

    let ps = d.ok(&["ps"]);
    let row = ps
        .lines()
        .find(|l| l.ends_with(" web"))
        .unwrap_or_else(|| panic!("web not listed:\n{ps}"));
    assert!(row.starts_with(&id[..12]), "{row}");
    assert!(row.contains(" Up "), "{row}");
    assert!(row.contains("alpine"), "{row}");
    let running = d.ok(&["info", "--format", "{{.ContainersRunning}}"]);
    assert_eq!(running.trim(), "1");

    eventually("logs show the output", || {
        d.ok(&["logs", "web"]) == "ready\n"
    });
    let ts = d.ok(&["logs", "-t", "--tail", "1", "web"]);
    assert!(ts.ends_with(" ready\n") && ts.starts_with("20"), "{ts}");

    let inspect: serde_json::Value = serde_json::from_str(&d.ok(&["inspect", "web"])).unwrap();
    assert_eq!(inspect[0]["Id"], id);
    assert_eq!(inspect[0]["Name"], "/web");
    assert_eq!(inspect[0]["State"]["Running"], true);
    assert_eq!(inspect[0]["HostConfig"]["NetworkMode"], "bridge");

    let top = d.ok(&["top", "web"]);
    assert!(top.contains("sleep 30"), "{top}");

    d.ok(&["pause", "web"]);
    let st = d.ok(&["ps", "--format", "{{.Status}}"]);
    assert!(st.contains("(Paused)"), "{st}");
    d.ok(&["unpause", "web"]);

    d.ok(&["rename", "web", "web2"]);
    assert_eq!(d.ok(&["stop", "-t", "1", "web2"]).trim(), "web2");
    let st = d.ok(&["ps", "-a", "--format", "{{.Names}} {{.State}} {{.Status}}"]);
    assert!(st.starts_with("web2 exited Exited (137)"), "{st}");
    assert_eq!(
        d.ok(&["ps", "-q"]).trim(),
        "",
        "stopped containers are not listed without -a"
    );

    d.ok(&["start", "web2"]);
    eventually("restarted", || {
        d.ok(&["inspect", "-f", "{{.State.Status}}", "web2"]).trim() == "running"
    });
    let busy = d.docker(&["rm", "web2"]);
    assert_eq!(busy.status.code(), Some(1));
    assert!(
        stderr(&busy).contains("You cannot remove a running container"),
        "{}",
        stderr(&busy)
    );
    d.ok(&["kill", "web2"]);
    eventually("killed", || {
        d.ok(&["inspect", "-f", "{{.State.Status}}", "web2"]).trim() == "exited"
    });
    assert_eq!(d.ok(&["rm", "web2"]).trim(), "web2");

    let out = d.docker(&["rm", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Error response from daemon: No such container: nosuch"),
        "{}",
        stderr(&out)
    );

    // A running container removed with force, and prune.
    d.ok(&["run", "-d", "--name", "doomed", "alpine", "sleep", "60"]);
    d.ok(&["rm", "-f", "doomed"]);
    d.ok(&["create", "--name", "never", "alpine", "true"]);
    let pruned = d.ok(&["container", "prune", "-f"]);
    assert!(pruned.contains("Deleted Containers:"), "{pruned}");

    assert_clean(&d, &s);
    // A removal racing with a recorded exit must not bring a record back.
    std::thread::sleep(Duration::from_millis(1500));
    assert_clean(&d, &s);
}

#[test]
fn bad_requests_get_docker_errors() {
    let (reg, s) = setup();
    let d = Skiffd::start(&s, &reg);

    let (code, body) = d.raw("POST", "/v1.47/containers/create", "{\"Image\":");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("\"message\":\"invalid JSON"), "{body}");

    let (code, body) = d.raw("POST", "/containers/create", "[1,2]");
    assert_eq!(code, 400, "{body}");

    let (code, body) = d.raw("GET", "/v1.99/info", "");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("too new"), "{body}");

    let (code, body) = d.raw("GET", "/v1.47/no/such/route", "");
    assert_eq!(code, 404, "{body}");
    assert_eq!(body, "{\"message\":\"page not found\"}");

    let (code, body) = d.raw("GET", "/containers/nosuch/json", "");
    assert_eq!(code, 404, "{body}");
    assert_eq!(body, "{\"message\":\"No such container: nosuch\"}");

    let (code, body) = d.raw("POST", "/containers/nosuch/wait?condition=bogus", "");
    assert_eq!(code, 400, "{body}");

    let (code, body) = d.raw("GET", "/containers/json?filters=notjson", "");
    assert_eq!(code, 400, "{body}");

    let (code, _) = d.raw("HEAD", "/_ping", "");
    assert_eq!(code, 200);

    // A client that leaves mid-stream does not take the server down.
    {
        let mut c = UnixStream::connect(&d.socket).unwrap();
        write!(
            c,
            "POST /images/create?fromImage=alpine&tag=latest HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n"
        )
        .unwrap();
        let mut first = [0u8; 64];
        let _ = c.read(&mut first);
    }
    d.ok(&["version"]);
    assert_clean(&d, &s);
}
