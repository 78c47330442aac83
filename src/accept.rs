//! Accepting TCP connections until shutdown, the same way on every port: a failed `accept`
//! (out of file descriptors, say) is logged and retried after a pause instead of spinning,
//! and shutdown ends the wait, the pause included.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::shutdown::Shutdown;

/// The pause after a failed `accept`.
pub const BACKOFF: Duration = Duration::from_millis(100);

/// The next connection on `listener`, or `None` once shutdown has begun. `port` names the
/// port in the log (a listener's name, "peer", "operations endpoint").
pub async fn next(
    listener: &TcpListener,
    shutdown: &mut Shutdown,
    port: &str,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok(connection) => return Some(connection),
                Err(e) => tracing::warn!(port, error = %e, "accept failed; retrying"),
            },
            _ = shutdown.wait() => return None,
        }
        tokio::select! {
            _ = tokio::time::sleep(BACKOFF) => {}
            _ = shutdown.wait() => return None,
        }
    }
}
