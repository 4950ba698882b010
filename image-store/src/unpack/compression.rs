//! Layer compression: recognising it and opening a streaming decoder.

use std::io::{self, Read};

/// How a layer is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar stream.
    None,
    /// gzip, possibly several concatenated members.
    Gzip,
    /// zstd, possibly several concatenated frames.
    Zstd,
}

/// Media-type endings naming a compression, checked in order.
const SUFFIXES: [(&str, Compression); 5] = [
    ("+gzip", Compression::Gzip),
    (".gzip", Compression::Gzip),
    (".gz", Compression::Gzip),
    ("+zstd", Compression::Zstd),
    (".zstd", Compression::Zstd),
];

impl Compression {
    /// The compression of a layer with OCI or Docker media type `mt`
    /// (`….tar`, `….tar+gzip`, `….tar+zstd`, Docker's `….rootfs.diff.tar.gzip`);
    /// `None` if `mt` is not a tar layer type skiff knows.
    pub fn from_media_type(mt: &str) -> Option<Compression> {
        let essence = mt
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let (base, compression) = SUFFIXES
            .iter()
            .find_map(|(suffix, c)| essence.strip_suffix(suffix).map(|base| (base, *c)))
            .unwrap_or((essence.as_str(), Compression::None));
        base.ends_with(".tar").then_some(compression)
    }

    /// The compression announced by the first bytes of a layer (gzip `1f 8b`,
    /// zstd `28 b5 2f fd`); anything else is taken to be a plain tar.
    pub fn sniff(first: &[u8]) -> Compression {
        if first.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if first.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// Wraps `input` in a streaming decoder for this compression.
    pub(crate) fn decoder<'a, R: Read + 'a>(self, input: R) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Compression::None => Box::new(input),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(input)?),
        })
    }
}
