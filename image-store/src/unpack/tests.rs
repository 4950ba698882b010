//! Tests of layer unpacking and tree copying (run as root: they chown,
//! mknod and set `trusted.*` xattrs).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use super::*;
use crate::digest::Digest;

/// A fixed mtime used by test entries.
const MTIME: u64 = 1_600_000_000;

/// Builds a layer tar in memory, writing header names raw so hostile paths
/// can be expressed.
struct Layer {
    builder: tar::Builder<Vec<u8>>,
}

impl Layer {
    fn new() -> Self {
        Layer {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    /// A GNU header of `kind`, `mode`, owner 0:0, fixed mtime, raw `name`.
    fn header(name: &[u8], kind: EntryType, mode: u32, size: u64) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        h.set_size(size);
        let slot = &mut h.as_old_mut().name;
        slot.fill(0);
        slot[..name.len()].copy_from_slice(name);
        h
    }

    /// Appends `h` with `data` as is.
    fn push(&mut self, mut h: Header, data: &[u8]) -> &mut Self {
        h.set_cksum();
        self.builder.append(&h, data).unwrap();
        self
    }

    fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> &mut Self {
        let h = Self::header(name.as_bytes(), EntryType::Regular, mode, data.len() as u64);
        self.push(h, data)
    }

    fn owned_file(&mut self, name: &str, mode: u32, uid: u64, data: &[u8]) -> &mut Self {
        let mut h = Self::header(name.as_bytes(), EntryType::Regular, mode, data.len() as u64);
        h.set_uid(uid);
        h.set_gid(uid);
        self.push(h, data)
    }

    fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        self.push(
            Self::header(name.as_bytes(), EntryType::Directory, mode, 0),
            b"",
        )
    }

    fn link(&mut self, name: &str, kind: EntryType, target: &str) -> &mut Self {
        let mut h = Self::header(name.as_bytes(), kind, 0o777, 0);
        h.set_link_name_literal(target).unwrap();
        self.push(h, b"")
    }

    fn node(&mut self, name: &str, kind: EntryType, major: u32, minor: u32) -> &mut Self {
        let mut h = Self::header(name.as_bytes(), kind, 0o666, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.push(h, b"")
    }

    fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        self.builder
            .append_pax_extensions(records.iter().copied())
            .unwrap();
        self
    }

    /// A file with a path too long for the header (GNU long name record).
    fn long_file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Regular);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        h.set_size(data.len() as u64);
        self.builder.append_data(&mut h, name, data).unwrap();
        self
    }

    fn bytes(&mut self) -> Vec<u8> {
        let builder = std::mem::replace(&mut self.builder, tar::Builder::new(Vec::new()));
        builder.into_inner().unwrap()
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

fn apply(tar: &[u8], dest: &Path, mode: WhiteoutMode) -> Result<LayerStats, UnpackError> {
    apply_layer(tar, Compression::None, dest, mode)
}

/// Every path below `root`, relative.
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for child in fs::read_dir(&dir).unwrap() {
            let child = child.unwrap();
            let path = child.path();
            out.push(path.strip_prefix(root).unwrap().to_path_buf());
            if child.file_type().unwrap().is_dir() {
                pending.push(path);
            }
        }
    }
    out.sort();
    out
}

fn no_whiteout_files(root: &Path) {
    for p in walk(root) {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.starts_with(".wh."), "{p:?} left in the tree");
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

fn lmeta(path: &Path) -> fs::Metadata {
    fs::symlink_metadata(path).unwrap()
}

fn simple_layer() -> Vec<u8> {
    Layer::new()
        .dir("./", 0o755)
        .dir("./etc/", 0o755)
        .file("./etc/hello", 0o644, b"hello world\n")
        .link("./etc/greeting", EntryType::Symlink, "hello")
        .bytes()
}

#[test]
fn round_trips_plain_gzip_and_zstd_with_diff_id() {
    let tar = simple_layer();
    for (compression, stream) in [
        (Compression::None, tar.clone()),
        (Compression::Gzip, gzip(&tar)),
        (Compression::Zstd, zstd(&tar)),
    ] {
        let dest = tempfile::tempdir().unwrap();
        let stats = apply_layer(
            stream.as_slice(),
            compression,
            dest.path(),
            WhiteoutMode::Overlay,
        )
        .unwrap();
        assert_eq!(stats.diff_id, Digest::of(&tar), "{compression:?}");
        assert_eq!(stats.uncompressed_size, tar.len() as u64);
        assert_eq!(stats.entries, 4);
        assert_eq!(read(&dest.path().join("etc/hello")), "hello world\n");
        let link = fs::read_link(dest.path().join("etc/greeting")).unwrap();
        assert_eq!(link, Path::new("hello"));
    }
}

#[test]
fn diff_id_covers_padding_after_the_archive() {
    let mut tar = simple_layer();
    tar.extend_from_slice(&[0u8; 4096]);
    let dest = tempfile::tempdir().unwrap();
    let stats = apply_layer(
        gzip(&tar).as_slice(),
        Compression::Gzip,
        dest.path(),
        WhiteoutMode::Native,
    )
    .unwrap();
    assert_eq!(stats.diff_id, Digest::of(&tar));
    assert_eq!(stats.uncompressed_size, tar.len() as u64);
}

#[test]
fn compression_from_media_type_and_sniffing() {
    let cases = [
        (
            "application/vnd.oci.image.layer.v1.tar",
            Some(Compression::None),
        ),
        (
            "application/vnd.oci.image.layer.v1.tar+gzip",
            Some(Compression::Gzip),
        ),
        (
            "application/vnd.oci.image.layer.v1.tar+zstd",
            Some(Compression::Zstd),
        ),
        (
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            Some(Compression::Gzip),
        ),
        (
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            Some(Compression::Gzip),
        ),
        (
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            Some(Compression::Gzip),
        ),
        ("application/vnd.oci.image.config.v1+json", None),
        ("application/vnd.oci.image.layer.v1.tar+lz4", None),
        ("", None),
    ];
    for (mt, want) in cases {
        assert_eq!(Compression::from_media_type(mt), want, "{mt}");
    }
    assert_eq!(Compression::sniff(&gzip(b"x")), Compression::Gzip);
    assert_eq!(Compression::sniff(&zstd(b"x")), Compression::Zstd);
    assert_eq!(Compression::sniff(&simple_layer()), Compression::None);
    assert_eq!(Compression::sniff(&[]), Compression::None);
}

#[test]
fn overlay_mode_writes_whiteout_devices_and_opaque_xattr() {
    let dest = tempfile::tempdir().unwrap();
    let tar = Layer::new()
        .file(".wh.gone", 0o644, b"")
        .dir("d/", 0o755)
        .file("d/.wh..wh..opq", 0o644, b"")
        .file("d/keep", 0o644, b"k")
        .file("e/.wh..wh..opq", 0o644, b"")
        .file(".wh..wh..plnk", 0o644, b"")
        .bytes();
    apply(&tar, dest.path(), WhiteoutMode::Overlay).unwrap();
    let gone = lmeta(&dest.path().join("gone"));
    assert!(gone.file_type().is_char_device());
    assert_eq!(gone.rdev(), 0);
    assert_eq!((gone.uid(), gone.gid()), (0, 0));
    for dir in ["d", "e"] {
        let value = super::xattr::lget(&dest.path().join(dir), b"trusted.overlay.opaque").unwrap();
        assert_eq!(value, b"y", "{dir}");
    }
    assert_eq!(read(&dest.path().join("d/keep")), "k");
    no_whiteout_files(dest.path());
}

#[test]
fn native_mode_deletes_whited_out_and_opaque_children() {
    let dest = tempfile::tempdir().unwrap();
    let lower = Layer::new()
        .file("gone", 0o644, b"")
        .file("gonedir/x/y", 0o644, b"")
        .file("d/old", 0o644, b"")
        .file("d/sub/old2", 0o644, b"")
        .file("d/sub2/old3", 0o644, b"")
        .file("other/stays", 0o644, b"")
        .bytes();
    apply(&lower, dest.path(), WhiteoutMode::Native).unwrap();
    let upper = Layer::new()
        .dir("d/", 0o755)
        .file("d/new", 0o644, b"n")
        .dir("d/sub/", 0o755)
        .file("d/.wh..wh..opq", 0o644, b"")
        .file("d/after", 0o644, b"a")
        .file(".wh.gone", 0o644, b"")
        .file(".wh.gonedir", 0o644, b"")
        .file(".wh.never-existed", 0o644, b"")
        .file("missing/.wh.x", 0o644, b"")
        .bytes();
    apply(&upper, dest.path(), WhiteoutMode::Native).unwrap();
    let want: Vec<PathBuf> = ["d", "d/after", "d/new", "d/sub", "other", "other/stays"]
        .iter()
        .map(PathBuf::from)
        .collect();
    assert_eq!(walk(dest.path()), want);
}

#[test]
fn file_deleted_and_re_added_in_both_modes() {
    let layers = [
        Layer::new().file("a", 0o644, b"one").bytes(),
        Layer::new().file(".wh.a", 0o644, b"").bytes(),
        Layer::new().file("a", 0o644, b"three").bytes(),
    ];
    let native = tempfile::tempdir().unwrap();
    apply(&layers[0], native.path(), WhiteoutMode::Native).unwrap();
    apply(&layers[1], native.path(), WhiteoutMode::Native).unwrap();
    assert!(!native.path().join("a").exists());
    apply(&layers[2], native.path(), WhiteoutMode::Native).unwrap();
    assert_eq!(read(&native.path().join("a")), "three");

    let diffs: Vec<_> = layers
        .iter()
        .map(|tar| {
            let dir = tempfile::tempdir().unwrap();
            apply(tar, dir.path(), WhiteoutMode::Overlay).unwrap();
            dir
        })
        .collect();
    assert!(lmeta(&diffs[1].path().join("a"))
        .file_type()
        .is_char_device());
    assert_eq!(read(&diffs[2].path().join("a")), "three");
}

#[test]
fn whiteout_does_not_hide_its_own_layer() {
    let dest = tempfile::tempdir().unwrap();
    let tar = Layer::new()
        .file("a", 0o644, b"mine")
        .file(".wh.a", 0o644, b"")
        .bytes();
    apply(&tar, dest.path(), WhiteoutMode::Native).unwrap();
    assert_eq!(read(&dest.path().join("a")), "mine");
}

#[test]
fn hard_link_keeps_old_content_when_target_is_replaced() {
    for mode in [WhiteoutMode::Overlay, WhiteoutMode::Native] {
        let dest = tempfile::tempdir().unwrap();
        let tar = Layer::new()
            .file("a", 0o644, b"old")
            .link("b", EntryType::Link, "./a")
            .file("a", 0o644, b"new")
            .bytes();
        apply(&tar, dest.path(), mode).unwrap();
        assert_eq!(read(&dest.path().join("a")), "new");
        assert_eq!(read(&dest.path().join("b")), "old");
    }
}

#[test]
fn hard_links_share_an_inode() {
    let dest = tempfile::tempdir().unwrap();
    let tar = Layer::new()
        .file("bin/x", 0o755, b"x")
        .link("bin/y", EntryType::Link, "bin/x")
        .bytes();
    apply(&tar, dest.path(), WhiteoutMode::Overlay).unwrap();
    let (x, y) = (
        lmeta(&dest.path().join("bin/x")),
        lmeta(&dest.path().join("bin/y")),
    );
    assert_eq!(x.ino(), y.ino());
    assert_eq!(x.nlink(), 2);
}

#[test]
fn keeps_types_modes_owners_times_and_xattrs() {
    let dest = tempfile::tempdir().unwrap();
    let tar = Layer::new()
        .owned_file("usr/bin/suid", 0o4755, 1000, b"#!/bin/sh\n")
        .dir("tmp/", 0o1777)
        .file("etc/shadowish", 0o640, b"secret")
        .dir("root/", 0o700)
        .file("root/.profile", 0o600, b"")
        .link("lib", EntryType::Symlink, "usr/lib")
        .node("dev/null", EntryType::Char, 1, 3)
        .node("dev/loop0", EntryType::Block, 7, 0)
        .node("run/fifo", EntryType::Fifo, 0, 0)
        .pax(&[
            ("SCHILY.xattr.user.foo", b"bar"),
            ("SCHILY.xattr.trusted.overlay.redirect", b"/x"),
        ])
        .file("etc/attr", 0o644, b"")
        .bytes();
    apply(&tar, dest.path(), WhiteoutMode::Overlay).unwrap();
    let p = |s: &str| dest.path().join(s);
    let mode = |s: &str| lmeta(&p(s)).permissions().mode() & 0o7777;

    let suid = lmeta(&p("usr/bin/suid"));
    assert_eq!((suid.uid(), suid.gid()), (1000, 1000));
    assert_eq!(mode("usr/bin/suid"), 0o4755);
    assert_eq!(suid.mtime(), MTIME as i64);
    assert_eq!(mode("tmp"), 0o1777);
    assert_eq!(mode("etc/shadowish"), 0o640);
    assert_eq!(mode("root"), 0o700);
    assert_eq!(
        lmeta(&p("root")).mtime(),
        MTIME as i64,
        "dir mtime set after its children"
    );
    assert_eq!(mode("usr"), 0o755, "implicit parents are 0755");
    assert_eq!(fs::read_link(p("lib")).unwrap(), Path::new("usr/lib"));
    assert_eq!(lmeta(&p("lib")).mtime(), MTIME as i64);
    let null = lmeta(&p("dev/null"));
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    assert_eq!(mode("dev/null"), 0o666);
    assert!(lmeta(&p("dev/loop0")).file_type().is_block_device());
    assert!(lmeta(&p("run/fifo")).file_type().is_fifo());
    assert_eq!(
        super::xattr::lget(&p("etc/attr"), b"user.foo").unwrap(),
        b"bar"
    );
    assert!(super::xattr::lget(&p("etc/attr"), b"trusted.overlay.redirect").is_err());
}

#[test]
fn long_names_from_gnu_and_pax_records() {
    let dest = tempfile::tempdir().unwrap();
    let long_dir = "d".repeat(120);
    let gnu_name = format!("{long_dir}/{}", "g".repeat(150));
    let pax_name = format!("{long_dir}/{}", "p".repeat(200));
    let tar = Layer::new()
        .long_file(&gnu_name, b"gnu")
        .pax(&[("path", pax_name.as_bytes())])
        .file("short-in-header", 0o644, b"pax")
        .bytes();
    apply(&tar, dest.path(), WhiteoutMode::Overlay).unwrap();
    assert_eq!(read(&dest.path().join(&gnu_name)), "gnu");
    assert_eq!(read(&dest.path().join(&pax_name)), "pax");
    assert!(!dest.path().join("short-in-header").exists());
}

#[test]
fn replaces_dir_with_file_and_file_with_dir() {
    let dest = tempfile::tempdir().unwrap();
    let lower = Layer::new()
        .file("x/inner", 0o644, b"")
        .file("y", 0o644, b"")
        .bytes();
    apply(&lower, dest.path(), WhiteoutMode::Native).unwrap();
    let upper = Layer::new()
        .file("x", 0o644, b"file")
        .dir("y/", 0o711)
        .bytes();
    apply(&upper, dest.path(), WhiteoutMode::Native).unwrap();
    assert_eq!(read(&dest.path().join("x")), "file");
    assert!(lmeta(&dest.path().join("y")).is_dir());
}

/// A destination inside a sentinel directory, to check nothing is written
/// beside it; `outside` is an existing directory an escape could write into.
struct Sandbox {
    outer: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let outer = tempfile::tempdir().unwrap();
        fs::create_dir(outer.path().join("dest")).unwrap();
        fs::create_dir(outer.path().join("outside")).unwrap();
        Sandbox { outer }
    }
    fn dest(&self) -> PathBuf {
        self.outer.path().join("dest")
    }
    fn outside(&self) -> PathBuf {
        self.outer.path().join("outside")
    }
    fn assert_untouched(&self) {
        let want = vec![PathBuf::from("dest"), PathBuf::from("outside")];
        let found: Vec<PathBuf> = walk(self.outer.path())
            .into_iter()
            .filter(|p| p.as_path() == Path::new("dest") || !p.starts_with("dest"))
            .collect();
        assert_eq!(found, want, "something was written outside dest");
    }
}

fn assert_escape(result: Result<LayerStats, UnpackError>, what: &str) {
    match result {
        Err(UnpackError::Escape { .. }) => {}
        other => panic!("{what}: expected an escape error, got {other:?}"),
    }
}

#[test]
fn rejects_escaping_paths() {
    for mode in [WhiteoutMode::Overlay, WhiteoutMode::Native] {
        let sandbox = Sandbox::new();
        let abs_outside = format!("{}/evil", sandbox.outside().display());
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("parent", Layer::new().file("../evil", 0o644, b"x").bytes()),
            (
                "inner parent",
                Layer::new().file("a/../../evil", 0o644, b"x").bytes(),
            ),
            (
                "dot parent",
                Layer::new().file("./../outside/evil", 0o644, b"x").bytes(),
            ),
            (
                "absolute",
                Layer::new().file("/etc/evil", 0o644, b"x").bytes(),
            ),
            (
                "absolute outside",
                Layer::new().file(&abs_outside, 0o644, b"x").bytes(),
            ),
            (
                "parent dir entry",
                Layer::new().dir("../outside/evil/", 0o755).bytes(),
            ),
            (
                "whiteout of parent",
                Layer::new().file(".wh...", 0o644, b"").bytes(),
            ),
            (
                "whiteout of dot",
                Layer::new().file("x/.wh..", 0o644, b"").bytes(),
            ),
            ("root replaced", Layer::new().file(".", 0o644, b"").bytes()),
        ];
        for (what, tar) in cases {
            assert_escape(apply(&tar, &sandbox.dest(), mode), what);
        }
        sandbox.assert_untouched();
    }
}

#[test]
fn rejects_writing_through_symlinks() {
    for mode in [WhiteoutMode::Overlay, WhiteoutMode::Native] {
        let sandbox = Sandbox::new();
        let outside = sandbox.outside();
        let target = outside.to_str().unwrap();
        let file_through = Layer::new()
            .link("link", EntryType::Symlink, target)
            .file("link/file", 0o644, b"x")
            .bytes();
        assert_escape(
            apply(&file_through, &sandbox.dest(), mode),
            "file through symlink",
        );
        fs::write(outside.join("victim"), b"v").unwrap();
        let whiteout_through = Layer::new().file("link/.wh.victim", 0o644, b"").bytes();
        assert_escape(
            apply(&whiteout_through, &sandbox.dest(), mode),
            "whiteout through symlink",
        );
        let opaque_through = Layer::new().file("link/.wh..wh..opq", 0o644, b"").bytes();
        assert_escape(
            apply(&opaque_through, &sandbox.dest(), mode),
            "opaque through symlink",
        );
        let relative = Layer::new()
            .link("up", EntryType::Symlink, "../outside")
            .file("up/sub/file", 0o644, b"x")
            .bytes();
        assert_escape(
            apply(&relative, &sandbox.dest(), mode),
            "relative symlink parent",
        );
        assert_eq!(fs::read(outside.join("victim")).unwrap(), b"v");
        fs::remove_file(outside.join("victim")).unwrap();
        sandbox.assert_untouched();
        assert!(lmeta(&sandbox.dest().join("link")).file_type().is_symlink());
    }
}

#[test]
fn a_symlink_at_the_final_component_is_replaced_not_followed() {
    let sandbox = Sandbox::new();
    let target = format!("{}/evil", sandbox.outside().display());
    let tar = Layer::new()
        .link("f", EntryType::Symlink, &target)
        .file("f", 0o644, b"mine")
        .bytes();
    apply(&tar, &sandbox.dest(), WhiteoutMode::Native).unwrap();
    assert_eq!(read(&sandbox.dest().join("f")), "mine");
    sandbox.assert_untouched();
}

#[test]
fn rejects_bad_hard_links() {
    let sandbox = Sandbox::new();
    fs::create_dir(sandbox.dest().join("dir")).unwrap();
    let outside = format!("{}/victim", sandbox.outside().display());
    fs::write(&outside, b"v").unwrap();
    let cases = [
        ("passwd", "../../etc/passwd"),
        ("absolute", "/etc/passwd"),
        ("absolute outside", outside.as_str()),
        ("missing", "nothing-here"),
        ("directory", "dir"),
    ];
    for (what, target) in cases {
        let tar = Layer::new().link("l", EntryType::Link, target).bytes();
        assert_escape(apply(&tar, &sandbox.dest(), WhiteoutMode::Native), what);
        assert!(!sandbox.dest().join("l").exists(), "{what}");
    }
    let through_symlink = Layer::new()
        .link("s", EntryType::Symlink, sandbox.outside().to_str().unwrap())
        .link("l", EntryType::Link, "s/victim")
        .bytes();
    assert_escape(
        apply(&through_symlink, &sandbox.dest(), WhiteoutMode::Native),
        "through symlink",
    );
    assert!(!sandbox.dest().join("l").exists());
    assert_eq!(lmeta(Path::new(&outside)).nlink(), 1);
}

#[test]
fn truncated_streams_are_corrupt() {
    let tar = Layer::new().file("big", 0o644, &vec![7u8; 100_000]).bytes();
    let gz = gzip(&tar);
    let dest = tempfile::tempdir().unwrap();
    let cut = &gz[..gz.len() / 2];
    let result = apply_layer(cut, Compression::Gzip, dest.path(), WhiteoutMode::Overlay);
    assert!(
        matches!(result, Err(UnpackError::Corrupt { .. })),
        "{result:?}"
    );

    let tail_cut = &gz[..gz.len() - 4];
    let result = apply_layer(
        tail_cut,
        Compression::Gzip,
        dest.path(),
        WhiteoutMode::Overlay,
    );
    assert!(
        matches!(result, Err(UnpackError::Corrupt { .. })),
        "{result:?}"
    );

    let plain_cut = &tar[..512 + 50_000];
    let result = apply(plain_cut, dest.path(), WhiteoutMode::Overlay);
    assert!(
        matches!(result, Err(UnpackError::Corrupt { .. })),
        "{result:?}"
    );

    let mut bad_checksum = tar.clone();
    bad_checksum[0] ^= 1;
    let result = apply(&bad_checksum, dest.path(), WhiteoutMode::Overlay);
    assert!(
        matches!(result, Err(UnpackError::Corrupt { .. })),
        "{result:?}"
    );

    let zst = zstd(&tar);
    let result = apply_layer(
        &zst[..zst.len() - 3],
        Compression::Zstd,
        dest.path(),
        WhiteoutMode::Overlay,
    );
    assert!(
        matches!(result, Err(UnpackError::Corrupt { .. })),
        "{result:?}"
    );
}

#[test]
fn wrong_compression_is_corrupt() {
    let dest = tempfile::tempdir().unwrap();
    let tar = simple_layer();
    let result = apply_layer(
        tar.as_slice(),
        Compression::Gzip,
        dest.path(),
        WhiteoutMode::Overlay,
    );
    assert!(
        matches!(result, Err(UnpackError::Corrupt { .. })),
        "{result:?}"
    );
}

#[test]
fn copy_tree_preserves_everything() {
    let src = tempfile::tempdir().unwrap();
    let tar = Layer::new()
        .owned_file("usr/bin/suid", 0o4755, 1000, b"s")
        .link("usr/bin/hard", EntryType::Link, "usr/bin/suid")
        .dir("tmp/", 0o1777)
        .file("etc/shadowish", 0o640, b"secret")
        .link("lib", EntryType::Symlink, "usr/lib")
        .node("dev/null", EntryType::Char, 1, 3)
        .node("run/fifo", EntryType::Fifo, 0, 0)
        .pax(&[("SCHILY.xattr.user.foo", b"bar")])
        .file("etc/attr", 0o644, b"")
        .file(".wh.gone", 0o644, b"")
        .file("d/.wh..wh..opq", 0o644, b"")
        .dir("d/", 0o750)
        .bytes();
    apply(&tar, src.path(), WhiteoutMode::Overlay).unwrap();
    let outer = tempfile::tempdir().unwrap();
    let dst = outer.path().join("copy");
    copy_tree(src.path(), &dst).unwrap();

    assert_eq!(walk(src.path()), walk(&dst));
    for rel in walk(src.path()) {
        let (a, b) = (lmeta(&src.path().join(&rel)), lmeta(&dst.join(&rel)));
        assert_eq!(a.mode(), b.mode(), "{rel:?}");
        assert_eq!((a.uid(), a.gid()), (b.uid(), b.gid()), "{rel:?}");
        assert_eq!(a.rdev(), b.rdev(), "{rel:?}");
        assert_eq!(a.nlink(), b.nlink(), "{rel:?}");
        assert_eq!(
            (a.mtime(), a.mtime_nsec()),
            (b.mtime(), b.mtime_nsec()),
            "{rel:?}"
        );
        let xattrs = |p: &Path| {
            let mut names = super::xattr::llist(p).unwrap();
            names.sort();
            names
        };
        assert_eq!(
            xattrs(&src.path().join(&rel)),
            xattrs(&dst.join(&rel)),
            "{rel:?}"
        );
    }
    let ino = |p: &str| lmeta(&dst.join(p)).ino();
    assert_eq!(ino("usr/bin/suid"), ino("usr/bin/hard"));
    assert_eq!(
        fs::read_link(dst.join("lib")).unwrap(),
        Path::new("usr/lib")
    );
    assert_eq!(
        super::xattr::lget(&dst.join("etc/attr"), b"user.foo").unwrap(),
        b"bar"
    );
    assert_eq!(
        super::xattr::lget(&dst.join("d"), b"trusted.overlay.opaque").unwrap(),
        b"y"
    );
    assert!(lmeta(&dst.join("gone")).file_type().is_char_device());
    assert_eq!(read(&dst.join("etc/shadowish")), "secret");
}

#[test]
fn copy_tree_skips_sockets() {
    let src = tempfile::tempdir().unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(src.path().join("sock")).unwrap();
    fs::write(src.path().join("f"), b"f").unwrap();
    let outer = tempfile::tempdir().unwrap();
    let dst = outer.path().join("copy");
    copy_tree(src.path(), &dst).unwrap();
    assert_eq!(walk(&dst), vec![PathBuf::from("f")]);
}
