//! One module per command; `run` dispatches and returns the process exit code.

pub(crate) mod attach;
mod exec;
mod images;
mod info;
mod lifecycle;
mod login;
mod logs;
pub mod network;
pub(crate) mod ps;
mod pull;
mod rmi;
pub(crate) mod run;
mod save_load;
mod stats;
pub mod volume;

use skiff_daemon::{Engine, EngineError};

use crate::options::{Cli, Command, ContainerCommand, ImageCommand};

/// Runs the parsed command line: through skiffd when one serves this run root (or
/// `--host`), else in-process.
pub async fn run(cli: Cli) -> Result<u8, EngineError> {
    let mut config = cli.global.engine_config()?;
    match crate::remote::connect(&cli.global, &config).await {
        Ok(Some(remote)) => {
            if let Some(result) = crate::remote::dispatch(&remote, &cli.command).await {
                return Ok(result.unwrap_or_else(|e| crate::remote::report(&e)));
            }
            // Not carried by the API: run in-process on skiffd's own store.
            match remote.data_root().await {
                Ok(root) => config.data_root = root,
                Err(e) => return Ok(crate::remote::report(&e)),
            }
        }
        Ok(None) => {}
        Err(e) => return Ok(crate::remote::report(&e)),
    }
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
        Command::Run(a) => run::run(&engine, &a).await,
        Command::Create(a) => run::create(&engine, &a).await,
        Command::Start(a) => lifecycle::start(&engine, &a).await,
        Command::Stop(a) => lifecycle::stop(&engine, &a, false).await,
        Command::Restart(a) => lifecycle::stop(&engine, &a, true).await,
        Command::Kill(a) => lifecycle::kill(&engine, &a),
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => {
            lifecycle::rm(&engine, &a).await
        }
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => ps::ps(&engine, &a),
        Command::Logs(a) => logs::logs(&engine, &a),
        Command::Wait { containers } => lifecycle::wait(&engine, &containers).await,
        Command::Pause { containers } => lifecycle::pause(&engine, &containers, false),
        Command::Unpause { containers } => lifecycle::pause(&engine, &containers, true),
        Command::Top { container } => lifecycle::top(&engine, &container),
        Command::Rename {
            container,
            new_name,
        } => {
            engine.rename_container(&container, &new_name)?;
            Ok(0)
        }
        Command::Exec(a) => exec::exec(&engine, &a),
        Command::Attach(a) => attach::attach(&engine, &a).await,
        Command::Cp { src, dst } => {
            let side = |s: &str| {
                s.split_once(':')
                    .filter(|(c, _)| !c.is_empty() && !c.contains('/'))
                    .map(|(c, p)| (c.to_string(), p.to_string()))
            };
            match (side(&src), side(&dst)) {
                (Some((c, p)), None) => engine.copy_from_container(&c, &p, std::path::Path::new(&dst))?,
                (None, Some((c, p))) => engine.copy_to_container(&c, std::path::Path::new(&src), &p)?,
                _ => {
                    return Err(EngineError::InvalidInput(
                        "copying between containers or between local paths is not supported; one side must be CONTAINER:PATH".into(),
                    ))
                }
            }
            Ok(0)
        }
        Command::Stats {
            no_stream,
            all,
            containers,
        } => stats::stats(&engine, no_stream, all, &containers),
        Command::Inspect { names } => lifecycle::inspect(&engine, &names, true),
        Command::Container(ContainerCommand::Inspect { containers }) => {
            lifecycle::inspect(&engine, &containers, false)
        }
        Command::Container(ContainerCommand::Prune { .. }) => lifecycle::prune(&engine),
        Command::Network(c) => network::run(&engine, c),
        Command::Volume(c) => volume::run(&engine, c),
        Command::Port { container, port } => network::port(&engine, &container, port.as_deref()),
    }
}
