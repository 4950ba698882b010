//! `skiff exec`.

use std::io::Write;

use skiff_daemon::container::exec::ExecOptions;
use skiff_daemon::{Engine, EngineError};

use crate::options::ExecArgs;

fn pump(path: std::path::PathBuf, to_stderr: bool) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let Ok(mut f) = std::fs::File::open(&path) else {
            return;
        };
        if to_stderr {
            let _ = std::io::copy(&mut f, &mut std::io::stderr().lock());
        } else {
            let mut buf = [0u8; 8192];
            use std::io::Read;
            while let Ok(n) = f.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut out = std::io::stdout().lock();
                if out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                    break;
                }
            }
        }
    })
}

/// Runs a command in a running container and exits with its code.
pub fn exec(engine: &Engine, a: &ExecArgs) -> Result<u8, EngineError> {
    let opts = ExecOptions {
        cmd: a.command.clone(),
        env: a.env.clone(),
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        stdin: a.interactive && !a.detach,
        tty: a.tty,
        privileged: a.privileged,
        detach: a.detach,
    };
    let session = engine.exec_create(&a.container, &opts)?;
    if a.tty {
        // Before start: the shim keeps the size until the terminal exists, so the
        // process never sees a 0x0 terminal.
        if let Some((cols, rows)) = crate::tty::size() {
            let _ = engine.exec_resize(&session, cols, rows);
        }
    }
    // With a terminal the shim writes everything to stdout and never opens the stderr
    // FIFO, so reading it would block forever.
    let readers = match (a.detach, session.tty) {
        (true, _) => vec![],
        (false, true) => vec![pump(session.stdout.clone(), false)],
        (false, false) => vec![
            pump(session.stdout.clone(), false),
            pump(session.stderr.clone(), true),
        ],
    };
    if let Some(fifo) = session.stdin.clone() {
        std::thread::spawn(move || {
            if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&fifo) {
                let _ = std::io::copy(&mut std::io::stdin().lock(), &mut f);
            }
        });
    }
    if let Err(e) = engine.exec_start(&session) {
        engine.exec_cleanup(&session);
        return Err(e);
    }
    if a.detach {
        return Ok(0);
    }
    let _raw = a.tty.then(crate::tty::RawMode::enter);
    let resizer = a.tty.then(|| {
        let (engine, s) = (engine.clone(), session.clone());
        crate::tty::follow_size(move |c, r| {
            let _ = engine.exec_resize(&s, c, r);
        })
    });
    let code = engine.exec_wait(&session);
    if let Some(r) = resizer {
        r.store(true, std::sync::atomic::Ordering::Release);
    }
    engine.exec_cleanup(&session);
    for r in readers {
        let _ = r.join();
    }
    let code = code?;
    Ok(u8::try_from(code & 0xff).unwrap_or(255))
}
