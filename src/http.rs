//! The operations endpoint: `/metrics` (Prometheus text format), `/healthz` (the process
//! answers), `/readyz` (listeners bound and commits succeeding) and
//! `POST /dlq/replay?destination=NAME` (send a destination's dead letters again), and the
//! cluster: `GET /cluster/status`, `POST /cluster/add?id=N&address=A`, `POST /cluster/remove?id=N`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::forward::Forwarders;
use crate::replication::{Admin, Replica};
use crate::shutdown::Shutdown;

/// What the endpoint reports on.
pub struct Status {
    pub metrics: PrometheusHandle,
    /// True once every listener is bound, while commits succeed and while this node is part
    /// of a working majority.
    pub ready: watch::Receiver<bool>,
    /// The destinations forwarding here (none unless this node leads).
    pub forwarding: watch::Receiver<Forwarders>,
    pub replica: Arc<Replica>,
}

/// The value of `name` in a query string.
fn query_param<'a>(request: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    request
        .uri()
        .query()?
        .split('&')
        .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
}

/// `POST /cluster/add?id=N&address=HOST:PORT` and `POST /cluster/remove?id=N`.
async fn cluster_change(request: &Request<Incoming>, replica: &Replica) -> Response<Full<Bytes>> {
    let id = query_param(request, "id").and_then(|v| v.parse::<u64>().ok());
    let admin = match (request.uri().path(), id) {
        ("/cluster/add", Some(id)) => match query_param(request, "address") {
            Some(address) => Admin::Add {
                id,
                address: address.to_string(),
            },
            None => {
                return reply(
                    StatusCode::BAD_REQUEST,
                    "text/plain",
                    "address= is required\n",
                )
            }
        },
        ("/cluster/remove", Some(id)) => Admin::Remove { id },
        _ => {
            return reply(
                StatusCode::BAD_REQUEST,
                "text/plain",
                "id= (a node id) is required\n",
            )
        }
    };
    match replica.admin(admin).await {
        Ok(done) => reply(StatusCode::OK, "text/plain", format!("{done}\n")),
        Err(e) => reply(StatusCode::CONFLICT, "text/plain", format!("{e}\n")),
    }
}

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

async fn respond(
    request: Request<Incoming>,
    status: Arc<Status>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() == Method::POST && request.uri().path().starts_with("/cluster/") {
        return Ok(cluster_change(&request, &status.replica).await);
    }
    if request.method() == Method::POST && request.uri().path() == "/dlq/replay" {
        let destination = query_param(&request, "destination")
            .unwrap_or("")
            .to_string();
        let forwarding = status.forwarding.borrow().clone();
        return Ok(match forwarding.replay(&destination).await {
            Ok(n) => reply(
                StatusCode::ACCEPTED,
                "application/json",
                format!("{{\"destination\":{destination:?},\"queued\":{n}}}\n"),
            ),
            Err(e) => reply(StatusCode::NOT_FOUND, "text/plain", format!("{e}\n")),
        });
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n",
        ));
    }
    Ok(match request.uri().path() {
        "/metrics" => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            status.metrics.render(),
        ),
        "/healthz" => reply(StatusCode::OK, "text/plain", "ok\n"),
        "/cluster/status" => reply(
            StatusCode::OK,
            "application/json",
            format!("{}\n", status.replica.status()),
        ),
        "/readyz" if *status.ready.borrow() => reply(StatusCode::OK, "text/plain", "ready\n"),
        "/readyz" => reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "not ready\n"),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    })
}

/// Binds the endpoint; serving runs until shutdown.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until shutdown.
pub async fn serve(listener: TcpListener, status: Status, mut shutdown: Shutdown) {
    let status = Arc::new(status);
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(r) => r,
                Err(_) => continue,
            },
            _ = shutdown.wait() => return,
        };
        let status = status.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| respond(req, status.clone()));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
