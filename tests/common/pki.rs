//! Test certificates.

use std::path::Path;
use std::process::Command;

/// The cluster nodes [`make_pki`] makes certificates for: `node1.crt` … `node4.crt`.
pub const NODE_CERTS: u64 = 4;

/// A CA, a server certificate for localhost, a client certificate, a cluster node's
/// certificate that names no node id (`peer`), and one per node id 1..=[`NODE_CERTS`]
/// (`nodeN`, naming `urn:auditrelay:node:N`), made with openssl.
pub fn make_pki(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"],
        &ec[..],
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-subj",
            "/CN=auditrelay test CA",
            "-days",
            "2",
        ],
    ]
    .concat());
    let nodes: Vec<(String, String, String)> = (1..=NODE_CERTS)
        .map(|id| {
            (
                format!("node{id}"),
                format!("/CN=auditrelay node {id}"),
                format!(
                    "subjectAltName=URI:urn:auditrelay:node:{id},DNS:localhost,IP:127.0.0.1\n\
                     extendedKeyUsage=serverAuth,clientAuth\n"
                ),
            )
        })
        .collect();
    let fixed = [
        (
            "server",
            "/CN=localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        ),
        (
            "client",
            "/CN=device-17/O=Example Network",
            "extendedKeyUsage=clientAuth\n",
        ),
        // A cluster node's certificate that names no node id: the peer port refuses it.
        (
            "peer",
            "/CN=auditrelay node",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
        ),
    ]
    .map(|(n, c, e)| (n.to_string(), c.to_string(), e.to_string()));
    for (name, cn, ext) in fixed.into_iter().chain(nodes) {
        let (name, cn) = (name.as_str(), cn.as_str());
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        run(&[
            &["req"],
            &ec[..],
            &[
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                cn,
            ],
        ]
        .concat());
        run(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ]);
    }
}

/// The `[cluster]` lines that give node `id` its own certificate from the PKI in `dir`.
pub fn node_tls_toml(dir: &Path, id: u64) -> String {
    format!(
        "cert = {:?}\nkey = {:?}\nca = {:?}",
        dir.join(format!("node{id}.crt")),
        dir.join(format!("node{id}.key")),
        dir.join("ca.crt")
    )
}
