//! Helpers shared by the image-store integration tests: an isolated store per test,
//! a mount guard that always unmounts, the `skiff` binary, and registry log counts.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use skiff_image_store::mount::{self, Mount};
use skiff_image_store::{ImageStore, StoreConfig};
use skiff_tests::Registry;
use tempfile::TempDir;

/// A fresh store in its own temp dir (credentials file inside it too).
pub fn store() -> (TempDir, ImageStore) {
    store_with(|_| {})
}

/// A fresh store with settings adjusted by `f`.
pub fn store_with(f: impl FnOnce(&mut StoreConfig)) -> (TempDir, ImageStore) {
    let dir = tempfile::Builder::new()
        .prefix("skiff-it-")
        .tempdir()
        .expect("tempdir");
    let mut c = StoreConfig {
        root: dir.path().join("root"),
        auth_file: Some(dir.path().join("auth.json")),
        ..Default::default()
    };
    f(&mut c);
    let s = ImageStore::open(c).expect("open store");
    (dir, s)
}

/// A mount on a temp dir, unmounted when dropped (even when the test fails).
pub struct Mounted {
    dir: TempDir,
}

impl Mounted {
    /// Mounts `m` on a new temp dir.
    pub fn new(m: &Mount) -> Mounted {
        let dir = tempfile::Builder::new()
            .prefix("skiff-mnt-")
            .tempdir()
            .expect("tempdir");
        m.mount(dir.path()).expect("mount");
        Mounted { dir }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = mount::unmount(self.dir.path());
    }
}

/// The `skiff` binary built by this `cargo test` run (next to the test's deps dir).
pub fn skiff_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SKIFF_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("skiff");
    assert!(
        bin.exists(),
        "{} not built (cargo test --workspace builds it)",
        bin.display()
    );
    bin
}

/// How many blob GETs the registry has served (from its access log).
pub fn blob_gets(reg: &Registry) -> usize {
    let log = std::fs::read_to_string(reg.log_path()).unwrap_or_default();
    log.lines()
        .filter(|l| {
            l.contains("\"GET /v2/") && l.contains("/blobs/sha256:") && l.contains("\" 200 ")
        })
        .count()
}

/// A daemonless `skiff` with its own data root, run root and HOME, pointed at a fixture
/// registry as its Docker Hub mirror. Dropping it force-removes every container it
/// made (killing shims, unmounting, removing cgroups) and checks nothing is left mounted.
pub struct SkiffCli {
    pub dir: TempDir,
    pub root: PathBuf,
    pub run_root: PathBuf,
    mirror: Option<String>,
}

impl SkiffCli {
    /// A fresh instance; `mirror` is a registry address serving `library/alpine`.
    pub fn new(mirror: Option<&Registry>) -> SkiffCli {
        let dir = tempfile::Builder::new()
            .prefix("skiff-c-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path().join("root");
        let run_root = dir.path().join("run");
        std::fs::create_dir_all(dir.path().join("home")).expect("home");
        SkiffCli {
            root,
            run_root,
            mirror: mirror.map(|r| format!("http://{}", r.addr())),
            dir,
        }
    }

    /// A command with this instance's global flags.
    pub fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(skiff_bin());
        c.args(["--config", "/dev/null", "--data-root"])
            .arg(&self.root)
            .arg("--run-root")
            .arg(&self.run_root);
        if let Some(m) = &self.mirror {
            c.args(["--registry-mirror", m]);
        }
        c.args(args)
            .env("HOME", self.dir.path().join("home"))
            // Containers get bridge networking; tests need no forwarding off the host.
            .env("SKIFF_IP_FORWARD", "false")
            .env_remove("XDG_CONFIG_HOME")
            .stdin(std::process::Stdio::null());
        c
    }

    /// This instance's command line for `args`, quoted for `sh -c` (to run it under
    /// `script`, which gives it a pseudo-terminal).
    pub fn shell_line(&self, args: &[&str]) -> String {
        let c = self.cmd(args);
        let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
        let mut line = format!("HOME={} ", quote(&self.home().display().to_string()));
        line.push_str(&quote(&c.get_program().to_string_lossy()));
        for a in c.get_args() {
            line.push(' ');
            line.push_str(&quote(&a.to_string_lossy()));
        }
        line
    }

    /// Runs `args` on a pseudo-terminal of `cols`x`rows` (through `script`), feeding it
    /// `input` as (delay before, bytes) steps; returns the terminal's output.
    pub fn in_pty(
        &self,
        args: &[&str],
        (cols, rows): (u16, u16),
        input: &[(std::time::Duration, &[u8])],
    ) -> std::process::Output {
        use std::io::Write;
        let line = format!("stty cols {cols} rows {rows}; {}", self.shell_line(args));
        let mut child = std::process::Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("script");
        let mut stdin = child.stdin.take().expect("stdin");
        for (delay, bytes) in input {
            std::thread::sleep(*delay);
            let _ = stdin.write_all(bytes).and_then(|_| stdin.flush());
        }
        // Keep the pty's input open until the command ends (EOF would end `script`), but
        // never wait more than a minute.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while child.try_wait().expect("try_wait").is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        drop(stdin);
        child.wait_with_output().expect("script")
    }

    /// Runs to completion.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        self.cmd(args).output().expect("run skiff")
    }

    /// Runs and requires success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "skiff {args:?} failed ({:?}): {}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The HOME the commands run with (credentials files live under it).
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Mount points under this instance's directories.
    pub fn mounts(&self) -> Vec<String> {
        let prefix = self.dir.path().display().to_string();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&prefix))
            .collect()
    }
}

impl Drop for SkiffCli {
    fn drop(&mut self) {
        let ids = self.run(&["ps", "-aq", "--no-trunc"]);
        for id in String::from_utf8_lossy(&ids.stdout).lines() {
            let _ = self.run(&["rm", "-f", id]);
        }
        for m in self.mounts().iter().rev() {
            let _ = mount::unmount(Path::new(m));
        }
    }
}

/// A skiffd for one [`SkiffCli`] instance (its data and run roots), started by the test
/// and killed (by its handle) when dropped. Its log (`SKIFF_LOG=skiff_api=debug,info`)
/// goes to `skiffd.log` in the instance's directory.
pub struct Skiffd {
    /// The daemon process.
    pub child: std::process::Child,
    /// Its Docker API socket.
    pub socket: PathBuf,
    /// Its log file.
    pub log: PathBuf,
}

impl Skiffd {
    /// Starts skiffd with its socket in the instance's directory (so the instance's own
    /// `skiff` commands stay daemonless) and `reg` as the docker.io mirror.
    pub fn start(s: &SkiffCli, reg: Option<&Registry>) -> Skiffd {
        Skiffd::start_on(s, reg, s.dir.path().join("docker.sock"), &[])
    }

    /// Starts skiffd serving `socket`, with `extra` flags; waits until the socket
    /// answers. IPv4 forwarding is left as the host has it.
    pub fn start_on(
        s: &SkiffCli,
        reg: Option<&Registry>,
        socket: PathBuf,
        extra: &[&str],
    ) -> Skiffd {
        let dir = s.dir.path();
        let config = dir.join("skiffd.toml");
        let mirror = reg
            .map(|r| format!("registry-mirrors = [\"http://{}\"]\n", r.addr()))
            .unwrap_or_default();
        std::fs::write(&config, format!("{mirror}ip-forward = false\n")).expect("skiffd.toml");
        let log = dir.join("skiffd.log");
        let child = std::process::Command::new(skiff_bin().with_file_name("skiffd"))
            .arg("--config")
            .arg(&config)
            .arg("--data-root")
            .arg(&s.root)
            .arg("--run-root")
            .arg(&s.run_root)
            .arg("--docker-socket")
            .arg(&socket)
            .args(extra)
            .env("SKIFF_LOG", "skiff_api=debug,info")
            // `docker login` through skiffd stores credentials under its HOME.
            .env("HOME", s.home())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("skiffd.log"))
            .spawn()
            .expect("start skiffd");
        let mut d = Skiffd { child, socket, log };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&d.socket).is_err() {
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("skiffd exited ({status}):\n{}", d.log_text());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "skiffd did not open {}:\n{}",
                d.socket.display(),
                d.log_text()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        d
    }

    /// What skiffd logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills skiffd with SIGKILL (its containers live on in their shims).
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Skiffd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
