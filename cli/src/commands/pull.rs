//! `skiff pull`.

use skiff_daemon::{Engine, EngineError};
use skiff_image_store::platform::Platform;
use skiff_image_store::PullOptions;

use crate::options::PullArgs;
use crate::progress::{self, Mode};

/// Pulls an image, showing progress; prints the fully qualified reference at the end.
pub async fn pull(engine: &Engine, a: &PullArgs) -> Result<u8, EngineError> {
    let platform = a
        .platform
        .as_deref()
        .map(str::parse::<Platform>)
        .transpose()?;
    let opts = PullOptions { platform };
    let img = engine
        .pull_image(&a.reference, &opts, progress::sink(Mode::detect(a.quiet)))
        .await?;
    let reference = skiff_image_store::ImageRef::parse(&a.reference)?;
    let _ = img;
    println!("{reference}");
    Ok(0)
}
