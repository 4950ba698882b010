//! The image commands of the `skiff` CLI against a real registry: pull output,
//! `images`, `tag`, `rmi`, `image prune`, `image inspect`, `login`, `save`/`load`.

mod common;

use std::path::Path;
use std::process::Stdio;

use common::SkiffCli;
use skiff_tests::{fixtures, Registry};

fn count_dirs(p: &Path) -> usize {
    std::fs::read_dir(p)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name() != "locks")
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn pull_prints_docker_style_lines_and_images_lists_it() {
    let reg = Registry::start().unwrap();
    let fx = fixtures::multilayer(&reg).unwrap();
    let s = SkiffCli::new(None);
    let out = s.ok(&["pull", &fx.reference]);
    let name = format!("{}/{}", reg.addr(), fx.repository);
    assert!(
        out.starts_with(&format!("latest: Pulling from {}\n", fx.repository)),
        "{out}"
    );
    for l in &fx.layers {
        let short = &l.digest[7..19];
        assert!(out.contains(&format!("{short}: Pull complete")), "{out}");
    }
    assert!(
        out.contains(&format!("Digest: {}", fx.manifest_digest)),
        "{out}"
    );
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}:latest")),
        "{out}"
    );
    assert!(out.trim_end().ends_with(&format!("{name}:latest")), "{out}");
    let again = s.ok(&["pull", &fx.reference]);
    assert!(
        again.contains(&format!("Status: Image is up to date for {name}:latest")),
        "{again}"
    );
    assert!(again.contains("Already exists"), "{again}");

    let quiet = s.ok(&["pull", "-q", &fx.reference]);
    assert_eq!(quiet, format!("{name}:latest\n"));

    let images = s.ok(&["images"]);
    let lines: Vec<&str> = images.lines().collect();
    assert_eq!(lines.len(), 2, "{images}");
    let cols: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(cols[0], name);
    assert_eq!(cols[1], "latest");
    assert_eq!(cols[2], &fx.config_digest["sha256:".len()..][..12]);
    assert!(lines[0].starts_with("REPOSITORY"));
    assert_eq!(
        s.ok(&["images", "-q"]),
        format!("{}\n", &fx.config_digest[7..19])
    );
}

#[test]
fn tag_rmi_prune_and_garbage_collection() {
    let reg = Registry::start().unwrap();
    let fx = fixtures::busybox(&reg).unwrap();
    let s = SkiffCli::new(None);
    s.ok(&["pull", "-q", &fx.reference]);
    s.ok(&["tag", &fx.reference, "mine/box:v1"]);
    let images = s.ok(&["images"]);
    assert!(
        images.contains("mine/box ") && images.contains("v1"),
        "{images}"
    );

    // Removing by ID while two tags exist is a conflict; by tag it only untags.
    let by_id = s.run(&["rmi", &fx.config_digest[7..19]]);
    assert_eq!(by_id.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&by_id.stderr).contains("referenced in multiple repositories"));
    assert_eq!(s.ok(&["rmi", "mine/box:v1"]), "Untagged: mine/box:v1\n");
    assert!(count_dirs(&s.root.join("snapshots")) > 0);

    // The last tag deletes the image, its blobs and its snapshots.
    let out = s.ok(&["rmi", &fx.reference]);
    assert!(
        out.contains(&format!("Untagged: {}", fx.reference)),
        "{out}"
    );
    assert!(
        out.contains(&format!("Deleted: {}", fx.config_digest)),
        "{out}"
    );
    assert_eq!(count_dirs(&s.root.join("snapshots")), 0);
    assert_eq!(count_dirs(&s.root.join("blobs/sha256")), 0);
    let gone = s.run(&["rmi", &fx.reference]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("No such image"));

    // Dangling images go with prune; tagged ones only with -a.
    s.ok(&["pull", "-q", &fx.digest_reference()]);
    s.ok(&["pull", "-q", &fixtures::multilayer(&reg).unwrap().reference]);
    let pruned = s.ok(&["image", "prune", "-f"]);
    assert!(
        pruned.contains(&format!("Deleted: {}", fx.config_digest)),
        "{pruned}"
    );
    assert!(pruned.contains("Total reclaimed space:"), "{pruned}");
    assert_eq!(s.ok(&["images", "-q"]).lines().count(), 1);
    s.ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(s.ok(&["images", "-q"]), "");
    assert_eq!(count_dirs(&s.root.join("blobs/sha256")), 0);
}

#[test]
fn inspect_shows_docker_fields() {
    let reg = Registry::start().unwrap();
    let fx = fixtures::multilayer(&reg).unwrap();
    let s = SkiffCli::new(None);
    s.ok(&["pull", "-q", &fx.reference]);
    let out = s.ok(&["image", "inspect", &fx.reference]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let img = &v[0];
    assert_eq!(img["Id"], fx.config_digest.as_str());
    assert_eq!(img["Os"], "linux");
    assert_eq!(img["Architecture"], "amd64");
    assert_eq!(img["RootFS"]["Type"], "layers");
    assert_eq!(
        img["RootFS"]["Layers"].as_array().unwrap().len(),
        fx.layer_count()
    );
    assert_eq!(img["Config"]["Cmd"][0], "sh");
    assert_eq!(img["GraphDriver"]["Name"], "overlayfs");
    assert_eq!(
        img["RepoTags"][0],
        format!("{}/{}:latest", reg.addr(), fx.repository).as_str()
    );
}

#[test]
fn login_stores_credentials_0600_and_pull_uses_them() {
    use std::os::unix::fs::PermissionsExt;
    let reg = Registry::start_with_basic_auth("u1", "p4ss").unwrap();
    let fx = fixtures::busybox(&reg).unwrap();
    let s = SkiffCli::new(None);
    let refused = s.run(&["pull", &fx.reference]);
    assert_eq!(refused.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("authentication"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let mut bad = s.cmd(&["login", "-u", "u1", "--password-stdin", &reg.addr()]);
    bad.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = bad.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"nope\n").unwrap();
    assert!(!child.wait_with_output().unwrap().status.success());

    let mut good = s.cmd(&["login", "-u", "u1", "--password-stdin", &reg.addr()]);
    good.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = good.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"p4ss\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Login Succeeded"));
    let auth = s.home().join(".config/skiff/auth.json");
    assert_eq!(
        std::fs::metadata(&auth).unwrap().permissions().mode() & 0o777,
        0o600
    );
    s.ok(&["pull", "-q", &fx.reference]);
    assert!(s
        .ok(&["logout", &reg.addr()])
        .contains("Removing login credentials"));
}

#[test]
fn docker_config_json_credentials_are_used() {
    let reg = Registry::start_with_basic_auth("dk", "pw").unwrap();
    let fx = fixtures::busybox(&reg).unwrap();
    let s = SkiffCli::new(None);
    let docker = s.home().join(".docker");
    std::fs::create_dir_all(&docker).unwrap();
    // base64("dk:pw") = "ZGs6cHc="
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"ZGs6cHc="}}}}}}"#, reg.addr()),
    )
    .unwrap();
    s.ok(&["pull", "-q", &fx.reference]);
}

#[test]
fn save_and_load_round_trip_between_stores() {
    let reg = Registry::start().unwrap();
    let fx = fixtures::multilayer(&reg).unwrap();
    let a = SkiffCli::new(None);
    let b = SkiffCli::new(None);
    a.ok(&["pull", "-q", &fx.reference]);
    let tar = a.dir.path().join("img.tar");
    a.ok(&["save", "-o", tar.to_str().unwrap(), &fx.reference]);
    let loaded = b.ok(&["load", "-i", tar.to_str().unwrap()]);
    assert!(
        loaded.contains(&format!(
            "Loaded image: {}/{}:latest",
            reg.addr(),
            fx.repository
        )),
        "{loaded}"
    );
    assert_eq!(
        a.ok(&["images", "-q", "--no-trunc"]),
        b.ok(&["images", "-q", "--no-trunc"])
    );
    // A truncated archive is refused and records nothing.
    let bytes = std::fs::read(&tar).unwrap();
    let cut = a.dir.path().join("cut.tar");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let c = SkiffCli::new(None);
    let out = c.run(&["load", "-i", cut.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(125),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(c.ok(&["images", "-q"]), "");
}
