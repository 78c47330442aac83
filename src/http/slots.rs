//! The cap on the endpoint's open connections. A connection that has sent nothing useful yet
//! (half a request head, or a kept-alive one between requests) holds a slot only until
//! someone needs it: when every slot is taken, the oldest connection not in a request is
//! closed to make room, so a flood of silent connections can delay the endpoint's answers
//! by nothing but its own pace. Only when every slot is serving a request is a new
//! connection closed at once.
//!
//! Invariant: the table holds one entry per live [`Slot`], never more than the capacity.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// Open connections, by age (ids only grow).
#[derive(Debug)]
pub struct ConnectionSlots {
    capacity: usize,
    table: Mutex<BTreeMap<u64, Entry>>,
    next_id: std::sync::atomic::AtomicU64,
}

#[derive(Debug)]
struct Entry {
    /// Requests being served on the connection.
    requests: usize,
    /// Told when the connection must close to make room.
    close: Arc<Notify>,
}

/// What became of a new connection.
#[derive(Debug)]
pub enum Admission {
    /// It may be served; `evicted` says whether an idle connection was closed for it.
    Admitted { slot: Slot, evicted: bool },
    /// Every slot is serving a request: close it at once.
    Full,
}

impl ConnectionSlots {
    pub fn new(capacity: usize) -> Arc<ConnectionSlots> {
        Arc::new(ConnectionSlots {
            capacity,
            table: Mutex::new(BTreeMap::new()),
            next_id: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The table; a panic elsewhere while holding it cannot leave it inconsistent (each
    /// change is one insert or remove), so a poisoned lock is used as it is.
    fn table(&self) -> MutexGuard<'_, BTreeMap<u64, Entry>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a slot for a new connection, closing the oldest idle one when all are taken.
    pub fn admit(self: &Arc<Self>) -> Admission {
        let mut table = self.table();
        let mut evicted = false;
        if table.len() >= self.capacity {
            let idle = table
                .iter()
                .find(|(_, e)| e.requests == 0)
                .map(|(id, _)| *id);
            match idle.and_then(|id| table.remove(&id)) {
                Some(entry) => {
                    // Stores a wake-up if the connection is not waiting yet.
                    entry.close.notify_one();
                    evicted = true;
                }
                None => return Admission::Full,
            }
        }
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let close = Arc::new(Notify::new());
        table.insert(
            id,
            Entry {
                requests: 0,
                close: close.clone(),
            },
        );
        Admission::Admitted {
            slot: Slot {
                id,
                slots: self.clone(),
                close,
            },
            evicted,
        }
    }

    #[cfg(test)]
    fn open(&self) -> usize {
        self.table().len()
    }
}

/// A connection's slot, freed when dropped.
#[derive(Debug)]
pub struct Slot {
    id: u64,
    slots: Arc<ConnectionSlots>,
    close: Arc<Notify>,
}

impl Slot {
    /// Completes when the connection must close to make room for a newer one.
    pub async fn evicted(&self) {
        self.close.notified().await
    }

    /// A handle the request handler marks its requests with.
    pub fn tracker(&self) -> RequestTracker {
        RequestTracker {
            id: self.id,
            slots: self.slots.clone(),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.table().remove(&self.id);
    }
}

/// Marks requests on one connection, which is not evicted while one is being served.
#[derive(Debug, Clone)]
pub struct RequestTracker {
    id: u64,
    slots: Arc<ConnectionSlots>,
}

impl RequestTracker {
    /// A request has begun; it ends when the guard drops.
    pub fn begin(&self) -> InRequest {
        if let Some(entry) = self.slots.table().get_mut(&self.id) {
            entry.requests += 1;
        }
        InRequest {
            tracker: self.clone(),
        }
    }
}

/// One request being served.
#[derive(Debug)]
pub struct InRequest {
    tracker: RequestTracker,
}

impl Drop for InRequest {
    fn drop(&mut self) {
        if let Some(entry) = self.tracker.slots.table().get_mut(&self.tracker.id) {
            entry.requests = entry.requests.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(a: Admission) -> (Slot, bool) {
        match a {
            Admission::Admitted { slot, evicted } => (slot, evicted),
            Admission::Full => panic!("refused"),
        }
    }

    #[tokio::test]
    async fn the_oldest_idle_connection_makes_room_for_a_new_one() {
        let slots = ConnectionSlots::new(2);
        let (busy, _) = admitted(slots.admit());
        let _request = busy.tracker().begin();
        let (idle, evicted) = admitted(slots.admit());
        assert!(!evicted);
        let (_new, evicted) = admitted(slots.admit());
        assert!(evicted);
        // The evicted connection is told at once, even though it was not waiting yet.
        idle.evicted().await;
        assert_eq!(slots.open(), 2);
    }

    #[test]
    fn a_connection_is_refused_only_when_every_slot_serves_a_request() {
        let slots = ConnectionSlots::new(1);
        let (busy, _) = admitted(slots.admit());
        let request = busy.tracker().begin();
        assert!(matches!(slots.admit(), Admission::Full));
        drop(request);
        let (_new, evicted) = admitted(slots.admit());
        assert!(evicted);
    }

    #[test]
    fn a_closed_connection_frees_its_slot() {
        let slots = ConnectionSlots::new(1);
        let (slot, _) = admitted(slots.admit());
        drop(slot);
        assert_eq!(slots.open(), 0);
        let (_again, evicted) = admitted(slots.admit());
        assert!(!evicted);
    }
}
