//! Listener URLs: `udp://127.0.0.1:5514`, `tcp://…`, `tls://…?cert=F&key=F[&ca=F]`,
//! `relp://…`, `relp+tls://…?cert=F&key=F[&ca=F]`.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// The wire protocol of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Relp,
    RelpTls,
}

impl Transport {
    /// The URL scheme.
    pub fn scheme(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Relp => "relp",
            Transport::RelpTls => "relp+tls",
        }
    }

    /// The record's `source.transport` value.
    pub fn record_name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Relp | Transport::RelpTls => "relp",
        }
    }

    pub fn is_tls(self) -> bool {
        matches!(self, Transport::Tls | Transport::RelpTls)
    }
}

/// A parsed listener URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerUrl {
    pub transport: Transport,
    pub addr: SocketAddr,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_ca: Option<PathBuf>,
}

impl ListenerUrl {
    /// Parses a listener URL; the error says what is wrong in words.
    pub fn parse(text: &str) -> Result<ListenerUrl, String> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| format!("{text:?} is not a URL such as tcp://127.0.0.1:5514"))?;
        let transport = match scheme {
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            "tls" => Transport::Tls,
            "relp" => Transport::Relp,
            "relp+tls" => Transport::RelpTls,
            other => {
                return Err(format!(
                    "unknown scheme {other:?}: use udp, tcp, tls, relp or relp+tls"
                ))
            }
        };
        let (authority, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        let authority = authority.trim_end_matches('/');
        let addr = authority
            .to_socket_addrs()
            .map_err(|e| format!("{authority:?} is not host:port ({e})"))?
            .next()
            .ok_or_else(|| format!("{authority:?} resolves to no address"))?;
        let mut url = ListenerUrl {
            transport,
            addr,
            tls_cert: None,
            tls_key: None,
            tls_ca: None,
        };
        for pair in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| format!("query parameter {pair:?} needs a value"))?;
            if !transport.is_tls() {
                return Err(format!("{scheme}:// takes no parameters, got {k:?}"));
            }
            let slot = match k {
                "cert" => &mut url.tls_cert,
                "key" => &mut url.tls_key,
                "ca" => &mut url.tls_ca,
                other => return Err(format!("unknown parameter {other:?}: use cert, key or ca")),
            };
            *slot = Some(PathBuf::from(v));
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let u =
            ListenerUrl::parse("tls://127.0.0.1:6514?cert=/a.pem&key=/b.pem&ca=/c.pem").unwrap();
        assert_eq!(u.transport, Transport::Tls);
        assert_eq!(u.addr.port(), 6514);
        assert_eq!(u.tls_ca, Some(PathBuf::from("/c.pem")));
        assert_eq!(
            ListenerUrl::parse("relp+tls://[::1]:2514")
                .unwrap()
                .transport,
            Transport::RelpTls
        );
        assert!(ListenerUrl::parse("udp://127.0.0.1:5514?cert=x").is_err());
        assert!(ListenerUrl::parse("http://127.0.0.1:1").is_err());
        assert!(ListenerUrl::parse("tcp://127.0.0.1").is_err());
    }
}
