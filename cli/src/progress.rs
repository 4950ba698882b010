//! Renders pull progress like `docker pull`: one bar per layer on a TTY, plain status
//! lines otherwise, nothing but the final reference with `--quiet`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use skiff_image_store::{ProgressSink, PullEvent};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bars (stdout is a terminal).
    Bars,
    /// One line per step.
    Lines,
    /// Nothing.
    Quiet,
}

impl Mode {
    /// Bars on a terminal, lines elsewhere, nothing if quiet.
    pub fn detect(quiet: bool) -> Mode {
        if quiet {
            Mode::Quiet
        } else if std::io::stdout().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        }
    }
}

struct Bars {
    multi: MultiProgress,
    stderr: bool,
    bars: HashMap<String, ProgressBar>,
}

fn short(d: &skiff_image_store::Digest) -> String {
    d.short().to_string()
}

/// A progress sink printing to stdout in `mode`.
pub fn sink(mode: Mode) -> ProgressSink {
    sink_to(mode, false)
}

/// A progress sink printing to stderr (for pulls that `run` does on the way).
pub fn sink_stderr(quiet: bool) -> ProgressSink {
    let mode = if quiet {
        Mode::Quiet
    } else if std::io::stderr().is_terminal() {
        Mode::Bars
    } else {
        Mode::Lines
    };
    sink_to(mode, true)
}

fn sink_to(mode: Mode, stderr: bool) -> ProgressSink {
    match mode {
        Mode::Quiet => Arc::new(|_| {}),
        Mode::Lines => Arc::new(move |e| print_line(e, stderr)),
        Mode::Bars => {
            let target = if stderr {
                ProgressDrawTarget::stderr_with_hz(10)
            } else {
                ProgressDrawTarget::stdout_with_hz(10)
            };
            let state = Mutex::new(Bars {
                multi: MultiProgress::with_draw_target(target),
                stderr,
                bars: HashMap::new(),
            });
            Arc::new(move |e| {
                if let Ok(mut s) = state.lock() {
                    draw(&mut s, e)
                }
            })
        }
    }
}

fn out(stderr: bool, line: String) {
    if stderr {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

fn print_line(e: PullEvent, stderr: bool) {
    let p = |line: String| out(stderr, line);
    match e {
        PullEvent::Resolving { tag, repository } => p(format!("{tag}: Pulling from {repository}")),
        PullEvent::AlreadyExists { layer } => p(format!("{}: Already exists", short(&layer))),
        PullEvent::Layers { layers } => {
            for (d, _) in layers {
                p(format!("{}: Pulling fs layer", short(&d)));
            }
        }
        PullEvent::Downloading { .. } => {}
        PullEvent::DownloadComplete { layer } => p(format!("{}: Download complete", short(&layer))),
        PullEvent::Extracting { .. } => {}
        PullEvent::PullComplete { layer } => p(format!("{}: Pull complete", short(&layer))),
        PullEvent::Done {
            digest,
            updated,
            reference,
            ..
        } => print_done(&digest, updated, &reference, stderr),
    }
}

fn print_done(digest: &skiff_image_store::Digest, updated: bool, reference: &str, stderr: bool) {
    out(stderr, format!("Digest: {digest}"));
    let shown = skiff_image_store::gc::familiar(reference);
    if updated {
        out(
            stderr,
            format!("Status: Downloaded newer image for {shown}"),
        );
    } else {
        out(stderr, format!("Status: Image is up to date for {shown}"));
    }
}

fn style_bytes() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix}: {msg:<12} [{bar:40}] {bytes:>9}/{total_bytes:<9} {binary_bytes_per_sec}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

fn style_text() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg}").unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn draw(s: &mut Bars, e: PullEvent) {
    match e {
        PullEvent::Resolving { tag, repository } => {
            let _ = s.multi.println(format!("{tag}: Pulling from {repository}"));
        }
        PullEvent::Layers { layers } => {
            for (d, size) in layers {
                let pb = s.multi.add(ProgressBar::new(size));
                pb.set_style(style_text());
                pb.set_prefix(short(&d));
                pb.set_message("Pulling fs layer");
                s.bars.insert(d.to_string(), pb);
            }
        }
        PullEvent::AlreadyExists { layer } => finish(s, &layer, "Already exists"),
        PullEvent::Downloading {
            layer,
            current,
            total,
        } => {
            if let Some(pb) = s.bars.get(&layer.to_string()) {
                if pb.position() == 0 {
                    pb.set_style(style_bytes());
                    pb.set_message("Downloading");
                    pb.set_length(total);
                    pb.reset_elapsed();
                }
                pb.set_position(current);
            }
        }
        PullEvent::DownloadComplete { layer } => text(s, &layer, "Download complete"),
        PullEvent::Extracting { layer } => text(s, &layer, "Extracting"),
        PullEvent::PullComplete { layer } => finish(s, &layer, "Pull complete"),
        PullEvent::Done {
            digest,
            updated,
            reference,
            ..
        } => {
            for pb in s.bars.values() {
                if !pb.is_finished() {
                    pb.finish();
                }
            }
            print_done(&digest, updated, &reference, s.stderr);
        }
    }
}

fn text(s: &mut Bars, layer: &skiff_image_store::Digest, msg: &'static str) {
    if let Some(pb) = s.bars.get(&layer.to_string()) {
        pb.set_style(style_text());
        pb.set_message(msg);
    }
}

fn finish(s: &mut Bars, layer: &skiff_image_store::Digest, msg: &'static str) {
    if let Some(pb) = s.bars.get(&layer.to_string()) {
        pb.set_style(style_text());
        pb.finish_with_message(msg);
    }
}
