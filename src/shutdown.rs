//! One signal that tells every task to stop: listeners stop accepting, connections stop reading
//! and hand over what they have, and the write path commits it before the process exits.

use tokio::sync::watch;

/// The sending side, held by `main`.
pub struct ShutdownTrigger(watch::Sender<bool>);

/// A cloneable handle every task selects on.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A new trigger and its first handle.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }
}

impl Shutdown {
    /// Resolves once shutdown has begun.
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }
}
