//! `skiff info`.

use skiff_daemon::{Engine, EngineError};

/// Prints what the engine is and where it keeps things.
pub fn info(engine: &Engine) -> Result<u8, EngineError> {
    let images = engine.list_images()?;
    let store = engine.images();
    let c = engine.config();
    println!("Client: skiff {}", env!("CARGO_PKG_VERSION"));
    println!(" Mode: daemonless (embedded engine)");
    println!();
    println!("Server:");
    println!(" Images: {}", images.len());
    println!(" Storage Driver: {}", store.snapshotter().name());
    println!(" Skiff Root Dir: {}", c.data_root.display());
    println!(" Run Root Dir: {}", c.run_root.display());
    println!(" Default Platform: {}", store.platform());
    println!(" Insecure Registries:");
    for r in &c.insecure_registries {
        println!("  {r}");
    }
    println!("  127.0.0.0/8");
    println!("  ::1/128");
    if !c.registry_mirrors.is_empty() {
        println!(" Registry Mirrors:");
        for m in &c.registry_mirrors {
            println!("  {m}");
        }
    }
    Ok(0)
}
