//! The operations endpoint: `/metrics` (Prometheus text format), `/healthz` (the process
//! answers), `/readyz` (listeners bound and commits succeeding), `POST /dlq/replay?destination=NAME`
//! (send a destination's dead letters again), and the cluster: `GET /cluster/status`,
//! `POST /cluster/add?id=N&address=A`, `POST /cluster/remove?id=N`.
//!
//! `access` decides who may call what (the probes are open, everything else checks `Host`,
//! and every mutating call needs the admin token from `token`); `slots` caps connections;
//! `routes` answers. This file accepts connections and bounds how long they may dawdle.

pub mod access;
mod routes;
pub mod slots;
pub mod token;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::HttpConfig;
use crate::forward::Forwarders;
use crate::replication::Replica;
use crate::shutdown::Shutdown;

use self::access::{Access, HostPolicy, Refusal};
use self::slots::{Admission, ConnectionSlots};
use self::token::{AdminToken, Provenance};

/// Connections open at once. Far more than operators and scrapers need, few enough that the
/// endpoint can never take the file descriptors the syslog listeners live on.
pub const MAX_CONNECTIONS: usize = 256;
/// How long a client may take to send a request's head. hyper restarts this timer whenever
/// it waits for the next request on a kept-alive connection, so it also bounds how long such
/// a connection may sit idle. A request being served has no bound: adding a node waits until
/// the node has caught up.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What the endpoint reports on, and who may call it.
pub struct Status {
    pub metrics: PrometheusHandle,
    /// True once every listener is bound, while commits succeed and while this node is part
    /// of a working majority.
    pub ready: watch::Receiver<bool>,
    /// The destinations forwarding here (none unless this node leads).
    pub forwarding: watch::Receiver<Forwarders>,
    pub replica: Arc<Replica>,
    pub access: Access,
}

/// Binds the endpoint; serving runs until shutdown.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// The access rules for the endpoint bound at `bound`: the configured token file, or
/// `<data_dir>/admin.token`, generated when missing. Logs the file's path, never the token.
pub fn access(config: &HttpConfig, bound: SocketAddr, data_dir: &Path) -> Result<Access, String> {
    let token = match &config.admin_token_file {
        Some(path) => {
            let token =
                AdminToken::load(path).map_err(|e| format!("http.admin_token_file: {e}"))?;
            tracing::info!(file = %path.display(), "admin token read");
            token
        }
        None => {
            let path = data_dir.join(token::DEFAULT_FILE_NAME);
            let (token, provenance) =
                AdminToken::load_or_generate(&path).map_err(|e| e.to_string())?;
            match provenance {
                Provenance::Generated => {
                    tracing::info!(file = %path.display(), "admin token generated")
                }
                Provenance::Read => tracing::info!(file = %path.display(), "admin token read"),
            }
            token
        }
    };
    Ok(Access {
        hosts: HostPolicy::new(bound, &config.allowed_hosts),
        token,
    })
}

/// Serves until shutdown.
pub async fn serve(listener: TcpListener, status: Status, mut shutdown: Shutdown) {
    let status = Arc::new(status);
    let slots = ConnectionSlots::new(MAX_CONNECTIONS);
    loop {
        let Some((stream, peer)) =
            crate::accept::next(&listener, &mut shutdown, "operations endpoint").await
        else {
            return;
        };
        let slot = match slots.admit() {
            Admission::Admitted { slot, evicted } => {
                if evicted {
                    Refusal::Connections.count();
                }
                slot
            }
            Admission::Full => {
                Refusal::Connections.count();
                drop(stream);
                continue;
            }
        };
        let status = status.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let tracker = slot.tracker();
            let service = service_fn(move |request| {
                let in_request = tracker.begin();
                let status = status.clone();
                async move {
                    let response = routes::respond(request, peer, &status).await;
                    drop(in_request);
                    response
                }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            // Dropping the connection closes it; in-flight requests are abandoned only at
            // shutdown, or when evicted, which happens only between requests.
            tokio::select! {
                _ = connection => {}
                _ = slot.evicted() => {}
                _ = shutdown.wait() => {}
            }
        });
    }
}
