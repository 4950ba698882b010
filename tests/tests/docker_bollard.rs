//! The Rust `bollard` client (0.21, the models skiff's API uses) against skiffd's
//! Docker Engine API: ping, version, pull, containers, exec with and without a TTY and
//! with stdin, events, stats, archives both ways, update, disk usage, image history and
//! save, and Docker's errors.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, ContainerUpdateBody, ExecConfig};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, DownloadFromContainerOptions, EventsOptions,
    RemoveContainerOptions, StatsOptions, UploadToContainerOptions,
};
use bollard::Docker;
use common::{SkiffCli, Skiffd};
use futures_util::StreamExt;
use skiff_tests::{fixtures, Registry};
use tokio::io::AsyncWriteExt;

/// A bollard client of `d`.
fn client(d: &Skiffd) -> Docker {
    Docker::connect_with_unix(
        d.socket.to_str().unwrap(),
        120,
        bollard::API_DEFAULT_VERSION,
    )
    .unwrap()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn status_of(e: &bollard::errors::Error) -> Option<u16> {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// Runs `cmd` in `container` and returns (stdout, stderr, exit code).
async fn exec(docker: &Docker, container: &str, cmd: &[&str]) -> (String, String, i64) {
    let id = docker
        .create_exec(
            container,
            ExecConfig {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .id;
    let (mut out, mut err) = (String::new(), String::new());
    match docker.start_exec(&id, None).await.unwrap() {
        StartExecResults::Attached { mut output, .. } => {
            while let Some(chunk) = output.next().await {
                match chunk.unwrap() {
                    LogOutput::StdOut { message } => {
                        out.push_str(&String::from_utf8_lossy(&message))
                    }
                    LogOutput::StdErr { message } => {
                        err.push_str(&String::from_utf8_lossy(&message))
                    }
                    other => panic!("unexpected output {other:?}"),
                }
            }
        }
        StartExecResults::Detached => panic!("not attached"),
    }
    let code = docker.inspect_exec(&id).await.unwrap().exit_code.unwrap();
    (out, err, code)
}

#[test]
fn bollard_drives_the_api() {
    let reg = Registry::start().unwrap();
    fixtures::push_busybox_as(&reg, "library/alpine", "latest").unwrap();
    let s = SkiffCli::new(Some(&reg));
    let d = Skiffd::start(&s, Some(&reg));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let docker = client(&d).negotiate_version().await.unwrap();
        assert_eq!(docker.ping().await.unwrap(), "OK");
        let v = docker.version().await.unwrap();
        assert_eq!(v.api_version.as_deref(), Some("1.47"));
        let t0 = unix_now() - 1;

        let mut pull = docker.create_image(
            Some(CreateImageOptions {
                from_image: Some("alpine".into()),
                tag: Some("latest".into()),
                ..Default::default()
            }),
            None,
            None,
        );
        while let Some(p) = pull.next().await {
            p.unwrap();
        }

        let created = docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some("bolt".into()),
                    ..Default::default()
                }),
                ContainerCreateBody {
                    image: Some("alpine".into()),
                    cmd: Some(vec!["sleep".into(), "120".into()]),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        docker.start_container("bolt", None).await.unwrap();
        let inspect = docker.inspect_container("bolt", None).await.unwrap();
        assert_eq!(inspect.id.as_deref(), Some(created.id.as_str()));
        assert_eq!(inspect.state.unwrap().running, Some(true));

        // exec: demultiplexed output and the exit code.
        let (out, err, code) = exec(
            &docker,
            "bolt",
            &["sh", "-c", "echo out; echo err >&2; exit 3"],
        )
        .await;
        assert_eq!((out.as_str(), err.as_str(), code), ("out\n", "err\n", 3));

        // exec with stdin.
        let id = docker
            .create_exec(
                "bolt",
                ExecConfig {
                    attach_stdin: Some(true),
                    attach_stdout: Some(true),
                    cmd: Some(vec!["sh".into(), "-c".into(), "cat; echo done".into()]),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .id;
        match docker.start_exec(&id, None).await.unwrap() {
            StartExecResults::Attached {
                mut output,
                mut input,
            } => {
                input.write_all(b"hello\n").await.unwrap();
                input.shutdown().await.unwrap();
                let mut got = String::new();
                while let Some(chunk) = output.next().await {
                    got.push_str(&chunk.unwrap().to_string());
                }
                assert_eq!(got, "hello\ndone\n");
            }
            StartExecResults::Detached => panic!("not attached"),
        }

        // exec with a TTY: raw output.
        let id = docker
            .create_exec(
                "bolt",
                ExecConfig {
                    attach_stdout: Some(true),
                    tty: Some(true),
                    cmd: Some(vec!["tty".into()]),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .id;
        let tty = StartExecOptions {
            tty: true,
            ..Default::default()
        };
        match docker.start_exec(&id, Some(tty)).await.unwrap() {
            StartExecResults::Attached { mut output, .. } => {
                let mut got = String::new();
                while let Some(chunk) = output.next().await {
                    got.push_str(&chunk.unwrap().to_string());
                }
                assert!(got.starts_with("/dev/pts/"), "{got}");
            }
            StartExecResults::Detached => panic!("not attached"),
        }

        // Detached exec.
        let id = docker
            .create_exec(
                "bolt",
                ExecConfig {
                    cmd: Some(vec!["sh".into(), "-c".into(), "exit 5".into()]),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .id;
        let detach = StartExecOptions {
            detach: true,
            ..Default::default()
        };
        assert!(matches!(
            docker.start_exec(&id, Some(detach)).await.unwrap(),
            StartExecResults::Detached
        ));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let i = docker.inspect_exec(&id).await.unwrap();
            if i.running == Some(false) && i.exit_code == Some(5) {
                break;
            }
            assert!(Instant::now() < deadline, "{i:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // stats, one sample.
        let mut stats = docker.stats(
            "bolt",
            Some(StatsOptions {
                stream: false,
                one_shot: true,
            }),
        );
        let st = stats.next().await.unwrap().unwrap();
        assert!(st.memory_stats.unwrap().usage.unwrap() > 0);
        assert!(st.pids_stats.unwrap().current.unwrap() >= 1);

        // Archives both ways.
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(6);
        h.set_mode(0o640);
        h.set_cksum();
        tar.append_data(&mut h, "up.txt", &b"bytes\n"[..]).unwrap();
        let body = tar.into_inner().unwrap();
        docker
            .upload_to_container(
                "bolt",
                Some(UploadToContainerOptions {
                    path: "/tmp".into(),
                    ..Default::default()
                }),
                bollard::body_full(body.into()),
            )
            .await
            .unwrap();
        let (out, _, _) = exec(&docker, "bolt", &["stat", "-c", "%a %s", "/tmp/up.txt"]).await;
        assert_eq!(out, "640 6\n");
        let mut down = docker.download_from_container(
            "bolt",
            Some(DownloadFromContainerOptions {
                path: "/tmp/up.txt".into(),
            }),
        );
        let mut bytes = Vec::new();
        while let Some(b) = down.next().await {
            bytes.extend_from_slice(&b.unwrap());
        }
        let mut ar = tar::Archive::new(&bytes[..]);
        let mut entry = ar.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(entry.path().unwrap().to_str(), Some("up.txt"));
        let mut content = String::new();
        entry.read_to_string(&mut content).unwrap();
        assert_eq!(content, "bytes\n");

        // update, df, history, save.
        docker
            .update_container(
                "bolt",
                ContainerUpdateBody {
                    memory: Some(64 << 20),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        // API 1.47's shape (LayersSize, Images, ...) is not bollard's 1.52 model; it
        // still has to parse.
        docker.df(None).await.unwrap();
        let hist = docker.image_history("alpine").await.unwrap();
        assert!(hist[0].id.starts_with("sha256:"), "{hist:?}");
        let mut save = docker.export_image("alpine");
        let mut saved = 0;
        while let Some(b) = save.next().await {
            saved += b.unwrap().len();
        }
        assert!(saved > 100_000);

        // Events since the start, until now.
        let until = unix_now() + 1;
        let mut events = docker.events(Some(EventsOptions {
            since: Some(t0.to_string()),
            until: Some(until.to_string()),
            filters: Some([("container".to_string(), vec!["bolt".to_string()])].into()),
        }));
        let mut actions = Vec::new();
        while let Some(e) = events.next().await {
            actions.push(e.unwrap().action.unwrap_or_default());
        }
        for want in ["create", "start", "exec_die", "update"] {
            assert!(
                actions.iter().any(|a| a == want),
                "{want} missing: {actions:?}"
            );
        }

        // Docker's errors.
        let e = docker
            .create_exec(
                "nosuch",
                ExecConfig {
                    cmd: Some(vec!["true".into()]),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert_eq!(status_of(&e), Some(404), "{e}");
        let e = docker.inspect_exec("nosuch").await.unwrap_err();
        assert_eq!(status_of(&e), Some(404), "{e}");
        docker
            .remove_container(
                "bolt",
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await
            .unwrap();
        let e = docker.inspect_container("bolt", None).await.unwrap_err();
        assert_eq!(status_of(&e), Some(404), "{e}");
    });
    drop(d);
}
