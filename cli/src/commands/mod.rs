//! One module per command; `run` dispatches and returns the process exit code.

mod images;
mod info;
mod login;
mod pull;
mod rmi;
mod save_load;

use skiff_daemon::{Engine, EngineError};

use crate::options::{Cli, Command, ImageCommand};

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<u8, EngineError> {
    let config = cli.global.engine_config()?;
    let engine = Engine::open(config)?;
    match cli.command {
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => pull::pull(&engine, &a).await,
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::list(&engine, &a),
        Command::Image(ImageCommand::Inspect { images }) => images::inspect(&engine, &images),
        Command::Tag { source, target } | Command::Image(ImageCommand::Tag { source, target }) => {
            engine.images().tag(&source, &target)?;
            Ok(0)
        }
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => rmi::rmi(&engine, &a),
        Command::Image(ImageCommand::Prune { all, .. }) => rmi::prune(&engine, all),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => save_load::save(&engine, &a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => save_load::load(&engine, &a),
        Command::Image(ImageCommand::Mount { image, target }) => {
            images::mount(&engine, &image, &target)
        }
        Command::Image(ImageCommand::Umount { target }) => images::umount(&target),
        Command::Login(a) => login::login(&engine, &a).await,
        Command::Logout { server } => login::logout(&engine, server.as_deref()),
        Command::Info => info::info(&engine),
    }
}
