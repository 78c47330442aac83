//! Answers the endpoint's requests, once `access` has let them through.

use std::convert::Infallible;
use std::net::SocketAddr;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};

use super::Status;
use crate::replication::{Admin, Replica};

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

/// The answer to one request. Refusals are counted and logged with the peer, the method
/// and the path (a query string is left out of the log, a token is never in it).
pub(super) async fn respond(
    request: Request<Incoming>,
    peer: SocketAddr,
    status: &Status,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if let Err(refusal) = status.access.check(&request) {
        refusal.count();
        tracing::warn!(
            %peer,
            method = %request.method(),
            path = request.uri().path(),
            reason = refusal.label(),
            "operations endpoint refused a request"
        );
        let mut response = reply(refusal.status(), "text/plain", refusal.message());
        if refusal.status() == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                hyper::header::HeaderValue::from_static("Bearer"),
            );
        }
        return Ok(response);
    }
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
