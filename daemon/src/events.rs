//! The engine's event bus: what happened to containers and images, in Docker's terms
//! (`container start`, `container die`, `image pull`, ...), for `docker events` and any
//! other front end that wants to follow the engine.
//!
//! Events go into a bounded in-memory ring (for `--since`) and wake live subscribers.
//! A subscriber keeps a cursor into the ring, so no event is dropped for a slow reader
//! unless it falls a whole ring behind, which it is told about ([`Next::Lagged`]).
//! Only this process's engine publishes here: events caused by another process on the
//! same data root (a daemonless CLI) do not appear.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// How many events the ring keeps for `--since`.
pub const RING_CAPACITY: usize = 4096;

/// The kind of object an event is about (Docker's `Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A container (also its exec processes).
    Container,
    /// An image.
    Image,
}

impl EventType {
    /// Docker's name of the type.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Container => "container",
            EventType::Image => "image",
        }
    }
}

/// One event, shaped like Docker's `EventMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What kind of object it is about.
    pub typ: EventType,
    /// Docker's action: `create`, `start`, `die`, `exec_start: sh -c ls`, `pull`, ...
    pub action: String,
    /// The object's ID (full container ID; image ID, or reference for `pull`).
    pub actor_id: String,
    /// Docker's actor attributes (`name`, `image`, `exitCode`, labels, ...).
    pub attributes: BTreeMap<String, String>,
    /// When it happened, in nanoseconds since the Unix epoch.
    pub time_nano: i64,
}

impl Event {
    /// An event happening now.
    pub fn now(
        typ: EventType,
        action: impl Into<String>,
        actor_id: impl Into<String>,
        attributes: BTreeMap<String, String>,
    ) -> Event {
        Event {
            typ,
            action: action.into(),
            actor_id: actor_id.into(),
            attributes,
            time_nano: now_nanos(),
        }
    }

    /// The action without its detail (`exec_start: sh` is `exec_start`).
    pub fn base_action(&self) -> &str {
        self.action
            .split_once(':')
            .map_or(self.action.as_str(), |(a, _)| a)
    }
}

/// Nanoseconds since the Unix epoch.
pub fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

#[derive(Debug)]
struct Ring {
    /// Sequence number of `events[0]`.
    first_seq: u64,
    events: VecDeque<Arc<Event>>,
    capacity: usize,
}

impl Ring {
    fn next_seq(&self) -> u64 {
        self.first_seq + self.events.len() as u64
    }
}

#[derive(Debug)]
struct Shared {
    ring: Mutex<Ring>,
    wake: watch::Sender<u64>,
    /// The run (start time) of each container whose `die` was announced last.
    dies: Mutex<HashMap<String, String>>,
}

/// The bus: publish events, replay recent ones, follow new ones. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EventBus {
    shared: Arc<Shared>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(RING_CAPACITY)
    }
}

/// What [`Subscription::next`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The next event.
    Event(Arc<Event>),
    /// The subscriber fell this many events behind the ring; they are lost to it.
    Lagged(u64),
}

impl EventBus {
    /// A bus keeping the last `capacity` events.
    pub fn new(capacity: usize) -> Self {
        EventBus {
            shared: Arc::new(Shared {
                ring: Mutex::new(Ring {
                    first_seq: 0,
                    events: VecDeque::with_capacity(capacity.min(1024)),
                    capacity: capacity.max(1),
                }),
                wake: watch::channel(0).0,
                dies: Mutex::default(),
            }),
        }
    }

    /// Records an event and wakes subscribers.
    pub fn publish(&self, event: Event) {
        let next = {
            let Ok(mut ring) = self.shared.ring.lock() else {
                return;
            };
            if ring.events.len() == ring.capacity {
                ring.events.pop_front();
                ring.first_seq += 1;
            }
            ring.events.push_back(Arc::new(event));
            ring.next_seq()
        };
        self.shared.wake.send_replace(next);
    }

    /// Whether the caller is the first to announce the end of container `id`'s run
    /// that started at `run` (several paths record the same exit).
    pub fn claim_die(&self, id: &str, run: &str) -> bool {
        let Ok(mut m) = self.shared.dies.lock() else {
            return true;
        };
        if m.get(id).is_some_and(|r| r == run) {
            return false;
        }
        m.insert(id.to_string(), run.to_string());
        true
    }

    /// Forgets what [`EventBus::claim_die`] kept about container `id` (it is gone).
    pub fn forget_container(&self, id: &str) {
        if let Ok(mut m) = self.shared.dies.lock() {
            m.remove(id);
        }
    }

    /// Follows events from now on.
    pub fn subscribe(&self) -> Subscription {
        self.subscribe_since(None).1
    }

    /// The kept events at or after `since_nanos` (all kept events with `None`: none),
    /// and a subscription that continues right after them, taken atomically so nothing
    /// falls between the two.
    pub fn subscribe_since(&self, since_nanos: Option<i64>) -> (Vec<Arc<Event>>, Subscription) {
        let mut rx = self.shared.wake.subscribe();
        rx.borrow_and_update();
        let (past, cursor) = match self.shared.ring.lock() {
            Ok(ring) => {
                let past = match since_nanos {
                    Some(t) => ring
                        .events
                        .iter()
                        .filter(|e| e.time_nano >= t)
                        .cloned()
                        .collect(),
                    None => Vec::new(),
                };
                (past, ring.next_seq())
            }
            Err(_) => (Vec::new(), 0),
        };
        (
            past,
            Subscription {
                shared: self.shared.clone(),
                cursor,
                rx,
            },
        )
    }
}

/// A live follower of the bus.
#[derive(Debug)]
pub struct Subscription {
    shared: Arc<Shared>,
    cursor: u64,
    rx: watch::Receiver<u64>,
}

impl Subscription {
    /// The next event, if one is there already.
    pub fn try_next(&mut self) -> Option<Next> {
        let ring = self.shared.ring.lock().ok()?;
        if self.cursor < ring.first_seq {
            let lost = ring.first_seq - self.cursor;
            self.cursor = ring.first_seq;
            return Some(Next::Lagged(lost));
        }
        let idx = usize::try_from(self.cursor - ring.first_seq).ok()?;
        let ev = ring.events.get(idx)?.clone();
        self.cursor += 1;
        Some(Next::Event(ev))
    }

    /// Waits for the next event. `None` only if the bus is gone.
    pub async fn next(&mut self) -> Option<Next> {
        loop {
            self.rx.borrow_and_update();
            if let Some(n) = self.try_next() {
                return Some(n);
            }
            if self.rx.changed().await.is_err() {
                return self.try_next();
            }
        }
    }
}

impl crate::Engine {
    /// The engine's event bus.
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// Publishes a container event with Docker's attributes (`name`, `image`, the
    /// container's labels) plus `extra`.
    pub(crate) fn container_event(
        &self,
        rec: &crate::container::record::ContainerRecord,
        action: &str,
        extra: &[(&str, String)],
    ) {
        let mut attrs: BTreeMap<String, String> = rec.options.labels.clone();
        attrs.insert("name".into(), rec.name.clone());
        attrs.insert("image".into(), rec.image_name.clone());
        for (k, v) in extra {
            attrs.insert((*k).to_string(), v.clone());
        }
        self.events
            .publish(Event::now(EventType::Container, action, &rec.id, attrs));
    }

    /// Publishes an image event about `id` (an image ID, or a reference for `pull`).
    pub fn image_event(&self, action: &str, id: &str, name: &str) {
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_string(), name.to_string());
        self.events
            .publish(Event::now(EventType::Image, action, id, attrs));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(action: &str) -> Event {
        Event::now(EventType::Container, action, "c1", BTreeMap::new())
    }

    #[tokio::test]
    async fn subscribers_see_every_event_in_order() {
        let bus = EventBus::new(16);
        let mut sub = bus.subscribe();
        let bus2 = bus.clone();
        let producer = tokio::spawn(async move {
            for i in 0..10 {
                bus2.publish(ev(&format!("a{i}")));
                tokio::task::yield_now().await;
            }
        });
        for i in 0..10 {
            match sub.next().await {
                Some(Next::Event(e)) => assert_eq!(e.action, format!("a{i}")),
                other => panic!("{other:?}"),
            }
        }
        producer.await.unwrap();
        assert_eq!(sub.try_next(), None);
    }

    #[test]
    fn since_replays_and_continues_without_gaps() {
        let bus = EventBus::new(3);
        for a in ["a", "b", "c", "d"] {
            bus.publish(ev(a));
        }
        let (past, mut sub) = bus.subscribe_since(Some(0));
        let names: Vec<_> = past.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(names, ["b", "c", "d"], "the ring keeps the last three");
        bus.publish(ev("e"));
        assert!(matches!(sub.try_next(), Some(Next::Event(e)) if e.action == "e"));
    }

    #[test]
    fn a_slow_subscriber_is_told_what_it_lost() {
        let bus = EventBus::new(2);
        let mut sub = bus.subscribe();
        for a in ["a", "b", "c", "d", "e"] {
            bus.publish(ev(a));
        }
        assert_eq!(sub.try_next(), Some(Next::Lagged(3)));
        assert!(matches!(sub.try_next(), Some(Next::Event(e)) if e.action == "d"));
    }

    #[test]
    fn a_runs_end_is_claimed_once() {
        let bus = EventBus::default();
        assert!(bus.claim_die("c", "t1"));
        assert!(!bus.claim_die("c", "t1"));
        assert!(bus.claim_die("c", "t2"));
        bus.forget_container("c");
        assert!(bus.claim_die("c", "t2"));
    }

    #[test]
    fn base_action_drops_the_detail() {
        assert_eq!(ev("exec_start: sh -c ls").base_action(), "exec_start");
        assert_eq!(ev("die").base_action(), "die");
    }
}
