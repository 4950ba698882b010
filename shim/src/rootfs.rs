//! Mounting the task's root filesystem (`CreateTaskRequest.rootfs`) onto `<bundle>/rootfs`.

use std::path::{Path, PathBuf};

use skiff_image_store::mount::{unmount, Mount};

use crate::error::{Result, ShimError};

/// One rootfs mount as containerd sends it (type, source, options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsMount {
    /// Mount type: "overlay" or "bind" (others are rejected).
    pub kind: String,
    /// Source path (ignored for overlay).
    pub source: String,
    /// Mount options, e.g. `lowerdir=...`, `rbind`, `ro`.
    pub options: Vec<String>,
}

/// Translates a containerd mount into an image-store mount.
pub fn translate(m: &RootfsMount) -> Result<Mount> {
    let bad = |why: String| ShimError::InvalidArgument(format!("rootfs mount {m:?}: {why}"));
    let has_bind = m.options.iter().any(|o| o == "bind" || o == "rbind");
    if m.kind == "overlay" {
        let mut lower = None;
        let mut upper = None;
        let mut work = None;
        for o in &m.options {
            if let Some(v) = o.strip_prefix("lowerdir=") {
                lower = Some(v);
            } else if let Some(v) = o.strip_prefix("upperdir=") {
                upper = Some(PathBuf::from(v));
            } else if let Some(v) = o.strip_prefix("workdir=") {
                work = Some(PathBuf::from(v));
            }
        }
        let lower: Vec<PathBuf> = lower
            .ok_or_else(|| bad("overlay without lowerdir=".into()))?
            .split(':')
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect();
        if lower.is_empty() {
            return Err(bad("empty lowerdir".into()));
        }
        let upper = match (upper, work) {
            (Some(u), Some(w)) => Some((u, w)),
            (None, None) => None,
            _ => return Err(bad("upperdir and workdir go together".into())),
        };
        Ok(Mount::Overlay { lower, upper })
    } else if m.kind == "bind" || has_bind {
        if m.source.is_empty() {
            return Err(bad("bind without a source".into()));
        }
        Ok(Mount::Bind {
            source: PathBuf::from(&m.source),
            readonly: m.options.iter().any(|o| o == "ro"),
        })
    } else {
        Err(bad(format!("unsupported mount type {:?}", m.kind)))
    }
}

/// Mounts `mounts` in order onto `<bundle>/rootfs` (created if missing). On failure,
/// everything mounted so far is unmounted again.
pub fn mount_all(bundle: &Path, mounts: &[RootfsMount]) -> Result<()> {
    if mounts.is_empty() {
        return Ok(());
    }
    let target = bundle.join("rootfs");
    let translated = mounts.iter().map(translate).collect::<Result<Vec<_>>>()?;
    std::fs::create_dir_all(&target).map_err(|e| ShimError::io("creating", &target, e))?;
    for (i, m) in translated.iter().enumerate() {
        if let Err(e) = m.mount(&target) {
            for _ in 0..i {
                let _ = unmount(&target);
            }
            return Err(ShimError::Mount(format!("mounting {m:?}: {e}")));
        }
    }
    Ok(())
}

/// Unmounts everything stacked on `<bundle>/rootfs` (not mounted is fine).
pub fn unmount_all(bundle: &Path) -> Result<()> {
    let target = bundle.join("rootfs");
    // Several mounts may be stacked; stop once nothing is mounted there any more.
    for _ in 0..16 {
        if !is_mountpoint(&target) {
            return Ok(());
        }
        unmount(&target).map_err(|e| ShimError::Mount(format!("unmounting: {e}")))?;
    }
    Err(ShimError::Mount(format!(
        "{} is still mounted after 16 unmounts",
        target.display()
    )))
}

/// Whether `path` is a mount point, by /proc/self/mountinfo.
pub fn is_mountpoint(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mp| unescape_mountinfo(mp) == want)
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kind: &str, source: &str, opts: &[&str]) -> RootfsMount {
        RootfsMount {
            kind: kind.into(),
            source: source.into(),
            options: opts.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn overlay() {
        let got = translate(&m(
            "overlay",
            "overlay",
            &["index=off", "lowerdir=/a:/b", "upperdir=/u", "workdir=/w"],
        ))
        .unwrap();
        assert_eq!(
            got,
            Mount::Overlay {
                lower: vec!["/a".into(), "/b".into()],
                upper: Some(("/u".into(), "/w".into()))
            }
        );
        assert!(translate(&m("overlay", "", &["upperdir=/u"])).is_err());
    }

    #[test]
    fn bind() {
        assert_eq!(
            translate(&m("none", "/src", &["rbind", "ro"])).unwrap(),
            Mount::Bind {
                source: "/src".into(),
                readonly: true
            }
        );
        assert!(translate(&m("tmpfs", "x", &[])).is_err());
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
    }
}
