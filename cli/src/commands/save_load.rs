//! `skiff save` / `skiff load`.

use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal, Write};

use skiff_daemon::{Engine, EngineError};
use skiff_image_store::StoreError;

use crate::options::{LoadArgs, SaveArgs};

fn io_err(
    context: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> EngineError {
    let path = path.to_path_buf();
    move |e| EngineError::Image(StoreError::io(context, path)(e))
}

/// Writes images as a tar archive to a file or stdout.
pub fn save(engine: &Engine, a: &SaveArgs) -> Result<u8, EngineError> {
    match &a.output {
        Some(path) => {
            let tmp = path.with_extension("skiff-partial");
            let file = File::create(&tmp).map_err(io_err("creating", &tmp))?;
            let mut out = BufWriter::new(file);
            let result = engine.images().save(&a.images, &mut out);
            if let Err(e) = result
                .map_err(EngineError::from)
                .and_then(|_| out.flush().map_err(io_err("writing", &tmp)))
            {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            std::fs::rename(&tmp, path).map_err(io_err("renaming", path))?;
        }
        None => {
            if std::io::stdout().is_terminal() {
                return Err(EngineError::Config {
                    path: "save".into(),
                    why: "cowardly refusing to save to a terminal. Use the -o flag or redirect"
                        .into(),
                });
            }
            let stdout = std::io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            engine.images().save(&a.images, &mut out)?;
            out.flush()
                .map_err(io_err("writing", std::path::Path::new("stdout")))?;
        }
    }
    Ok(0)
}

/// Reads images from a tar archive (file or stdin) or an OCI layout directory.
pub fn load(engine: &Engine, a: &LoadArgs) -> Result<u8, EngineError> {
    let loaded = match &a.input {
        Some(p) if p.is_dir() => engine.images().load_oci_dir(p, None)?,
        Some(p) => {
            let f = File::open(p).map_err(io_err("opening", p))?;
            engine.images().load(BufReader::new(f))?
        }
        None => {
            if std::io::stdin().is_terminal() {
                return Err(EngineError::Config {
                    path: "load".into(),
                    why: "requested load from stdin, but stdin is empty".into(),
                });
            }
            engine
                .images()
                .load(BufReader::new(std::io::stdin().lock()))?
        }
    };
    if !a.quiet {
        for img in loaded {
            if img.tags.is_empty() {
                println!("Loaded image ID: {}", img.id);
            }
            for t in img.tags {
                println!("Loaded image: {t}");
            }
        }
    }
    Ok(0)
}
