//! HTTP receivers: generic NDJSON POST, Splunk HEC (`/services/collector/event`, with indexer
//! acknowledgement when enabled) and Elasticsearch/OpenSearch `_bulk`.
//!
//! Up to `in_flight` requests run at once, each on its own keep-alive connection; batches are
//! acknowledged in order. Transient failures (connect, timeout, 408, 429, 5xx, and 401/403,
//! which a fixed token cures without losing data) are retried with backoff, honouring
//! `Retry-After`. Per-item refusals become dead letters: `_bulk` says which item failed, HEC
//! says which event, and for a generic endpoint a refused batch is halved until the refused
//! record is found alone.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::sync::mpsc;

use super::config::{Destination, Kind};
use super::metrics::DestinationMetrics;
use super::sink::{Batch, SinkContext};
use super::tls::{connect_tcp, Client};
use super::Backoff;

/// How long HEC indexer acknowledgement is waited for before the events are sent again.
const HEC_ACK_WAIT: Duration = Duration::from_secs(120);
const HEC_ACK_POLL: Duration = Duration::from_millis(500);

/// A response as the protocols judge it.
struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// One keep-alive connection.
struct Http {
    dest: Arc<Destination>,
    tls: Option<Client>,
    sender: Option<SendRequest<Full<Bytes>>>,
    auth: Option<String>,
    channel: String,
}

impl Http {
    async fn connect(&mut self) -> Result<(), String> {
        let tcp = connect_tcp(&self.dest).await?;
        let sender = match &self.tls {
            Some(client) => http1(client.handshake(tcp, self.dest.timeout).await?).await?,
            None => http1(tcp).await?,
        };
        self.sender = Some(sender);
        Ok(())
    }

    async fn post(
        &mut self,
        path: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<Response, String> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.connect().await?;
        }
        let host = self.dest.authority();
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(hyper::header::HOST, host)
            .header(hyper::header::CONTENT_TYPE, content_type)
            .header(hyper::header::USER_AGENT, "auditrelay");
        if let Some(auth) = &self.auth {
            request = request.header(hyper::header::AUTHORIZATION, auth);
        }
        if self.dest.kind == Kind::SplunkHec {
            request = request.header("X-Splunk-Request-Channel", &self.channel);
        }
        let request = request.body(Full::new(body)).map_err(|e| e.to_string())?;
        let timeout = self.dest.timeout;
        let Some(sender) = self.sender.as_mut() else {
            return Err("not connected".into());
        };
        let exchange = async {
            sender.ready().await.map_err(|e| e.to_string())?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| e.to_string())?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
            Ok::<_, String>(Response {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.sender = None;
                Err(e)
            }
            Err(_) => {
                self.sender = None;
                Err(format!("no answer within {timeout:?}"))
            }
        }
    }
}

/// An HTTP/1.1 client connection over `io`, its connection task running on its own.
async fn http1<T>(io: T) -> Result<SendRequest<Full<Bytes>>, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok(sender)
}

/// What one attempt at a group of items came to.
#[derive(Debug, Default)]
struct Verdict {
    /// Items refused for good: (index, reason).
    dead: Vec<(usize, String)>,
    /// Items to send again after a pause.
    retry: Vec<usize>,
    retry_after: Option<Duration>,
    /// The whole group was refused without saying which item: halve it.
    split: Option<String>,
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(hyper::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.min(300)))
}

fn transient(status: StatusCode) -> bool {
    status.is_server_error() || matches!(status.as_u16(), 401 | 403 | 408 | 429)
}

/// Statuses that refuse what was sent rather than how or where: only these make a batch be
/// halved down to the refused record. Any other refusal (a redirect, 404 for a wrong path, 405,
/// 415) is a configuration problem that would dead-letter everything: it is retried, loudly.
fn refuses_content(status: StatusCode) -> bool {
    matches!(status.as_u16(), 400 | 413 | 422)
}

/// The start of a receiver's answer, for logs and dead letters. It is the receiver's text and
/// may echo record content, so it is logged with `?` (escaped): a CR or LF in it must not
/// start a line of our log.
fn body_text(body: &Bytes) -> String {
    let text = String::from_utf8_lossy(body);
    text.chars().take(300).collect()
}

/// Elasticsearch `_bulk`: per-item statuses; 409 (the `_id` exists) means delivered before.
fn judge_bulk(r: &Response, group: &[usize]) -> Verdict {
    let mut v = Verdict::default();
    if !r.status.is_success() {
        return judge_plain(r, group);
    }
    let parsed: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let items = parsed.get("items").and_then(Value::as_array);
    let Some(items) = items.filter(|i| i.len() == group.len()) else {
        if parsed.get("errors") == Some(&Value::Bool(false)) {
            return v;
        }
        v.retry = group.to_vec();
        return v;
    };
    for (item, &index) in items.iter().zip(group) {
        let result = item
            .as_object()
            .and_then(|o| o.values().next())
            .cloned()
            .unwrap_or(Value::Null);
        let status = result.get("status").and_then(Value::as_u64).unwrap_or(0) as u16;
        match status {
            200..=299 | 409 => {}
            // 401/403: security_exception (an index outside the role's pattern) or a
            // read-only index block; cured by the operator, not by dropping the record.
            401 | 403 | 408 | 429 | 500..=599 | 0 => v.retry.push(index),
            _ => {
                let error = result.get("error");
                let kind = error
                    .and_then(|e| e.get("type"))
                    .and_then(Value::as_str)
                    .unwrap_or("error");
                let reason = error
                    .and_then(|e| e.get("reason"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                v.dead.push((
                    index,
                    format!("_bulk item status {status}: {kind}: {reason}"),
                ));
            }
        }
    }
    v
}

/// Splunk HEC: `invalid-event-number` names the refused event. Events before it may or may not
/// have been indexed, so they go again with the rest: a duplicate rather than a loss.
fn judge_hec(r: &Response, group: &[usize]) -> Verdict {
    let mut v = Verdict::default();
    if r.status.is_success() {
        return v;
    }
    let parsed: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let code = parsed.get("code").and_then(Value::as_u64);
    let text = parsed
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    // 9 busy; 7 incorrect index, 10 and 11 channel problems: configuration or load, not the
    // events themselves.
    if transient(r.status) || matches!(code, Some(7 | 9 | 10 | 11)) || !refuses_content(r.status) {
        v.retry = group.to_vec();
        v.retry_after = retry_after(&r.headers);
        return v;
    }
    match parsed
        .get("invalid-event-number")
        .and_then(Value::as_u64)
        .map(|n| n as usize)
    {
        Some(n) if n < group.len() => {
            v.dead.push((
                group[n],
                format!(
                    "HEC {}: code {}: {text}",
                    r.status.as_u16(),
                    code.unwrap_or(0)
                ),
            ));
            v.retry = group
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != n)
                .map(|(_, g)| *g)
                .collect();
        }
        _ => {
            v.split = Some(format!(
                "HEC {}: code {}: {text}",
                r.status.as_u16(),
                code.unwrap_or(0)
            ))
        }
    }
    v
}

/// A generic endpoint: 2xx delivered, transient statuses retried, other refusals split.
fn judge_plain(r: &Response, group: &[usize]) -> Verdict {
    let mut v = Verdict::default();
    if r.status.is_success() {
        return v;
    }
    if refuses_content(r.status) {
        v.split = Some(format!(
            "HTTP {}: {}",
            r.status.as_u16(),
            body_text(&r.body)
        ));
    } else {
        v.retry = group.to_vec();
        v.retry_after = retry_after(&r.headers);
    }
    v
}

fn body_of(batch: &Batch, group: &[usize]) -> Bytes {
    let mut body = Vec::with_capacity(group.iter().map(|i| batch.payload(*i).len() + 1).sum());
    for &i in group {
        body.extend_from_slice(batch.payload(i));
        body.push(b'\n');
    }
    Bytes::from(body)
}

/// Waits until HEC says `ack_id` is indexed; false if it does not within the wait.
async fn hec_indexed(http: &mut Http, ack_id: u64, metrics: &DestinationMetrics) -> bool {
    let deadline = tokio::time::Instant::now() + HEC_ACK_WAIT;
    let body = Bytes::from(format!("{{\"acks\":[{ack_id}]}}"));
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(HEC_ACK_POLL).await;
        match http
            .post("/services/collector/ack", "application/json", body.clone())
            .await
        {
            Ok(r) if r.status.is_success() => {
                let parsed: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                if parsed.pointer(&format!("/acks/{ack_id}")) == Some(&Value::Bool(true)) {
                    return true;
                }
            }
            Ok(_) | Err(_) => metrics.failures.increment(1),
        }
    }
    false
}

/// Delivers one batch completely; returns the dead letters.
async fn deliver(
    http: &mut Http,
    batch: &Batch,
    metrics: &DestinationMetrics,
) -> Vec<(u64, String)> {
    let dest = http.dest.clone();
    let (path, content_type) = match dest.kind {
        Kind::Elasticsearch => ("/_bulk".to_string(), "application/x-ndjson"),
        Kind::SplunkHec => (dest.path.clone(), "application/json"),
        _ => (dest.path.clone(), "application/x-ndjson"),
    };
    let mut dead = Vec::new();
    let mut groups: VecDeque<Vec<usize>> = VecDeque::from([(0..batch.len()).collect()]);
    let mut backoff = Backoff::new(dest.retry_max);
    let mut first_try = true;
    while let Some(group) = groups.pop_front() {
        if !first_try {
            metrics.retried.increment(group.len() as u64);
        }
        first_try = false;
        metrics.sent.increment(group.len() as u64);
        let verdict = match http.post(&path, content_type, body_of(batch, &group)).await {
            Err(e) => {
                metrics.connected.set(0.0);
                tracing::warn!(destination = %dest.name, error = %e, "request failed; retrying");
                Verdict {
                    retry: group.clone(),
                    ..Verdict::default()
                }
            }
            Ok(r) => {
                metrics.connected.set(1.0);
                let mut v = match dest.kind {
                    Kind::Elasticsearch => judge_bulk(&r, &group),
                    Kind::SplunkHec => judge_hec(&r, &group),
                    _ => judge_plain(&r, &group),
                };
                if !v.retry.is_empty() || v.split.is_some() {
                    tracing::warn!(destination = %dest.name, status = r.status.as_u16(), body = ?body_text(&r.body), "receiver refused part of a batch");
                }
                if dest.kind == Kind::SplunkHec && dest.hec_ack && r.status.is_success() {
                    let parsed: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                    match parsed.get("ackId").and_then(Value::as_u64) {
                        Some(id) if hec_indexed(http, id, metrics).await => {}
                        Some(_) => {
                            tracing::warn!(destination = %dest.name, "HEC did not confirm indexing in time; sending again");
                            v.retry = group.clone();
                        }
                        // With `ack = true` only an indexed ackId counts as delivered: a token
                        // without indexer acknowledgement takes events it may still lose.
                        None => {
                            metrics.configuration_errors.increment(1);
                            tracing::error!(destination = %dest.name, url = %dest.url, "configuration error: ack = true but HEC answered without ackId; enable indexer acknowledgement on the token (or set ack = false). Nothing counts as delivered; sending again");
                            v.retry = group.clone();
                        }
                    }
                }
                v
            }
        };
        for (i, reason) in verdict.dead {
            dead.push((batch.seq(i), reason));
        }
        if let Some(reason) = verdict.split {
            if group.len() == 1 {
                dead.push((batch.seq(group[0]), reason));
            } else {
                let (a, b) = group.split_at(group.len() / 2);
                groups.push_front(b.to_vec());
                groups.push_front(a.to_vec());
                first_try = true;
            }
        }
        if !verdict.retry.is_empty() {
            metrics.failures.increment(1);
            let pause = verdict.retry_after.unwrap_or_else(|| backoff.delay());
            tokio::time::sleep(pause).await;
            groups.push_front(verdict.retry);
        } else {
            backoff.reset();
        }
    }
    dead
}

pub async fn run(ctx: SinkContext, mut batches: mpsc::Receiver<Batch>) {
    let dest = ctx.dest.clone();
    let tls = match &dest.tls {
        Some(t) => loop {
            match Client::new(&dest.host, t) {
                Ok(c) => break Some(c),
                Err(e) => {
                    tracing::error!(destination = %dest.name, error = %e, "TLS setup failed; retrying");
                    tokio::time::sleep(dest.retry_max).await;
                }
            }
        },
        None => None,
    };
    let auth = match (dest.kind, &dest.token, &dest.userinfo) {
        (Kind::SplunkHec, Some(t), _) => Some(format!("Splunk {t}")),
        (Kind::Elasticsearch, Some(t), _) => Some(format!("ApiKey {t}")),
        (_, Some(t), _) => Some(format!("Bearer {t}")),
        (_, None, Some(u)) => Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(u)
        )),
        _ => None,
    };
    let r = crate::store::meta::random_u64();
    let channel = format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        r >> 32,
        (r >> 16) & 0xffff,
        r & 0xfff,
        (r >> 20) & 0xfff,
        crate::store::meta::random_u64() & 0xffff_ffff_ffff
    );
    let mut idle: Vec<Http> = (0..dest.in_flight)
        .map(|_| Http {
            dest: dest.clone(),
            tls: tls.clone(),
            sender: None,
            auth: auth.clone(),
            channel: channel.clone(),
        })
        .collect();
    type Running = tokio::task::JoinHandle<(Http, u64, Vec<(u64, String)>)>;
    let mut running: VecDeque<Running> = VecDeque::new();
    let mut input_open = true;
    loop {
        if !input_open && running.is_empty() {
            return;
        }
        tokio::select! {
            batch = batches.recv(), if input_open && !idle.is_empty() => match batch {
                Some(batch) => {
                    let Some(mut http) = idle.pop() else { continue };
                    let metrics = ctx.metrics.clone();
                    running.push_back(tokio::spawn(async move {
                        let dead = deliver(&mut http, &batch, &metrics).await;
                        (http, batch.id, dead)
                    }));
                }
                None => input_open = false,
            },
            done = async { running.front_mut().expect("guarded").await }, if !running.is_empty() => {
                running.pop_front();
                match done {
                    Ok((http, id, dead)) => {
                        idle.push(http);
                        if !ctx.ack(id, dead) {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::error!(destination = %dest.name, error = %e, "delivery task failed");
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn bulk_items_are_judged_one_by_one() {
        let r = response(
            200,
            r#"{"errors":true,"items":[{"create":{"status":201}},{"create":{"status":409}},{"create":{"status":429}},{"create":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"bad"}}}]}"#,
        );
        let v = judge_bulk(&r, &[10, 11, 12, 13]);
        assert_eq!(v.retry, vec![12]);
        assert_eq!(v.dead.len(), 1);
        assert_eq!(v.dead[0].0, 13);
        assert!(v.dead[0].1.contains("mapper_parsing_exception"));
        assert_eq!(judge_bulk(&response(503, ""), &[1, 2]).retry, vec![1, 2]);
        assert!(judge_bulk(&response(413, ""), &[1, 2]).split.is_some());
    }

    #[test]
    fn hec_names_the_bad_event() {
        let r = response(
            400,
            r#"{"text":"Invalid data format","code":6,"invalid-event-number":1}"#,
        );
        let v = judge_hec(&r, &[4, 5, 6]);
        assert_eq!(v.dead[0].0, 5);
        assert_eq!(v.retry, vec![4, 6]);
        let v = judge_hec(
            &response(503, r#"{"text":"Server is busy","code":9}"#),
            &[1],
        );
        assert_eq!(v.retry, vec![1]);
        assert!(judge_plain(&response(400, "no"), &[1, 2]).split.is_some());
        let wrong_path = judge_plain(&response(404, "not found"), &[1, 2]);
        assert_eq!((wrong_path.retry, wrong_path.split), (vec![1, 2], None));
        assert_eq!(
            judge_hec(
                &response(400, r#"{"text":"Incorrect index","code":7}"#),
                &[3]
            )
            .retry,
            vec![3]
        );
        let r = response(
            200,
            r#"{"errors":true,"items":[{"create":{"status":403,"error":{"type":"security_exception"}}}]}"#,
        );
        assert_eq!(judge_bulk(&r, &[5]).retry, vec![5]);
        assert_eq!(judge_plain(&response(429, ""), &[1]).retry, vec![1]);
    }
}
