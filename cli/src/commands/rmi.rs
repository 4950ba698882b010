//! `skiff rmi` and `image prune`.

use skiff_daemon::{Engine, EngineError};
use skiff_image_store::gc::RemoveAction;

use crate::format::human_size;
use crate::options::RmiArgs;

fn print_actions(actions: &[RemoveAction]) {
    for a in actions {
        match a {
            RemoveAction::Untagged(t) => println!("Untagged: {t}"),
            RemoveAction::Deleted(d) => println!("Deleted: {d}"),
        }
    }
}

/// Removes images; like docker, goes on after an error and exits 1 if any failed.
pub fn rmi(engine: &Engine, a: &RmiArgs) -> Result<u8, EngineError> {
    let mut code = 0;
    for name in &a.images {
        match engine.remove_image(name, a.force) {
            Ok(actions) => print_actions(&actions),
            Err(e) => {
                eprintln!("Error response from skiff: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// Removes dangling (or all unused) images and frees their space.
pub fn prune(engine: &Engine, all: bool) -> Result<u8, EngineError> {
    let (actions, report) = engine.prune_images(all)?;
    if !actions.is_empty() {
        println!("Deleted Images:");
        print_actions(&actions);
        println!();
    }
    println!("Total reclaimed space: {}", human_size(report.bytes_freed));
    Ok(0)
}
