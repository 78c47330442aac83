//! Matching a message's source by listener name, IP address or CIDR block: used by routing
//! filters and by the per-source time zones of legacy timestamps.

use std::net::IpAddr;

/// One pattern: a listener name, or an address with a prefix length (a bare IP is a /32 or
/// /128).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceMatch {
    Listener(String),
    Net(IpAddr, u8),
}

impl SourceMatch {
    /// Reads `name`, `10.0.0.1`, `10.0.0.0/8` or `2001:db8::/32`.
    pub fn parse(text: &str) -> Result<SourceMatch, String> {
        let (addr, bits) = match text.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (text, None),
        };
        match addr.parse::<IpAddr>() {
            Ok(ip) => {
                // Peers are compared in canonical form (::ffff:a.b.c.d is IPv4), so networks
                // are too.
                let mapped = ip.is_ipv6() && ip.to_canonical().is_ipv4();
                let ip = ip.to_canonical();
                let max = if ip.is_ipv4() { 32 } else { 128 };
                let bits = match bits {
                    Some(b) => b
                        .parse::<u8>()
                        .ok()
                        .map(|b| if mapped { b.saturating_sub(96) } else { b })
                        .filter(|b| *b <= max && (!mapped || b.saturating_add(96) <= 128))
                        .ok_or_else(|| format!("{text:?}: bad prefix length"))?,
                    None => max,
                };
                Ok(SourceMatch::Net(ip, bits))
            }
            Err(_) if bits.is_none() && !text.is_empty() => {
                Ok(SourceMatch::Listener(text.to_string()))
            }
            Err(_) => Err(format!("{text:?} is not a listener name, IP or IP/prefix")),
        }
    }

    pub fn matches(&self, listener: Option<&str>, ip: Option<IpAddr>) -> bool {
        match self {
            SourceMatch::Listener(name) => listener == Some(name.as_str()),
            SourceMatch::Net(net, bits) => ip.is_some_and(|ip| in_net(ip, *net, *bits)),
        }
    }

    /// How specific the pattern is: longer prefixes win over shorter ones, and a listener
    /// name is the least specific.
    pub fn specificity(&self) -> i16 {
        match self {
            SourceMatch::Listener(_) => -1,
            SourceMatch::Net(_, bits) => i16::from(*bits),
        }
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (a, b, width) = match (ip.to_canonical(), net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(a.to_bits()), u128::from(b.to_bits()), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (a.to_bits(), b.to_bits(), 128),
        _ => return false,
    };
    if bits == 0 {
        return true;
    }
    let shift = width - u32::from(bits);
    (a >> shift) == (b >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let m = SourceMatch::parse("10.0.0.0/8").unwrap();
        assert!(m.matches(None, ip("10.2.3.4")));
        assert!(m.matches(None, ip("::ffff:10.2.3.4")));
        assert!(!m.matches(None, ip("11.0.0.1")));
        assert!(SourceMatch::parse("2001:db8::/32")
            .unwrap()
            .matches(None, ip("2001:db8::1")));
        assert!(SourceMatch::parse("core")
            .unwrap()
            .matches(Some("core"), None));
        assert!(SourceMatch::parse("10.0.0.0/33").is_err());
        assert!(SourceMatch::parse("x/8").is_err());
    }
}
