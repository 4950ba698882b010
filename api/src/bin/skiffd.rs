//! `skiffd`: the skiff daemon (container supervisor and Docker Engine API server).
//! See [`skiff_api::daemon`].

fn main() {
    skiff_api::daemon::main()
}
