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

use common::SkiffCli;
use skiff_tests::{fixtures, Registry};

/// A skiffd serving the Docker API for one isolated skiff instance, with the stock
/// docker CLI's own config directory.
struct Skiffd {
    daemon: common::Skiffd,
    docker_config: PathBuf,
}

impl std::ops::Deref for Skiffd {
    type Target = common::Skiffd;
    fn deref(&self) -> &common::Skiffd {
        &self.daemon
    }
}

impl Skiffd {
    fn start(s: &SkiffCli, reg: &Registry) -> Skiffd {
        let docker_config = s.dir.path().join("docker-config");
        std::fs::create_dir_all(&docker_config).unwrap();
        Skiffd {
            daemon: common::Skiffd::start(s, Some(reg)),
            docker_config,
        }
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
    // The default seccomp filter, and `--security-opt seccomp=unconfined` without it; a
    // custom profile (the CLI sends the file's JSON) is refused clearly.
    let status = |extra: &[&str]| {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["alpine", "grep", "Seccomp:", "/proc/self/status"]);
        d.ok(&args)
    };
    assert!(status(&[]).contains("Seccomp:\t2"));
    assert!(status(&["--security-opt", "seccomp=unconfined"]).contains("Seccomp:\t0"));
    let profile = s.dir.path().join("profile.json");
    std::fs::write(&profile, r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#).unwrap();
    let opt = format!("seccomp={}", profile.display());
    let out = d.docker(&["run", "--rm", "--security-opt", &opt, "alpine", "true"]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("custom seccomp profiles are not supported"),
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

/// Reads a child's stdout lines on a thread; `lines` waits for them.
struct LineReader {
    rx: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl LineReader {
    fn new(out: impl Read + Send + 'static) -> LineReader {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        LineReader {
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits until `pred` holds for the lines seen so far (or panics after `timeout`).
    fn until(&mut self, what: &str, timeout: Duration, pred: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + timeout;
        while !pred(&self.seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(_) => panic!("timed out waiting for {what}; seen: {:#?}", self.seen),
            }
        }
    }
}

/// Kills and reaps a child we started (by its PID, through its handle).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn exec_in_a_running_container() {
    let (reg, s) = setup();
    let d = Skiffd::start(&s, &reg);
    d.ok(&["pull", "-q", "alpine"]);
    d.ok(&["run", "-d", "--name", "box", "alpine", "sleep", "120"]);

    // Both streams, demultiplexed, and the exit code from ExecInspect.
    let out = d.docker(&["exec", "box", "sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(stdout(&out), "out\n");
    assert_eq!(stderr(&out), "err\n");

    let out = d.ok(&[
        "exec",
        "-e",
        "X=42",
        "-w",
        "/tmp",
        "-u",
        "1000",
        "box",
        "sh",
        "-c",
        "echo $X $(pwd) $(id -u)",
    ]);
    assert_eq!(out, "42 /tmp 1000\n");

    // Standard input with -i, ended by the client's EOF.
    let out = run_with_timeout(
        d.docker_cmd(&["exec", "-i", "box", "sh", "-c", "cat; echo end"]),
        Some(b"one\ntwo\n"),
        Duration::from_secs(60),
    )
    .expect("docker exec -i hung");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "one\ntwo\nend\n");

    // A lot of output arrives whole.
    let out = d.ok(&["exec", "box", "sh", "-c", "seq 1 20000"]);
    assert_eq!(out.lines().count(), 20000);
    assert!(out.ends_with("19999\n20000\n"));

    // A command that does not exist: the error in the stream, exit code 127.
    let out = d.docker(&["exec", "box", "nosuchcmd"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(
        format!("{}{}", stdout(&out), stderr(&out)).contains("executable file not found"),
        "{} {}",
        stdout(&out),
        stderr(&out)
    );

    // Detached.
    d.ok(&["exec", "-d", "box", "sh", "-c", "echo hi > /tmp/detached"]);
    eventually("the detached exec ran", || {
        d.docker(&["exec", "box", "cat", "/tmp/detached"]).stdout == b"hi\n"
    });

    // A terminal: docker exec -it under a pty made by script(1).
    let cmd = format!(
        "{} exec -it box sh -c 'echo tty:$(tty); stty size; exit 3'",
        docker_bin().display()
    );
    let mut script = Command::new("script");
    script
        .args(["-qefc", &cmd, "/dev/null"])
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .env("DOCKER_CONFIG", &d.docker_config)
        .env_remove("DOCKER_API_VERSION");
    let out = run_with_timeout(script, Some(b""), Duration::from_secs(60)).expect("exec -it hung");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{text} {}", stderr(&out));
    assert!(text.contains("tty:/dev/pts/"), "{text}");

    // ExecInspect through the raw API.
    let (code, body) = d.raw(
        "POST",
        "/v1.47/containers/box/exec",
        r#"{"Cmd":["sh","-c","exit 4"],"AttachStdout":true}"#,
    );
    assert_eq!(code, 201, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, body) = d.raw("GET", &format!("/v1.47/exec/{id}/json"), "");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Running"], false);
    assert_eq!(v["ProcessConfig"]["entrypoint"], "sh");
    let (code, body) = d.raw(
        "POST",
        &format!("/v1.47/exec/{id}/start"),
        r#"{"Detach":true}"#,
    );
    assert_eq!(code, 200, "{body}");
    eventually("the exec's exit code", || {
        let (_, body) = d.raw("GET", &format!("/v1.47/exec/{id}/json"), "");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["ExitCode"] == 4
    });
    let (code, body) = d.raw(
        "POST",
        &format!("/v1.47/exec/{id}/start"),
        r#"{"Detach":true}"#,
    );
    assert_eq!(code, 409, "a second start: {body}");

    // Bad input.
    let (code, body) = d.raw("POST", "/v1.47/containers/box/exec", r#"{"Cmd":"#);
    assert_eq!(code, 400, "{body}");
    let (code, body) = d.raw(
        "POST",
        "/v1.47/containers/box/exec",
        r#"{"Cmd":"ls","Tty":"yes"}"#,
    );
    assert_eq!(code, 400, "{body}");
    let (code, body) = d.raw("POST", "/v1.47/containers/box/exec", r#"{"Cmd":[]}"#);
    assert_eq!(code, 400, "{body}");
    let (code, body) = d.raw("POST", "/v1.47/exec/nosuch/start", "{}");
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("No such exec instance"), "{body}");
    let (code, _) = d.raw("GET", "/v1.47/exec/nosuch/json", "");
    assert_eq!(code, 404);
    let (code, body) = d.raw(
        "POST",
        "/v1.47/containers/nosuch/exec",
        r#"{"Cmd":["true"]}"#,
    );
    assert_eq!(code, 404, "{body}");

    // A client that leaves in the middle of an exec's output.
    {
        let (code, body) = d.raw(
            "POST",
            "/v1.47/containers/box/exec",
            r#"{"Cmd":["sh","-c","yes | head -c 10000000"],"AttachStdout":true}"#,
        );
        assert_eq!(code, 201, "{body}");
        let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["Id"]
            .as_str()
            .unwrap()
            .to_string();
        let mut c = UnixStream::connect(&d.socket).unwrap();
        write!(
            c,
            "POST /v1.47/exec/{id}/start HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
        )
        .unwrap();
        let mut first = [0u8; 4096];
        let _ = c.read(&mut first);
    }
    assert_eq!(d.ok(&["exec", "box", "echo", "still"]), "still\n");

    // Not into a stopped container, neither at create nor at start.
    let (code, body) = d.raw(
        "POST",
        "/v1.47/containers/box/exec",
        r#"{"Cmd":["true"],"AttachStdout":true}"#,
    );
    assert_eq!(code, 201, "{body}");
    let late = serde_json::from_str::<serde_json::Value>(&body).unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, body) = d.raw(
        "POST",
        &format!("/v1.47/exec/{late}/start"),
        r#"{"Detach":"#,
    );
    assert_eq!(code, 400, "malformed start body: {body}");
    d.ok(&["stop", "-t", "1", "box"]);
    let (code, body) = d.raw("POST", &format!("/v1.47/exec/{late}/start"), "{}");
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("is not running"), "{body}");
    let out = d.docker(&["exec", "box", "true"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("is not running"), "{}", stderr(&out));
    d.ok(&["rm", "box"]);
    assert_clean(&d, &s);
}

#[test]
fn events_follow_and_replay() {
    let (reg, s) = setup();
    let d = Skiffd::start(&s, &reg);
    let t0 = format!("{:.3}", unix_now() - 1.0);
    d.ok(&["pull", "-q", "alpine"]);

    let mut follower = d.docker_cmd(&[
        "events",
        "--filter",
        "type=container",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    follower.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = KillOnDrop(follower.spawn().unwrap());
    let mut lines = LineReader::new(child.0.stdout.take().unwrap());
    // The follower is subscribed once the response headers arrived; give it a moment.
    std::thread::sleep(Duration::from_millis(500));

    let out = d.docker(&["run", "--name", "ev", "alpine", "sh", "-c", "exit 2"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    d.ok(&["run", "-d", "--name", "ev2", "alpine", "sleep", "60"]);
    d.ok(&["exec", "ev2", "true"]);
    d.ok(&["pause", "ev2"]);
    d.ok(&["unpause", "ev2"]);
    d.ok(&["rename", "ev2", "ev3"]);
    d.ok(&["kill", "ev3"]);
    d.ok(&["rm", "ev", "ev3"]);
    let want = [
        "create ev",
        "start ev",
        "die ev",
        "create ev2",
        "start ev2",
        "exec_create: true ev2",
        "exec_start: true ev2",
        "exec_die ev2",
        "pause ev2",
        "unpause ev2",
        "rename ev3",
        "kill ev3",
        "die ev3",
        "destroy ev",
        "destroy ev3",
    ];
    lines.until("every container event", Duration::from_secs(30), |seen| {
        want.iter().all(|w| seen.iter().any(|l| l == w))
    });
    let pos = |w: &str| lines.seen.iter().position(|l| l == w).unwrap();
    assert!(pos("create ev") < pos("start ev") && pos("start ev") < pos("die ev"));
    drop(child);

    // Replayed from the ring, bounded by --until, filtered by event and container.
    let t1 = format!("{:.3}", unix_now());
    let out = d.ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &t1,
        "--filter",
        "event=die",
        "--filter",
        "container=ev",
        "--format",
        "{{.Actor.Attributes.exitCode}}",
    ]);
    assert_eq!(out, "2\n");
    d.ok(&["tag", "alpine", "me/x:1"]);
    d.ok(&["rmi", "me/x:1"]);
    let t2 = format!("{:.3}", unix_now());
    let out = d.ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &t2,
        "--filter",
        "type=image",
        "--format",
        "{{.Action}}",
    ]);
    assert_eq!(out, "pull\ntag\nuntag\n", "{out}");
    let (code, body) = d.raw("GET", "/v1.47/events?since=soon", "");
    assert_eq!(code, 400, "{body}");
    let (code, body) = d.raw(
        "GET",
        "/v1.47/events?filters=%7B%22nope%22%3A%5B%22x%22%5D%7D",
        "",
    );
    assert_eq!(code, 400, "{body}");
    assert_clean(&d, &s);
}

#[test]
fn stats_cp_update_and_disk_usage() {
    let (reg, s) = setup();
    let d = Skiffd::start(&s, &reg);
    d.ok(&["pull", "-q", "alpine"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        "alpine",
        "sh",
        "-c",
        "while :; do :; done",
    ]);

    // stats --no-stream: CPU % from two samples a second apart, memory against the limit.
    let out = d.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}",
        "busy",
    ]);
    let f: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(f[0], "busy", "{out}");
    let cpu: f64 = f[1].trim_end_matches('%').parse().unwrap();
    assert!(cpu > 10.0, "a busy loop uses CPU: {out}");
    assert!(out.contains(" / "), "{out}");
    // Streamed: the CLI keeps reading; kill it after two updates.
    let mut streamed = d.docker_cmd(&["stats", "--format", "{{.Name}} {{.CPUPerc}}", "busy"]);
    streamed.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = KillOnDrop(streamed.spawn().unwrap());
    let mut lines = LineReader::new(child.0.stdout.take().unwrap());
    lines.until("two stats updates", Duration::from_secs(20), |seen| {
        seen.iter().filter(|l| l.contains("busy")).count() >= 2
    });
    drop(child);

    // update: live limits, visible in inspect and the cgroup.
    d.ok(&[
        "update",
        "--memory",
        "64m",
        "--memory-swap",
        "128m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        "busy",
    ]);
    let v: serde_json::Value = serde_json::from_str(&d.ok(&["inspect", "busy"])).unwrap();
    let id = v[0]["Id"].as_str().unwrap().to_string();
    let cg = |ctl: &str, f: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{ctl}/skiff/{id}/{f}"))
            .or_else(|_| std::fs::read_to_string(format!("/sys/fs/cgroup/skiff/{id}/{f}")))
            .unwrap_or_default()
    };
    assert_eq!(cg("memory", "memory.limit_in_bytes").trim(), "67108864");
    assert_eq!(cg("cpu", "cpu.cfs_quota_us").trim(), "50000");
    assert_eq!(cg("pids", "pids.max").trim(), "50");
    let out = d.ok(&["stats", "--no-stream", "--format", "{{.MemUsage}}", "busy"]);
    assert!(out.trim().ends_with("/ 64MiB"), "{out}");
    // The API's sample: per-CPU time (cgroup v1), user/kernel split, and the counters
    // of the container's own interface (the CLI's NET I/O column).
    let (status, body) = d.raw(
        "GET",
        "/v1.47/containers/busy/stats?stream=false&one-shot=true",
        "",
    );
    assert_eq!(status, 200, "{body}");
    let json = &body[body.find('{').unwrap()..=body.rfind('}').unwrap()];
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let usage = &v["cpu_stats"]["cpu_usage"];
    assert!(usage["usage_in_usermode"].as_u64().unwrap() > 0, "{usage}");
    if std::path::Path::new("/sys/fs/cgroup/cpuacct").exists() {
        let per_cpu = usage["percpu_usage"].as_array().unwrap();
        assert!(!per_cpu.is_empty(), "{usage}");
    }
    assert!(
        v["networks"]["eth0"]["rx_bytes"].is_u64(),
        "{}",
        v["networks"]
    );
    d.ok(&["rm", "-f", "busy"]);

    // cp in both directions, directories too, through the archive endpoints.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "files",
        "alpine",
        "sh",
        "-c",
        "mkdir -p /data/sub; echo inside > /data/sub/f; ln -s /etc /data/link; sleep 60",
    ]);
    eventually("the files exist", || {
        d.docker(&["exec", "files", "test", "-f", "/data/sub/f"])
            .status
            .success()
    });
    let host = s.dir.path().join("cp");
    std::fs::create_dir_all(&host).unwrap();
    d.ok(&["cp", "files:/data/sub/f", host.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(host.join("f")).unwrap(), "inside\n");
    d.ok(&["cp", "files:/data", host.join("data").to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(host.join("data/sub/f")).unwrap(),
        "inside\n"
    );
    assert_eq!(
        std::fs::read_link(host.join("data/link")).unwrap(),
        Path::new("/etc")
    );
    std::fs::write(host.join("up.txt"), "from host\n").unwrap();
    d.ok(&[
        "cp",
        host.join("up.txt").to_str().unwrap(),
        "files:/data/sub/",
    ]);
    assert_eq!(
        d.ok(&["exec", "files", "cat", "/data/sub/up.txt"]),
        "from host\n"
    );
    std::fs::create_dir_all(host.join("tree/a")).unwrap();
    std::fs::write(host.join("tree/a/b"), "deep\n").unwrap();
    d.ok(&["cp", host.join("tree").to_str().unwrap(), "files:/data/"]);
    assert_eq!(d.ok(&["exec", "files", "cat", "/data/tree/a/b"]), "deep\n");
    // A symlink in the container pointing at / does not lead out of its root.
    d.ok(&["exec", "files", "ln", "-s", "/", "/data/root"]);
    std::fs::write(host.join("escape.txt"), "x\n").unwrap();
    d.ok(&[
        "cp",
        host.join("escape.txt").to_str().unwrap(),
        "files:/data/root/tmp/",
    ]);
    assert!(
        !Path::new("/tmp/escape.txt").exists()
            || std::fs::read_to_string("/tmp/escape.txt").unwrap() != "x\n"
    );
    assert_eq!(d.ok(&["exec", "files", "cat", "/tmp/escape.txt"]), "x\n");
    let out = d.docker(&["cp", "files:/nonexistent", host.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("Could not find the file /nonexistent"),
        "{}",
        stderr(&out)
    );
    let (code, body) = d.raw("GET", "/v1.47/containers/files/archive", "");
    assert_eq!(code, 400, "{body}");
    // Copying out of a stopped container mounts its layers for the copy.
    d.ok(&["stop", "-t", "1", "files"]);
    d.ok(&[
        "cp",
        "files:/data/tree/a/b",
        host.join("b").to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(host.join("b")).unwrap(), "deep\n");

    // system df, image history.
    let df = d.ok(&["system", "df"]);
    assert!(df.contains("Images") && df.contains("Containers"), "{df}");
    let row = df.lines().find(|l| l.starts_with("Containers")).unwrap();
    assert!(row.split_whitespace().nth(1) == Some("1"), "{df}");
    let hist = d.ok(&["history", "--format", "{{.ID}} {{.Size}}", "alpine"]);
    assert!(
        hist.lines().next().unwrap().starts_with("sha256:")
            || hist.lines().next().unwrap().len() >= 12,
        "{hist}"
    );
    d.ok(&["rm", "files"]);

    // save and load round trip; image prune.
    let tar = s.dir.path().join("alpine.tar");
    d.ok(&["save", "-o", tar.to_str().unwrap(), "alpine"]);
    assert!(std::fs::metadata(&tar).unwrap().len() > 100_000);
    d.ok(&["rmi", "alpine"]);
    let out = d.ok(&["load", "-i", tar.to_str().unwrap()]);
    assert!(out.contains("Loaded image: alpine:latest"), "{out}");
    d.ok(&["tag", "alpine", "spare:1"]);
    d.ok(&["rmi", "alpine"]);
    let out = d.ok(&["image", "prune", "-a", "-f"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert_eq!(d.ok(&["images", "-q"]).trim(), "");
    assert_clean(&d, &s);
}

#[test]
fn login_to_a_registry_with_basic_auth() {
    let (reg, s) = setup();
    let d = Skiffd::start(&s, &reg);
    let private = Registry::start_with_basic_auth("dk", "pw").unwrap();
    let fx = fixtures::busybox(&private).unwrap();

    let out = d.docker(&["pull", &fx.reference]);
    assert_ne!(out.status.code(), Some(0), "pull without credentials");

    // Credentials in the CLI's own config travel in X-Registry-Auth; skiffd uses them
    // for that pull only.
    let cli_config = d.docker_config.join("config.json");
    // base64("dk:pw") = "ZGs6cHc="
    std::fs::write(
        &cli_config,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"ZGs6cHc="}}}}}}"#,
            private.addr()
        ),
    )
    .unwrap();
    d.ok(&["pull", "-q", &fx.reference]);
    d.ok(&["rmi", &fx.reference]);
    std::fs::remove_file(&cli_config).unwrap();
    let out = d.docker(&["pull", &fx.reference]);
    assert_ne!(out.status.code(), Some(0), "nothing was stored");
    let out = run_with_timeout(
        d.docker_cmd(&["login", "-u", "dk", "--password-stdin", &private.addr()]),
        Some(b"wrong\n"),
        Duration::from_secs(60),
    )
    .unwrap();
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run_with_timeout(
        d.docker_cmd(&["login", "-u", "dk", "--password-stdin", &private.addr()]),
        Some(b"pw\n"),
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("Login Succeeded"), "{}", stdout(&out));
    d.ok(&["pull", "-q", &fx.reference]);
    assert_clean(&d, &s);
}

#[test]
fn volumes_are_created_shared_listed_and_protected() {
    let (reg, s) = setup();
    let d = Skiffd::start(&s, &reg);
    d.ok(&["pull", "-q", "alpine"]);
    // Explicit create with labels; implicit create by `-v NAME:/dst`.
    assert_eq!(
        d.ok(&["volume", "create", "--label", "team=a", "shared"])
            .trim(),
        "shared"
    );
    d.ok(&[
        "run",
        "--rm",
        "-v",
        "shared:/data",
        "alpine",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "user",
        "-v",
        "implicit:/x",
        "alpine",
        "sleep",
        "600",
    ]);
    // A second container sees what the first wrote.
    let out = d.ok(&[
        "run",
        "--rm",
        "-v",
        "shared:/data:ro",
        "alpine",
        "cat",
        "/data/f",
    ]);
    assert_eq!(out, "kept\n");
    let ls = d.ok(&["volume", "ls", "--format", "{{.Driver}} {{.Name}}"]);
    assert!(
        ls.contains("local shared") && ls.contains("local implicit"),
        "{ls}"
    );
    let only = d.ok(&["volume", "ls", "-q", "--filter", "label=team=a"]);
    assert_eq!(only.trim(), "shared");
    let dangling = d.ok(&["volume", "ls", "-q", "--filter", "dangling=true"]);
    assert_eq!(dangling.trim(), "shared", "implicit is in use");
    let inspect: serde_json::Value =
        serde_json::from_str(&d.ok(&["volume", "inspect", "shared"])).unwrap();
    assert_eq!(inspect[0]["Labels"]["team"], "a");
    let mountpoint = inspect[0]["Mountpoint"].as_str().unwrap().to_string();
    assert_eq!(
        std::fs::read_to_string(format!("{mountpoint}/f")).unwrap(),
        "kept\n"
    );
    // In use: refused, even with -f; unknown: an error, but not with -f.
    let out = d.docker(&["volume", "rm", "-f", "implicit"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("volume is in use"),
        "{}",
        stderr(&out)
    );
    let out = d.docker(&["volume", "rm", "nosuch"]);
    assert!(stderr(&out).contains("no such volume"), "{}", stderr(&out));
    d.ok(&["volume", "rm", "-f", "nosuch"]);
    // Bad names and drivers are the client's mistake.
    let out = d.docker(&["volume", "create", "../x"]);
    assert!(
        stderr(&out).contains("invalid volume name"),
        "{}",
        stderr(&out)
    );
    let out = d.docker(&["volume", "create", "-d", "nfs", "x1"]);
    assert!(stderr(&out).contains("not supported"), "{}", stderr(&out));
    // system df counts them.
    let df = d.ok(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]);
    assert!(df.contains("Local Volumes 2"), "{df}");
    // prune without -a spares named volumes; with -a it removes the unused ones.
    d.ok(&["volume", "prune", "-f"]);
    assert!(d.ok(&["volume", "ls", "-q"]).contains("shared"));
    let out = d.ok(&["volume", "prune", "-a", "-f"]);
    assert!(out.contains("shared"), "{out}");
    assert_eq!(d.ok(&["volume", "ls", "-q"]).trim(), "implicit");
    d.ok(&["rm", "-f", "user"]);
    d.ok(&["volume", "rm", "implicit"]);
    assert!(d.ok(&["volume", "ls", "-q"]).trim().is_empty());
    // The skiff CLI shows the same volumes.
    s.ok(&["volume", "create", "fromcli"]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]).trim(), "fromcli");
    s.ok(&["volume", "rm", "fromcli"]);

    // Anonymous volumes (`-v /path`): `--rm` and `rm -v` remove them, a plain `rm`
    // leaves them for `volume prune` (which, without -a, removes only those).
    let out = d.ok(&[
        "run",
        "--rm",
        "-v",
        "/data",
        "alpine",
        "sh",
        "-c",
        "echo x > /data/f; cat /data/f",
    ]);
    assert_eq!(out, "x\n");
    assert!(
        d.ok(&["volume", "ls", "-q"]).trim().is_empty(),
        "--rm removed it"
    );
    d.ok(&[
        "run", "-d", "--name", "anon", "-v", "/data", "alpine", "sleep", "600",
    ]);
    let name = d.ok(&["volume", "ls", "-q"]).trim().to_string();
    assert_eq!(name.len(), 64, "a generated name: {name}");
    let inspect: serde_json::Value =
        serde_json::from_str(&d.ok(&["volume", "inspect", &name])).unwrap();
    assert!(
        inspect[0]["Labels"]["com.docker.volume.anonymous"].is_string(),
        "{inspect}"
    );
    d.ok(&["restart", "-t", "0", "anon"]);
    assert_eq!(
        d.ok(&["volume", "ls", "-q"]).trim(),
        name,
        "a restart mounts the same one"
    );
    d.ok(&["rm", "-f", "anon"]);
    assert_eq!(
        d.ok(&["volume", "ls", "-q"]).trim(),
        name,
        "rm without -v keeps it"
    );
    d.ok(&["volume", "prune", "-f"]);
    assert!(d.ok(&["volume", "ls", "-q"]).trim().is_empty());
    d.ok(&[
        "run", "-d", "--name", "anon2", "-v", "/data", "alpine", "sleep", "600",
    ]);
    d.ok(&["rm", "-fv", "anon2"]);
    assert!(
        d.ok(&["volume", "ls", "-q"]).trim().is_empty(),
        "rm -v removed it"
    );
    s.ok(&["run", "--rm", "--daemonless", "-v", "/x", "alpine", "true"]);
    assert!(
        d.ok(&["volume", "ls", "-q"]).trim().is_empty(),
        "skiff run --rm too"
    );
    // skiff's CLI through skiffd sends them as docker does.
    let host = format!("unix://{}", d.socket.display());
    let out = s.ok(&[
        "-H",
        &host,
        "run",
        "--rm",
        "-v",
        "/y",
        "alpine",
        "sh",
        "-c",
        "grep -c ' /y ' /proc/mounts",
    ]);
    assert_eq!(out.trim(), "1", "a volume mounted at /y");
    assert!(
        d.ok(&["volume", "ls", "-q"]).trim().is_empty(),
        "through skiffd too"
    );
    assert_clean(&d, &s);
}

#[test]
fn auto_remove_survives_a_daemon_restart() {
    let (reg, s) = setup();
    let d = Skiffd::start(&s, &reg);
    d.ok(&["pull", "-q", "alpine"]);
    d.ok(&[
        "run", "-d", "--rm", "--name", "outlives", "alpine", "sleep", "4",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--rm",
        "--name",
        "meanwhile",
        "alpine",
        "sleep",
        "1",
    ]);
    drop(d);
    // "meanwhile" exits while no daemon runs.
    std::thread::sleep(Duration::from_secs(2));
    let d = Skiffd::start(&s, &reg);
    eventually("the container that exited meanwhile is removed", || {
        !d.ok(&["ps", "-a", "--format", "{{.Names}}"])
            .contains("meanwhile")
    });
    let ps = d.ok(&["ps", "--format", "{{.Names}}"]);
    assert!(ps.contains("outlives"), "{ps}");
    eventually("the running one is removed when it exits", || {
        d.ok(&["ps", "-aq"]).trim().is_empty()
    });
    assert_clean(&d, &s);
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn fifty_concurrent_runs_with_events_and_logs_following() {
    let (reg, s) = setup();
    let d = Skiffd::start(&s, &reg);
    let pid = d.child.id();
    d.ok(&["pull", "-q", "alpine"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "talker",
        "alpine",
        "sh",
        "-c",
        "i=0; while :; do echo line $i; i=$((i+1)); sleep 0.02; done",
    ]);
    d.ok(&["ps"]);
    d.ok(&["logs", "talker"]);
    let fds_before = open_fds(pid);

    let mut events = d.docker_cmd(&[
        "events",
        "--filter",
        "event=create",
        "--filter",
        "event=start",
        "--filter",
        "event=die",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    events.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut events = KillOnDrop(events.spawn().unwrap());
    let mut seen = LineReader::new(events.0.stdout.take().unwrap());
    let mut logs = d.docker_cmd(&["logs", "-f", "talker"]);
    logs.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut logs = KillOnDrop(logs.spawn().unwrap());
    let mut log_lines = LineReader::new(logs.0.stdout.take().unwrap());
    std::thread::sleep(Duration::from_millis(500));

    let runs: Vec<_> = (0..50)
        .map(|i| {
            let cmd = d.docker_cmd(&[
                "run",
                "-d",
                "--name",
                &format!("load{i}"),
                "alpine",
                "sh",
                "-c",
                "echo hi",
            ]);
            std::thread::spawn(move || run_with_timeout(cmd, None, Duration::from_secs(300)))
        })
        .collect();
    for (i, r) in runs.into_iter().enumerate() {
        let out = r.join().unwrap().unwrap_or_else(|| panic!("run {i} hung"));
        assert_eq!(out.status.code(), Some(0), "run {i}: {}", stderr(&out));
    }
    seen.until(
        "create, start and die of all 50",
        Duration::from_secs(120),
        |lines| {
            (0..50).all(|i| {
                ["create", "start", "die"]
                    .iter()
                    .all(|a| lines.iter().any(|l| *l == format!("{a} load{i}")))
            })
        },
    );
    let per_container = seen.seen.iter().filter(|l| l.ends_with(" load7")).count();
    assert_eq!(per_container, 3, "each event once: {:?}", seen.seen);
    log_lines.until(
        "the followed log keeps coming",
        Duration::from_secs(30),
        |l| l.len() > 20,
    );
    drop(events);
    drop(logs);

    let names: Vec<String> = (0..50).map(|i| format!("load{i}")).collect();
    let mut rm = vec!["rm", "-f", "talker"];
    rm.extend(names.iter().map(String::as_str));
    d.ok(&rm);
    assert_clean(&d, &s);
    // Every follower, watcher and stream is gone: skiffd holds no more descriptors
    // than before the load (a little slack for lazily opened files).
    let deadline = Instant::now() + Duration::from_secs(20);
    while open_fds(pid) > fds_before + 2 {
        if Instant::now() > deadline {
            let list: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
                .unwrap()
                .flatten()
                .map(|e| format!("{:?}", std::fs::read_link(e.path())))
                .collect();
            let ss = Command::new("ss")
                .args(["-xpna"])
                .output()
                .map(|o| stdout(&o))
                .unwrap_or_default();
            let ss: Vec<&str> = ss
                .lines()
                .filter(|l| l.contains(&format!("pid={pid},")))
                .collect();
            panic!(
                "skiffd holds {} descriptors, {fds_before} before the load: {list:#?}\n{ss:#?}",
                list.len()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    d.ok(&["version"]);
}

/// Sends a raw request and reads the response head (and a little of the body), then
/// returns the connection for the caller to drop (or half-close) whenever it likes.
fn open_stream(d: &Skiffd, method: &str, path: &str, upgrade: bool) -> (UnixStream, String) {
    let mut c = UnixStream::connect(&d.socket).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let extra = if upgrade {
        "Connection: Upgrade\r\nUpgrade: tcp\r\n"
    } else {
        ""
    };
    write!(
        c,
        "{method} {path} HTTP/1.1\r\nHost: docker\r\n{extra}Content-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 1024];
    let n = c.read(&mut head).unwrap_or(0);
    (c, String::from_utf8_lossy(&head[..n]).into_owned())
}

#[test]
fn clients_that_leave_mid_stream() {
    let (reg, s) = setup();
    let d = Skiffd::start(&s, &reg);
    let pid = d.child.id();
    d.ok(&["pull", "-q", "alpine"]);
    d.ok(&["run", "--name", "done", "alpine", "true"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "talker",
        "alpine",
        "sh",
        "-c",
        "while :; do echo tick; sleep 0.05; done",
    ]);
    d.ok(&["logs", "talker"]);
    d.ok(&["stats", "--no-stream", "talker"]);
    let (c, _) = open_stream(&d, "GET", "/v1.47/events", false);
    drop(c);
    let before = open_fds(pid);

    for _ in 0..5 {
        // A hijack on an exited container: the client half-closes (as the CLI does
        // without stdin), then leaves.
        let (c, head) = open_stream(
            &d,
            "POST",
            "/v1.47/containers/done/attach?stream=1&stdout=1&stderr=1",
            true,
        );
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        c.shutdown(std::net::Shutdown::Write).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        drop(c);
        let (c, head) = open_stream(&d, "GET", "/v1.47/events", false);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        drop(c);
        let (c, head) = open_stream(&d, "GET", "/v1.47/containers/talker/stats", false);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        drop(c);
        let (c, head) = open_stream(
            &d,
            "GET",
            "/v1.47/containers/talker/logs?follow=1&stdout=1",
            false,
        );
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        drop(c);
        let (c, head) = open_stream(
            &d,
            "GET",
            "/v1.47/containers/talker/archive?path=/bin",
            false,
        );
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        drop(c);
        let (c, head) = open_stream(&d, "GET", "/v1.47/images/get?names=alpine", false);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        drop(c);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while open_fds(pid) > before + 2 {
        assert!(
            Instant::now() < deadline,
            "skiffd holds {} descriptors, {before} before the clients came and went",
            open_fds(pid)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(d.ok(&["exec", "talker", "echo", "fine"]), "fine\n");
    d.ok(&["rm", "-f", "talker", "done"]);
    assert_clean(&d, &s);
}

/// Whether container `id`'s cgroup is frozen (cgroup v1 freezer, or v2), if it has one.
fn frozen(id: &str) -> Option<bool> {
    let v1 = format!("/sys/fs/cgroup/freezer/skiff/{id}/freezer.state");
    if let Ok(state) = std::fs::read_to_string(v1) {
        return Some(state.trim() != "THAWED");
    }
    std::fs::read_to_string(format!("/sys/fs/cgroup/skiff/{id}/cgroup.freeze"))
        .ok()
        .map(|v| v.trim() == "1")
}

#[test]
fn cp_freezes_a_running_container_while_it_copies() {
    let (reg, s) = setup();
    let d = Skiffd::start(&s, &reg);
    d.ok(&["pull", "-q", "alpine"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "big",
        "alpine",
        "sh",
        "-c",
        "dd if=/dev/zero of=/big bs=1M count=64 && touch /ready; sleep 120",
    ]);
    eventually("the big file is written", || {
        d.docker(&["exec", "big", "test", "-f", "/ready"])
            .status
            .success()
    });
    let id = d
        .ok(&["inspect", "--format", "{{.Id}}", "big"])
        .trim()
        .to_string();
    let status = || {
        d.ok(&["inspect", "--format", "{{.State.Status}}", "big"])
            .trim()
            .to_string()
    };
    assert_eq!(frozen(&id), Some(false));

    // A client that reads the head of the archive and stalls: no process in the
    // container runs (none can swap a path for a symlink) while the copy is under way.
    let (c, head) = open_stream(&d, "GET", "/v1.47/containers/big/archive?path=/big", false);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(frozen(&id), Some(true), "frozen while the archive streams");
    // A user's pause waits for the copy instead of failing or being undone by it.
    let mut pause = d.docker_cmd(&["pause", "big"]);
    pause.stdout(Stdio::null()).stderr(Stdio::null());
    let mut pause = KillOnDrop(pause.spawn().unwrap());
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        pause.0.try_wait().unwrap().is_none(),
        "pause waits for the copy"
    );
    // The client leaves mid-stream: the copy ends, the container thaws, the pause runs.
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(20);
    let paused = loop {
        if let Some(st) = pause.0.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "pause still waits after the copy ended"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(paused.success());
    assert_eq!(status(), "paused");
    assert_eq!(frozen(&id), Some(true));
    d.ok(&["unpause", "big"]);
    assert_eq!(status(), "running");
    assert_eq!(frozen(&id), Some(false));

    // Whole copies out and in, and a failed one, leave it running.
    let host = s.dir.path().join("cp");
    std::fs::create_dir_all(&host).unwrap();
    d.ok(&["cp", "big:/big", host.to_str().unwrap()]);
    assert_eq!(std::fs::metadata(host.join("big")).unwrap().len(), 64 << 20);
    assert_eq!((status(), frozen(&id)), ("running".into(), Some(false)));
    std::fs::write(host.join("in.txt"), "in\n").unwrap();
    d.ok(&["cp", host.join("in.txt").to_str().unwrap(), "big:/tmp/"]);
    assert_eq!((status(), frozen(&id)), ("running".into(), Some(false)));
    let out = d.docker(&["cp", "big:/no/such", host.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("Could not find the file /no/such"));
    let (code, _) = d.raw("PUT", "/v1.47/containers/big/archive?path=/no/such", "");
    assert_eq!(code, 404);
    assert_eq!((status(), frozen(&id)), ("running".into(), Some(false)));
    assert_eq!(d.ok(&["exec", "big", "cat", "/tmp/in.txt"]), "in\n");

    // A container the user paused stays paused through copies both ways.
    d.ok(&["pause", "big"]);
    d.ok(&["cp", "big:/ready", host.to_str().unwrap()]);
    d.ok(&["cp", host.join("in.txt").to_str().unwrap(), "big:/"]);
    let out = d.docker(&["cp", "big:/no/such", host.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0));
    assert_eq!((status(), frozen(&id)), ("paused".into(), Some(true)));
    d.ok(&["unpause", "big"]);
    assert_eq!(d.ok(&["exec", "big", "cat", "/in.txt"]), "in\n");
    d.ok(&["rm", "-f", "big"]);
    assert_clean(&d, &s);
}

/// A typical session with the stock CLI, end to end, checking what the CLI prints at
/// each step: pull, run -d, logs -f (following while the container writes), exec,
/// stop, rm, rmi, and nothing left behind.
#[test]
fn typical_session_end_to_end() {
    use std::io::BufRead;
    let (reg, s) = setup();
    let d = Skiffd::start(&s, &reg);

    let pull = d.ok(&["pull", "alpine"]);
    assert!(pull.contains("Pull complete"), "{pull}");
    assert!(pull.contains("Digest: sha256:"), "{pull}");
    assert!(
        pull.contains("Status: Downloaded newer image for alpine:latest"),
        "{pull}"
    );
    assert!(
        pull.trim_end().ends_with("docker.io/library/alpine:latest"),
        "{pull}"
    );

    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "app",
        "alpine",
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done",
    ]);
    assert_eq!(id.trim().len(), 64);

    // logs -f: lines arrive while the container runs, and the stream ends at stop.
    let mut follow = d
        .docker_cmd(&["logs", "-f", "app"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(follow.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while seen.len() < 5 {
        match lines.next() {
            Some(Ok(l)) => seen.push(l),
            _ => break,
        }
    }
    assert_eq!(
        seen,
        ["tick 1", "tick 2", "tick 3", "tick 4", "tick 5"],
        "logs -f follows in order"
    );

    assert_eq!(
        d.ok(&["exec", "app", "sh", "-c", "echo from-exec $((1+2))"]),
        "from-exec 3\n"
    );
    let failed = d.docker(&["exec", "app", "sh", "-c", "exit 4"]);
    assert_eq!(failed.status.code(), Some(4));

    assert_eq!(d.ok(&["stop", "-t", "1", "app"]), "app\n");
    // The follower ends once the container stops.
    let deadline = Instant::now() + Duration::from_secs(20);
    while follow.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "logs -f did not end at stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let ps = d.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("app Exited (137)"), "{ps}");

    assert_eq!(d.ok(&["rm", "app"]), "app\n");
    let rmi = d.ok(&["rmi", "alpine"]);
    assert!(rmi.contains("Untagged: alpine:latest"), "{rmi}");
    assert!(rmi.contains("Deleted: sha256:"), "{rmi}");
    assert_eq!(d.ok(&["images", "-q"]), "");
    assert_clean(&d, &s);
}
