//! Task events for containerd (`/tasks/create`, `/tasks/start`, `/tasks/exit`, ...),
//! forwarded over ttrpc to `$TTRPC_ADDRESS` when containerd set it. Without it (skiff's
//! engine, which polls State/Wait) nothing is sent and no connection is made.
//! Delivery is best effort: a failure is logged and the connection retried next time.

use std::sync::Mutex;

use containerd_shim::protos::protobuf::MessageDyn;
use containerd_shim::protos::ttrpc::context;
use containerd_shim::publisher::RemotePublisher;

/// Where and for which namespace events go.
pub struct Events {
    address: Option<String>,
    namespace: String,
    publisher: Mutex<Option<RemotePublisher>>,
}

impl Events {
    /// Events for `namespace`, sent to `$TTRPC_ADDRESS` if set.
    pub fn from_env(namespace: &str) -> Self {
        Events {
            address: std::env::var("TTRPC_ADDRESS")
                .ok()
                .filter(|a| !a.is_empty()),
            namespace: namespace.to_string(),
            publisher: Mutex::new(None),
        }
    }

    /// Sends one event (connecting on first use).
    pub fn publish(&self, topic: &str, event: Box<dyn MessageDyn>) {
        let Some(address) = &self.address else {
            return;
        };
        let mut guard = self.publisher.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            match RemotePublisher::new(address) {
                Ok(p) => *guard = Some(p),
                Err(e) => {
                    eprintln!("skiff-shim: connecting to containerd at {address}: {e}");
                    return;
                }
            }
        }
        if let Some(p) = guard.as_ref() {
            let ctx = context::with_timeout(5_000_000_000);
            if let Err(e) = p.publish(ctx, topic, &self.namespace, event) {
                eprintln!("skiff-shim: publishing {topic}: {e}");
                *guard = None;
            }
        }
    }
}
