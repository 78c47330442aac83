//! Who may call what on the operations endpoint. Read-only probes (`/metrics`, `/healthz`,
//! `/readyz`) are open to anyone who reaches the port. Everything else must name the endpoint
//! in its `Host` header, so that a page whose own name was rebound to this address (DNS
//! rebinding) cannot read or change anything. Every call that is not `GET` or `HEAD` must
//! also carry the admin token and no `Origin`: a browser adds `Origin` to every cross-site
//! `POST`, and sends `Authorization` only after a CORS preflight, which the endpoint never
//! answers.

use std::net::{IpAddr, SocketAddr};

use hyper::header::{AUTHORIZATION, HOST, ORIGIN};
use hyper::{Method, Request, StatusCode};

use super::token::AdminToken;

/// The counter of refused requests and connections, by reason.
pub const REFUSED: &str = "auditrelay_http_refused_total";

/// Why the endpoint refused a request or a connection; each reason has its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A mutating call without `Authorization: Bearer …`.
    NoToken,
    /// A mutating call whose token is not the admin token.
    BadToken,
    /// A mutating call carrying `Origin`: sent by a browser on behalf of a web page.
    Origin,
    /// A `Host` that is not the endpoint's own address nor an allowed name.
    Host,
    /// A connection over the cap, closed at once (or the oldest idle one, closed for it).
    Connections,
}

impl Refusal {
    pub const ALL: [Refusal; 5] = [
        Refusal::NoToken,
        Refusal::BadToken,
        Refusal::Origin,
        Refusal::Host,
        Refusal::Connections,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Refusal::NoToken => "no_token",
            Refusal::BadToken => "bad_token",
            Refusal::Origin => "origin",
            Refusal::Host => "host",
            Refusal::Connections => "connections",
        }
    }

    /// The status a refused request gets: 401 asks for credentials, 421 says this endpoint
    /// does not serve that host name, 403 refuses browsers outright.
    pub fn status(self) -> StatusCode {
        match self {
            Refusal::NoToken | Refusal::BadToken => StatusCode::UNAUTHORIZED,
            Refusal::Origin => StatusCode::FORBIDDEN,
            Refusal::Host => StatusCode::MISDIRECTED_REQUEST,
            Refusal::Connections => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// What the client is told.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::NoToken => "an admin token is required: Authorization: Bearer TOKEN\n",
            Refusal::BadToken => "the admin token is wrong\n",
            Refusal::Origin => "requests from web pages (with Origin) may not change anything\n",
            Refusal::Host => "this endpoint does not serve that Host\n",
            Refusal::Connections => "too many connections\n",
        }
    }

    /// Counts one refusal.
    pub fn count(self) {
        metrics::counter!(REFUSED, "reason" => self.label()).increment(1);
    }
}

/// Describes the counter and exports every reason at zero.
pub fn describe() {
    metrics::describe_counter!(
        REFUSED,
        "Operations endpoint requests and connections refused, by reason."
    );
    for reason in Refusal::ALL {
        metrics::counter!(REFUSED, "reason" => reason.label()).increment(0);
    }
}

/// Which checks a request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exposure {
    /// Probes for Prometheus and load balancers, which may know the endpoint by any name.
    Open,
    /// Reads: the Host must be the endpoint's.
    Read,
    /// Anything else may change state: Host, no Origin, and the admin token.
    Admin,
}

fn exposure(method: &Method, path: &str) -> Exposure {
    match path {
        "/metrics" | "/healthz" | "/readyz" => Exposure::Open,
        _ if method == Method::GET || method == Method::HEAD => Exposure::Read,
        _ => Exposure::Admin,
    }
}

/// The `Host` values the endpoint answers to: its own address, `localhost` on its port, and
/// the names in `http.allowed_hosts`.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    bound: SocketAddr,
    /// Lower case, without brackets or a trailing dot; they match on any port.
    names: Vec<String>,
}

impl HostPolicy {
    pub fn new(bound: SocketAddr, allowed: &[String]) -> HostPolicy {
        HostPolicy {
            bound,
            names: allowed.iter().map(|n| normalize(n)).collect(),
        }
    }

    /// Whether a request with this `Host` may be served.
    ///
    /// An IP literal is the endpoint's own address on its port (any address when it is bound
    /// to 0.0.0.0 or ::): a rebinding page always sends its own name, never an address.
    /// No `Host` at all is allowed too: browsers always send one, HTTP/1.0 tools may not.
    pub fn allows(&self, host: Option<&[u8]>) -> bool {
        let Some(host) = host else { return true };
        let Some((name, port)) = std::str::from_utf8(host).ok().and_then(split_host) else {
            return false;
        };
        let name = normalize(name);
        if self.names.contains(&name) {
            return true;
        }
        let port_is_ours = port.unwrap_or(80) == self.bound.port();
        match name.parse::<IpAddr>() {
            Ok(ip) => port_is_ours && (ip == self.bound.ip() || self.bound.ip().is_unspecified()),
            Err(_) => port_is_ours && name == "localhost",
        }
    }
}

/// Splits a `Host` value into the name (brackets removed from an IPv6 literal) and the port.
fn split_host(host: &str) -> Option<(&str, Option<u16>)> {
    let (name, port) = match host.strip_prefix('[') {
        Some(rest) => {
            let (name, after) = rest.split_once(']')?;
            match after {
                "" => (name, None),
                _ => (name, Some(after.strip_prefix(':')?)),
            }
        }
        None => match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        },
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    (!name.is_empty()).then_some((name, port))
}

fn normalize(name: &str) -> String {
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Decides whether a request may be served.
#[derive(Debug)]
pub struct Access {
    pub hosts: HostPolicy,
    pub token: AdminToken,
}

impl Access {
    /// `Ok` when the request may be served; otherwise the first reason it may not, checked
    /// in the order Host, Origin, token.
    pub fn check<B>(&self, request: &Request<B>) -> Result<(), Refusal> {
        let exposure = exposure(request.method(), request.uri().path());
        if exposure == Exposure::Open {
            return Ok(());
        }
        let headers = request.headers();
        if !self.hosts.allows(headers.get(HOST).map(|h| h.as_bytes())) {
            return Err(Refusal::Host);
        }
        if exposure == Exposure::Read {
            return Ok(());
        }
        if headers.contains_key(ORIGIN) {
            return Err(Refusal::Origin);
        }
        let credential = headers.get(AUTHORIZATION).ok_or(Refusal::NoToken)?;
        match bearer(credential.as_bytes()) {
            Some(token) if self.token.matches(token) => Ok(()),
            _ => Err(Refusal::BadToken),
        }
    }
}

/// The token of a `Bearer` credential (the scheme's name is case-insensitive).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer ";
    let scheme = value.get(..SCHEME.len())?;
    scheme
        .eq_ignore_ascii_case(SCHEME)
        .then(|| value[SCHEME.len()..].trim_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    fn policy(bound: &str, allowed: &[&str]) -> HostPolicy {
        let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        HostPolicy::new(bound.parse().unwrap(), &allowed)
    }

    fn allows(policy: &HostPolicy, host: &str) -> bool {
        policy.allows(Some(host.as_bytes()))
    }

    #[test]
    fn the_host_may_be_the_bound_address_or_localhost_on_its_port() {
        let p = policy("127.0.0.1:9514", &[]);
        assert!(allows(&p, "127.0.0.1:9514"));
        assert!(allows(&p, "localhost:9514"));
        assert!(allows(&p, "LocalHost.:9514"));
        assert!(p.allows(None), "HTTP/1.0 without Host");
        assert!(!allows(&p, "127.0.0.1:9515"));
        assert!(!allows(&p, "127.0.0.2:9514"));
        assert!(!allows(&p, "localhost"), "port 80 is not ours");
        assert!(!allows(&p, "evil.example:9514"), "a rebound name");
        assert!(!allows(&p, "localhost.evil.example:9514"));
        assert!(!allows(&p, ""));
        assert!(!allows(&p, "127.0.0.1:9514:1"));
        assert!(!p.allows(Some(b"\xff:9514")));
    }

    #[test]
    fn an_ipv6_or_wildcard_endpoint_answers_to_its_addresses() {
        let v6 = policy("[::1]:9514", &[]);
        assert!(allows(&v6, "[::1]:9514"));
        assert!(!allows(&v6, "::1:9514"));
        assert!(!allows(&v6, "[::1]"));
        let any = policy("0.0.0.0:9514", &[]);
        assert!(allows(&any, "10.1.2.3:9514"));
        assert!(!allows(&any, "10.1.2.3:80"));
        assert!(!allows(&any, "relay.example:9514"));
    }

    #[test]
    fn allowed_host_names_match_on_any_port_in_any_case() {
        let p = policy("0.0.0.0:9514", &["Relay1.Example", "[fd00::7]"]);
        assert!(allows(&p, "relay1.example:9514"));
        assert!(allows(&p, "RELAY1.example"));
        assert!(allows(&p, "relay1.example.:443"));
        assert!(allows(&p, "[fd00::7]:8443"));
        assert!(!allows(&p, "relay2.example:9514"));
    }

    fn access() -> Access {
        Access {
            hosts: policy("127.0.0.1:9514", &[]),
            token: AdminToken::new(TOKEN),
        }
    }

    fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut r = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            r = r.header(*name, *value);
        }
        r.body(()).unwrap()
    }

    const HOST_OK: (&str, &str) = ("host", "127.0.0.1:9514");

    #[test]
    fn mutating_calls_need_the_token_as_a_bearer_credential() {
        let a = access();
        let bearer = format!("Bearer {TOKEN}");
        let lower = format!("bearer {TOKEN}");
        let ok = request(
            "POST",
            "/cluster/remove?id=9",
            &[HOST_OK, ("authorization", &bearer)],
        );
        assert_eq!(a.check(&ok), Ok(()));
        let ok = request("POST", "/dlq/replay", &[HOST_OK, ("authorization", &lower)]);
        assert_eq!(a.check(&ok), Ok(()));
        let none = request("POST", "/cluster/add?id=9&address=a:1", &[HOST_OK]);
        assert_eq!(a.check(&none), Err(Refusal::NoToken));
        let wrong = request(
            "POST",
            "/cluster/add",
            &[
                HOST_OK,
                ("authorization", "Bearer 0123456789abcdef0123456789abcdeF"),
            ],
        );
        assert_eq!(a.check(&wrong), Err(Refusal::BadToken));
        let basic = format!("Basic {TOKEN}");
        let basic = request(
            "POST",
            "/cluster/add",
            &[HOST_OK, ("authorization", &basic)],
        );
        assert_eq!(a.check(&basic), Err(Refusal::BadToken));
        let put = request("PUT", "/anything", &[HOST_OK]);
        assert_eq!(
            a.check(&put),
            Err(Refusal::NoToken),
            "every method but GET and HEAD"
        );
    }

    #[test]
    fn browsers_are_refused_even_with_the_token() {
        let a = access();
        let bearer = format!("Bearer {TOKEN}");
        let cross_site = request(
            "POST",
            "/cluster/add",
            &[
                HOST_OK,
                ("origin", "http://evil.example"),
                ("authorization", &bearer),
            ],
        );
        assert_eq!(a.check(&cross_site), Err(Refusal::Origin));
        let rebound = request(
            "POST",
            "/cluster/add",
            &[("host", "evil.example:9514"), ("authorization", &bearer)],
        );
        assert_eq!(a.check(&rebound), Err(Refusal::Host));
        let read = request("GET", "/cluster/status", &[("host", "evil.example:9514")]);
        assert_eq!(a.check(&read), Err(Refusal::Host));
    }

    #[test]
    fn probes_are_open_and_reads_need_only_the_host() {
        let a = access();
        for path in ["/metrics", "/healthz", "/readyz"] {
            let r = request("GET", path, &[("host", "prometheus-target.example")]);
            assert_eq!(a.check(&r), Ok(()), "{path}");
        }
        let status = request("GET", "/cluster/status", &[HOST_OK, ("origin", "http://x")]);
        assert_eq!(
            a.check(&status),
            Ok(()),
            "the browser itself keeps a cross-site read from the page"
        );
    }
}
