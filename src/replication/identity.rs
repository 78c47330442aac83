//! Which node a peer certificate speaks for. A node's certificate names its Raft node id in a
//! URI subject alternative name, `urn:auditrelay:node:N` (in the manner of SPIFFE ids): the
//! cluster's CA vouches for the id as it vouches for the host name, so the peer port can tie
//! each request to the node that sent it.

use rustls_pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;

use super::types::NodeId;

/// What a node certificate's URI SAN starts with; the node id follows in decimal.
pub const NODE_URI_PREFIX: &str = "urn:auditrelay:node:";

/// The node id the certificate names, if it names exactly one (several different ids, or
/// none, or an unreadable certificate: `None`).
pub fn node_id_of(cert: &CertificateDer<'_>) -> Option<NodeId> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let san = parsed.subject_alternative_name().ok()??;
    let mut found = None;
    for name in &san.value.general_names {
        let GeneralName::URI(uri) = name else {
            continue;
        };
        let Some(id) = parse_node_uri(uri) else {
            continue;
        };
        match found {
            Some(other) if other != id => return None,
            _ => found = Some(id),
        }
    }
    found
}

/// The id in `urn:auditrelay:node:N`: N in plain decimal digits, at least 1.
fn parse_node_uri(uri: &str) -> Option<NodeId> {
    let digits = uri.strip_prefix(NODE_URI_PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&id| id > 0)
}

/// The node id of the first certificate in a TLS peer's chain (its own).
pub fn node_id_of_chain(chain: Option<&[CertificateDer<'_>]>) -> Option<NodeId> {
    chain?.first().and_then(node_id_of)
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, KeyPair, SanType};

    use super::*;

    fn cert_with_uris(uris: &[&str]) -> CertificateDer<'static> {
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        for uri in uris {
            params
                .subject_alt_names
                .push(SanType::URI((*uri).try_into().unwrap()));
        }
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn a_certificate_names_its_node_in_a_uri_san() {
        let cert = cert_with_uris(&["https://example.com/", "urn:auditrelay:node:3"]);
        assert_eq!(node_id_of(&cert), Some(3));
    }

    #[test]
    fn a_certificate_without_a_node_uri_names_no_node() {
        assert_eq!(node_id_of(&cert_with_uris(&[])), None);
        assert_eq!(node_id_of(&cert_with_uris(&["urn:auditrelay:node:"])), None);
        assert_eq!(
            node_id_of(&cert_with_uris(&["urn:auditrelay:node:0"])),
            None
        );
        assert_eq!(
            node_id_of(&cert_with_uris(&["urn:auditrelay:node:+2"])),
            None
        );
    }

    #[test]
    fn a_certificate_naming_two_different_nodes_names_none() {
        let cert = cert_with_uris(&["urn:auditrelay:node:1", "urn:auditrelay:node:2"]);
        assert_eq!(node_id_of(&cert), None);
    }
}
