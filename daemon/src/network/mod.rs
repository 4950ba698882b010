//! Container networking, owned by the engine: bridge networks (the default `bridge`
//! and user-defined ones) with their own persisted state, the wiring of a network
//! namespace into them, published ports, and the embedded DNS server.
//!
//! One concern per module: [`subnet`] (CIDR arithmetic), [`ports`] (`-p` specs),
//! [`record`] and [`store`] (networks and their members, the IP allocator's state),
//! [`netns`] (named namespaces), [`link`] (bridges and veth pairs via `ip`),
//! [`firewall`] (NAT and DNAT via iptables), [`files`] (`/etc/hosts`, resolv.conf),
//! [`dns`] (the embedded DNS server skiffd runs), [`manager`] (create, remove, the
//! default bridge), [`membership`], [`attach`] (wiring a namespace path, so pods and
//! CRI reuse it), [`reconcile`] and [`error`].
//!
//! Host tools: `ip` (iproute2) and `iptables` / `iptables-restore`.

pub mod attach;
pub mod dns;
pub mod error;
pub mod files;
pub mod firewall;
pub mod link;
pub mod manager;
pub mod membership;
pub mod netns;
pub mod ports;
pub mod reconcile;
pub mod record;
pub mod store;
pub mod subnet;
pub mod tool;

pub use attach::Attachment;
pub use error::NetworkError;
pub use manager::{CreateNetwork, Networks};
pub use ports::{PortBinding, PortSpec, Proto};
pub use record::{Member, NetworkRecord, DEFAULT_NETWORK};
pub use subnet::Subnet;
