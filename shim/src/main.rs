//! `containerd-shim-skiff-v1`: the per-container process that owns a container's stdio and
//! exit status (DESIGN.md, "shim/"). The task service arrives with the containers issue;
//! until then this binary only reports that it cannot run tasks yet.

fn main() {
    eprintln!("containerd-shim-skiff-v1: the task API is not implemented yet");
    std::process::exit(1);
}
