//! The operations endpoint: `/metrics` (Prometheus text format), `/healthz` (the process
//! answers), `/readyz` (listeners bound and commits succeeding) and
//! `POST /dlq/replay?destination=NAME` (send a destination's dead letters again).

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
use crate::shutdown::Shutdown;

/// What the endpoint reports on.
pub struct Status {
    pub metrics: PrometheusHandle,
    /// True once every listener is bound and while commits succeed.
    pub ready: watch::Receiver<bool>,
    pub forwarding: Forwarders,
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
    if request.method() == Method::POST && request.uri().path() == "/dlq/replay" {
        let destination = request
            .uri()
            .query()
            .unwrap_or("")
            .split('&')
            .find_map(|p| p.strip_prefix("destination="))
            .unwrap_or("")
            .to_string();
        return Ok(match status.forwarding.replay(&destination).await {
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
