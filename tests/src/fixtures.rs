//! Fixture images built from Debian's busybox-static, deterministically, and
//! pushed to a [`Registry`] with `skopeo copy --preserve-digests`.
//!
//! Each `build_*` function makes the image in memory (no registry needed; write
//! it out with [`BuiltImage::write_layout`]); each push function returns the
//! facts a test checks against. All fixture images are OCI, linux/amd64 unless
//! said otherwise, with `Cmd ["sh"]` and a `PATH` in `Env`.
//!
//! | fixture | repository | layers |
//! |---|---|---|
//! | [`busybox`] | `fixtures/busybox` | 1, gzip |
//! | [`multilayer`] | `fixtures/multilayer` | 4, gzip: whiteouts, opaque dir, hard links, modes |
//! | [`zstd()`] | `fixtures/zstd` | 1, zstd |
//! | [`uncompressed`] | `fixtures/uncompressed` | 1, plain tar |
//! | [`many_layers`] | `fixtures/many-layers` | 106 (busybox + 105 one-file layers), gzip |
//! | [`multiarch`] | `fixtures/multiarch` | index: linux/arm64, linux/amd64, linux/arm/v7; 2 each |

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use crate::error::{Error, IoContext, Result};
use crate::expect::{self, ExpectedKind, ExpectedPath};
use crate::oci_layout::{
    sha256_digest, BuiltImage, BuiltIndex, BuiltLayer, Compression, LayerFacts, Platform, TarWriter,
};
use crate::registry::Registry;
use crate::tools::{is_static_elf, run, BUSYBOX};

/// `/etc/passwd` of every fixture rootfs: root, nobody, and `app` (uid 1000).
pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
";
/// `/etc/group` of every fixture rootfs.
pub const GROUP: &str = "root:x:0:
nobody:x:65534:
app:x:1000:
";
/// Number of one-file layers in [`many_layers`] (on top of the busybox layer).
pub const MANY_LAYERS: usize = 105;

/// A fixture image pushed to a registry, and the facts to check it against.
#[derive(Debug, Clone)]
pub struct FixtureImage {
    /// Pull reference by tag, "127.0.0.1:PORT/REPOSITORY:TAG".
    pub reference: String,
    /// Repository name inside the registry, e.g. "fixtures/busybox".
    pub repository: String,
    /// The tag that resolves to this image (for an index member: on its platform).
    pub tag: String,
    /// Digest of the manifest as stored and served ("sha256:HEX").
    pub manifest_digest: String,
    /// The manifest's media type (OCI image manifest).
    pub manifest_media_type: String,
    /// Digest of the config blob.
    pub config_digest: String,
    /// The layers, bottom first.
    pub layers: Vec<LayerFacts>,
    /// The platform in the config.
    pub platform: Platform,
    /// What the rootfs must look like once all layers are applied.
    pub expected: Vec<ExpectedPath>,
}

impl FixtureImage {
    /// Number of layers.
    pub fn layer_count(&self) -> usize {
        self.layers.len()
    }

    /// Pull reference by digest, "127.0.0.1:PORT/REPOSITORY@sha256:HEX".
    pub fn digest_reference(&self) -> String {
        let registry = self.reference.split('/').next().unwrap_or_default();
        format!("{registry}/{}@{}", self.repository, self.manifest_digest)
    }

    /// Checks an unpacked or mounted rootfs against [`FixtureImage::expected`]
    /// and that no `.wh.*` name is visible; returns every problem found.
    pub fn verify_rootfs(&self, root: &Path) -> std::result::Result<(), Vec<String>> {
        expect::verify_rootfs(root, &self.expected)
    }

    fn from_built(built: &BuiltImage, registry: &Registry, repository: &str, tag: &str) -> Self {
        FixtureImage {
            reference: format!("{}/{repository}:{tag}", registry.addr()),
            repository: repository.to_string(),
            tag: tag.to_string(),
            manifest_digest: built.manifest_digest.clone(),
            manifest_media_type: crate::oci_layout::MEDIA_TYPE_MANIFEST.to_string(),
            config_digest: built.config_digest.clone(),
            layers: built.layer_facts(),
            platform: built.platform.clone(),
            expected: built.expected.clone(),
        }
    }
}

/// A multi-platform fixture (an OCI image index) pushed to a registry.
#[derive(Debug, Clone)]
pub struct FixtureIndex {
    /// Pull reference by tag, "127.0.0.1:PORT/REPOSITORY:TAG".
    pub reference: String,
    /// Repository name inside the registry.
    pub repository: String,
    /// The tag of the index.
    pub tag: String,
    /// Digest of the index as stored and served.
    pub index_digest: String,
    /// The index's media type (OCI image index).
    pub index_media_type: String,
    /// The platform images, in index order.
    pub manifests: Vec<FixtureImage>,
}

impl FixtureIndex {
    /// The member for `architecture` (and `variant`, when given), if listed.
    pub fn for_platform(&self, architecture: &str, variant: Option<&str>) -> Option<&FixtureImage> {
        self.manifests.iter().find(|m| {
            m.platform.architecture == architecture
                && (variant.is_none() || m.platform.variant.as_deref() == variant)
        })
    }

    /// Pull reference of the index by digest.
    pub fn digest_reference(&self) -> String {
        let registry = self.reference.split('/').next().unwrap_or_default();
        format!("{registry}/{}@{}", self.repository, self.index_digest)
    }
}

// ---------------------------------------------------------------------------
// Pushing

/// Pushes `image` to `registry` as `repository:tag` with
/// `skopeo copy --preserve-digests`, then reads the manifest back and checks
/// that its digest is the one built.
pub fn push_image(
    registry: &Registry,
    image: &BuiltImage,
    repository: &str,
    tag: &str,
) -> Result<FixtureImage> {
    let layout = layout_dir(registry, repository)?;
    image.write_layout(&layout, tag)?;
    skopeo_push(registry, &layout, repository, tag, false)?;
    check_served_digest(registry, repository, tag, &image.manifest_digest)?;
    Ok(FixtureImage::from_built(image, registry, repository, tag))
}

/// Pushes `index` and its images to `registry` as `repository:tag` with
/// `skopeo copy --all --preserve-digests`, then checks the served digest.
pub fn push_index(
    registry: &Registry,
    index: &BuiltIndex,
    repository: &str,
    tag: &str,
) -> Result<FixtureIndex> {
    let layout = layout_dir(registry, repository)?;
    index.write_layout(&layout, tag)?;
    skopeo_push(registry, &layout, repository, tag, true)?;
    check_served_digest(registry, repository, tag, &index.index_digest)?;
    Ok(FixtureIndex {
        reference: format!("{}/{repository}:{tag}", registry.addr()),
        repository: repository.to_string(),
        tag: tag.to_string(),
        index_digest: index.index_digest.clone(),
        index_media_type: crate::oci_layout::MEDIA_TYPE_INDEX.to_string(),
        manifests: index
            .images
            .iter()
            .map(|image| FixtureImage::from_built(image, registry, repository, tag))
            .collect(),
    })
}

/// A fresh directory for one OCI layout under the registry's directory.
fn layout_dir(registry: &Registry, repository: &str) -> Result<PathBuf> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name: String = repository
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let dir = registry
        .dir()
        .join("layouts")
        .join(format!("{}-{n}-{name}", std::process::id()));
    if dir.exists() {
        fs::remove_dir_all(&dir).ctx(|| format!("removing {}", dir.display()))?;
    }
    fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

fn skopeo_push(
    registry: &Registry,
    layout: &Path,
    repository: &str,
    tag: &str,
    all: bool,
) -> Result<()> {
    let mut command = Command::new("skopeo");
    command.args([
        "--insecure-policy",
        "copy",
        "--quiet",
        "--preserve-digests",
        "--dest-tls-verify=false",
    ]);
    if all {
        command.arg("--all");
    }
    if let Some((user, password)) = registry.credentials() {
        command.arg(format!("--dest-creds={user}:{password}"));
    }
    command
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{}/{repository}:{tag}", registry.addr()));
    let result = run(&mut command).map(drop);
    // The layout was only a vehicle for skopeo.
    let _ = fs::remove_dir_all(layout);
    result
}

fn check_served_digest(
    registry: &Registry,
    repository: &str,
    tag: &str,
    expected: &str,
) -> Result<()> {
    let response = registry.get_manifest(repository, tag)?;
    if response.status != 200 {
        return Err(Error::Unexpected(format!(
            "GET manifest {repository}:{tag} answered {} after the push: {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        )));
    }
    let served = sha256_digest(&response.body);
    if served != expected {
        return Err(Error::Unexpected(format!(
            "{repository}:{tag} is served with digest {served}, but {expected} was pushed \
             (did skopeo rewrite the manifest?)"
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The busybox rootfs

/// The uncompressed tar of the busybox rootfs (built once per process):
/// `/bin/busybox` plus a symlink `/bin/APPLET -> busybox` for every applet of
/// `busybox --list`, `/etc/passwd`, `/etc/group`, `/tmp` 1777, `/root` 0700,
/// `/home/app` owned by 1000:1000.
pub fn busybox_rootfs_tar() -> Result<Vec<u8>> {
    static TAR: OnceLock<std::result::Result<Vec<u8>, String>> = OnceLock::new();
    TAR.get_or_init(|| make_busybox_rootfs_tar().map_err(|e| e.to_string()))
        .clone()
        .map_err(Error::Unexpected)
}

fn make_busybox_rootfs_tar() -> Result<Vec<u8>> {
    let busybox = Path::new(BUSYBOX);
    if !is_static_elf(busybox)? {
        return Err(Error::Unexpected(format!(
            "{BUSYBOX} is dynamically linked; fixtures need busybox-static"
        )));
    }
    let binary = fs::read(busybox).ctx(|| format!("reading {BUSYBOX}"))?;
    let list = run(Command::new(BUSYBOX).arg("--list"))?;
    let list = String::from_utf8(list)
        .map_err(|_| Error::Unexpected(format!("`{BUSYBOX} --list` printed non-UTF-8")))?;
    let mut applets: Vec<&str> = list
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/'))
        .collect();
    applets.sort_unstable();
    applets.dedup();
    if !applets.contains(&"sh") {
        return Err(Error::Unexpected(format!("{BUSYBOX} has no `sh` applet")));
    }

    let mut tar = TarWriter::new();
    tar.dir("bin", 0o755).file("bin/busybox", 0o755, &binary);
    for applet in applets {
        tar.symlink(&format!("bin/{applet}"), "busybox");
    }
    tar.dir("etc", 0o755)
        .file("etc/passwd", 0o644, PASSWD.as_bytes())
        .file("etc/group", 0o644, GROUP.as_bytes())
        .dir("home", 0o755)
        .dir_owned("home/app", 0o755, 1000, 1000)
        .dir("root", 0o700)
        .dir("tmp", 0o1777);
    Ok(tar.finish())
}

/// The busybox rootfs as a layer blob with `compression` (compressed once per
/// process and compression).
pub fn busybox_layer(compression: Compression) -> Result<BuiltLayer> {
    static LAYERS: [OnceLock<std::result::Result<BuiltLayer, String>>; 3] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = match compression {
        Compression::None => &LAYERS[0],
        Compression::Gzip => &LAYERS[1],
        Compression::Zstd => &LAYERS[2],
    };
    slot.get_or_init(|| {
        busybox_rootfs_tar()
            .and_then(|tar| BuiltLayer::new(&tar, compression))
            .map_err(|e| e.to_string())
    })
    .clone()
    .map_err(Error::Unexpected)
}

/// What every fixture rootfs contains.
fn busybox_expected() -> Result<Vec<ExpectedPath>> {
    let binary = fs::read(BUSYBOX).ctx(|| format!("reading {BUSYBOX}"))?;
    Ok(vec![
        ExpectedPath::new(
            "/bin/busybox",
            ExpectedKind::FileDigest(sha256_digest(&binary)),
        )
        .mode(0o755)
        .owner(0, 0),
        ExpectedPath::symlink("/bin/sh", "busybox"),
        ExpectedPath::symlink("/bin/ls", "busybox"),
        ExpectedPath::file("/etc/passwd", PASSWD.as_bytes()).mode(0o644),
        ExpectedPath::file("/etc/group", GROUP.as_bytes()).mode(0o644),
        ExpectedPath::dir("/home/app").mode(0o755).owner(1000, 1000),
        ExpectedPath::dir("/root").mode(0o700).owner(0, 0),
        ExpectedPath::dir("/tmp").mode(0o1777).owner(0, 0),
    ])
}

/// A single-layer busybox image with the given layer compression.
fn busybox_image(compression: Compression) -> Result<BuiltImage> {
    let layer = busybox_layer(compression)?;
    BuiltImage::new(vec![layer], Platform::linux_amd64(), busybox_expected()?)
}

// ---------------------------------------------------------------------------
// The fixtures, built

/// Builds `busybox`: one gzip layer holding the busybox rootfs.
pub fn build_busybox() -> Result<BuiltImage> {
    busybox_image(Compression::Gzip)
}

/// Builds `zstd`: the busybox rootfs in one zstd layer
/// (`application/vnd.oci.image.layer.v1.tar+zstd`); its diff_id equals that
/// of [`build_busybox`], its blob digest does not.
pub fn build_zstd() -> Result<BuiltImage> {
    busybox_image(Compression::Zstd)
}

/// Builds `uncompressed`: the busybox rootfs as one plain tar layer
/// (`application/vnd.oci.image.layer.v1.tar`, digest == diff_id).
pub fn build_uncompressed() -> Result<BuiltImage> {
    busybox_image(Compression::None)
}

/// Contents of the multilayer fixture's files.
pub mod multilayer_content {
    /// `/data/keep.txt` (0640, 1000:1000), from layer 2.
    pub const KEEP: &[u8] = b"keep\n";
    /// `/data/gone.txt` in layer 2, deleted in layer 3.
    pub const GONE_FIRST: &[u8] = b"gone\n";
    /// `/data/gone.txt` as re-added by layer 4.
    pub const GONE_BACK: &[u8] = b"back\n";
    /// `/etc/motd`, from layer 2.
    pub const MOTD: &[u8] = b"welcome to the skiff multilayer fixture\n";
    /// `/hl/orig` and its hard link `/hl/link` in layer 2; `/hl/link` keeps it.
    pub const HL_ORIGINAL: &[u8] = b"original\n";
    /// `/hl/orig` as replaced by layer 3.
    pub const HL_REPLACED: &[u8] = b"replaced\n";
    /// `/opq/new`, added by layer 3 in the opaque `/opq`.
    pub const OPQ_NEW: &[u8] = b"new\n";
    /// `/usr/local/bin/suid-demo` (04755).
    pub const SUID: &[u8] = b"#!/bin/sh\necho suid-demo\n";
    /// `/private/secret.txt` (0600) in the 0700 `/private`.
    pub const SECRET: &[u8] = b"secret\n";
}

/// Path of the multilayer fixture's file whose name needs a PAX header.
pub fn multilayer_long_path() -> String {
    format!("data/long/{}.txt", "0123456789abcdef".repeat(11))
}

/// Builds `multilayer`: four gzip layers.
///
/// 1. the busybox rootfs;
/// 2. `/data/keep.txt` (0640, 1000:1000), `/data/gone.txt`, `/opq/old1`,
///    `/opq/old2`, `/etc/motd`, `/hl/orig` with hard link `/hl/link`, symlink
///    `/sl -> /data/keep.txt`, `/private` (0700) with `secret.txt` (0600),
///    setuid `/usr/local/bin/suid-demo` (04755), and a file with a 190-byte
///    path (PAX header) under `/data/long/`;
/// 3. whiteout `/data/.wh.gone.txt`, opaque `/opq/.wh..wh..opq` plus
///    `/opq/new`, and a new `/hl/orig` (so `/hl/link` keeps the old content);
/// 4. `/data/gone.txt` again, content "back\n".
pub fn build_multilayer() -> Result<BuiltImage> {
    use multilayer_content::*;
    let long = multilayer_long_path();
    let base = busybox_layer(Compression::Gzip)?;

    let mut two = TarWriter::new();
    two.dir("data", 0o755)
        .file_owned("data/keep.txt", 0o640, 1000, 1000, KEEP)
        .file("data/gone.txt", 0o644, GONE_FIRST)
        .dir("data/long", 0o755)
        .file(&long, 0o644, b"long\n")
        .dir("etc", 0o755)
        .file("etc/motd", 0o644, MOTD)
        .dir("hl", 0o755)
        .file("hl/orig", 0o644, HL_ORIGINAL)
        .hardlink("hl/link", "hl/orig")
        .dir("opq", 0o755)
        .file("opq/old1", 0o644, b"old1\n")
        .file("opq/old2", 0o644, b"old2\n")
        .dir("private", 0o700)
        .file("private/secret.txt", 0o600, SECRET)
        .symlink("sl", "/data/keep.txt")
        .dir("usr", 0o755)
        .dir("usr/local", 0o755)
        .dir("usr/local/bin", 0o755)
        .file("usr/local/bin/suid-demo", 0o4755, SUID);

    let mut three = TarWriter::new();
    three
        .dir("data", 0o755)
        .whiteout("data/gone.txt")
        .dir("hl", 0o755)
        .file("hl/orig", 0o644, HL_REPLACED)
        .dir("opq", 0o755)
        .opaque("opq")
        .file("opq/new", 0o644, OPQ_NEW);

    let mut four = TarWriter::new();
    four.dir("data", 0o755)
        .file("data/gone.txt", 0o644, GONE_BACK);

    let mut expected = busybox_expected()?;
    expected.extend([
        ExpectedPath::file("/data/keep.txt", KEEP)
            .mode(0o640)
            .owner(1000, 1000),
        ExpectedPath::file("/data/gone.txt", GONE_BACK).mode(0o644),
        ExpectedPath::file(&format!("/{long}"), b"long\n"),
        ExpectedPath::file("/etc/motd", MOTD),
        ExpectedPath::file("/hl/orig", HL_REPLACED),
        ExpectedPath::file("/hl/link", HL_ORIGINAL),
        ExpectedPath::absent("/opq/old1"),
        ExpectedPath::absent("/opq/old2"),
        ExpectedPath::file("/opq/new", OPQ_NEW),
        ExpectedPath::dir("/opq").mode(0o755),
        ExpectedPath::dir("/private").mode(0o700),
        ExpectedPath::file("/private/secret.txt", SECRET).mode(0o600),
        ExpectedPath::symlink("/sl", "/data/keep.txt"),
        ExpectedPath::file("/usr/local/bin/suid-demo", SUID)
            .mode(0o4755)
            .owner(0, 0),
    ]);
    let layers = vec![
        base,
        BuiltLayer::new(&two.finish(), Compression::Gzip)?,
        BuiltLayer::new(&three.finish(), Compression::Gzip)?,
        BuiltLayer::new(&four.finish(), Compression::Gzip)?,
    ];
    BuiltImage::new(layers, Platform::linux_amd64(), expected)
}

/// Builds `many-layers`: the busybox layer plus [`MANY_LAYERS`] gzip layers,
/// layer `i` adding `/layers/NNN` (NNN = i, zero-padded) with content "NNN\n".
pub fn build_many_layers() -> Result<BuiltImage> {
    let mut layers = vec![busybox_layer(Compression::Gzip)?];
    let mut expected = busybox_expected()?;
    for i in 0..MANY_LAYERS {
        let name = format!("{i:03}");
        let content = format!("{name}\n");
        let mut tar = TarWriter::new();
        tar.dir("layers", 0o755)
            .file(&format!("layers/{name}"), 0o644, content.as_bytes());
        layers.push(BuiltLayer::new(&tar.finish(), Compression::Gzip)?);
        expected.push(ExpectedPath::file(
            &format!("/layers/{name}"),
            content.as_bytes(),
        ));
    }
    BuiltImage::new(layers, Platform::linux_amd64(), expected)
}

/// Builds `multiarch`: an OCI index listing linux/arm64 FIRST, then
/// linux/amd64, then linux/arm/v7. Each image is the busybox layer plus a
/// layer with `/arch.txt` = "ARCH\n" ("arm64", "amd64", "arm").
pub fn build_multiarch() -> Result<BuiltIndex> {
    let platforms = [
        Platform::new("linux", "arm64", None),
        Platform::new("linux", "amd64", None),
        Platform::new("linux", "arm", Some("v7")),
    ];
    let base = busybox_layer(Compression::Gzip)?;
    let mut images = Vec::new();
    for platform in platforms {
        let content = format!("{}\n", platform.architecture);
        let mut tar = TarWriter::new();
        tar.file("arch.txt", 0o644, content.as_bytes());
        let mut expected = busybox_expected()?;
        expected.push(ExpectedPath::file("/arch.txt", content.as_bytes()));
        let layers = vec![
            base.clone(),
            BuiltLayer::new(&tar.finish(), Compression::Gzip)?,
        ];
        images.push(BuiltImage::new(layers, platform, expected)?);
    }
    BuiltIndex::new(images)
}

// ---------------------------------------------------------------------------
// The fixtures, pushed under their default names

/// Pushes [`build_busybox`] as `fixtures/busybox:latest`.
pub fn busybox(registry: &Registry) -> Result<FixtureImage> {
    push_busybox_as(registry, "fixtures/busybox", "latest")
}

/// Pushes the busybox image as `repository:tag`, e.g. `("library/alpine",
/// "latest")` to make `registry` serve as a docker.io mirror.
pub fn push_busybox_as(registry: &Registry, repository: &str, tag: &str) -> Result<FixtureImage> {
    push_image(registry, &build_busybox()?, repository, tag)
}

/// Pushes [`build_multilayer`] as `fixtures/multilayer:latest`.
pub fn multilayer(registry: &Registry) -> Result<FixtureImage> {
    push_multilayer_as(registry, "fixtures/multilayer", "latest")
}

/// Pushes the multilayer image as `repository:tag`.
pub fn push_multilayer_as(
    registry: &Registry,
    repository: &str,
    tag: &str,
) -> Result<FixtureImage> {
    push_image(registry, &build_multilayer()?, repository, tag)
}

/// Pushes [`build_zstd`] as `fixtures/zstd:latest`.
pub fn zstd(registry: &Registry) -> Result<FixtureImage> {
    push_image(registry, &build_zstd()?, "fixtures/zstd", "latest")
}

/// Pushes [`build_uncompressed`] as `fixtures/uncompressed:latest`.
pub fn uncompressed(registry: &Registry) -> Result<FixtureImage> {
    push_image(
        registry,
        &build_uncompressed()?,
        "fixtures/uncompressed",
        "latest",
    )
}

/// Pushes [`build_many_layers`] as `fixtures/many-layers:latest`.
pub fn many_layers(registry: &Registry) -> Result<FixtureImage> {
    push_image(
        registry,
        &build_many_layers()?,
        "fixtures/many-layers",
        "latest",
    )
}

/// Pushes [`build_multiarch`] as `fixtures/multiarch:latest`.
pub fn multiarch(registry: &Registry) -> Result<FixtureIndex> {
    push_index(
        registry,
        &build_multiarch()?,
        "fixtures/multiarch",
        "latest",
    )
}
