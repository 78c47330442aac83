//! `auditrelay digest`: one line that says whether two stores hold the same records, so that
//! replicas can be compared: the number of records, the last seq, and SHA-256 over every record
//! in seq order (each as seq, length and the stored bytes).

use ring::digest::{Context, SHA256};

use super::{StoreError, StoreReader};

/// What `digest` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub records: u64,
    pub last_seq: u64,
    pub sha256: [u8; 32],
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "records={} last_seq={} sha256=",
            self.records, self.last_seq
        )?;
        self.sha256.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Hashes every record in seq order.
pub fn digest(reader: &StoreReader) -> Result<Digest, StoreError> {
    let mut hash = Context::new(&SHA256);
    let mut out = Digest {
        records: 0,
        last_seq: 0,
        sha256: [0; 32],
    };
    reader.scan_all(&mut |seq, value| {
        hash.update(&seq.to_be_bytes());
        hash.update(&(value.len() as u64).to_be_bytes());
        hash.update(value);
        out.records += 1;
        out.last_seq = seq;
    })?;
    out.sha256.copy_from_slice(hash.finish().as_ref());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::keys::IndexTerms;
    use super::super::{Entry, Store};
    use super::*;

    #[test]
    fn equal_stores_digest_alike_and_any_difference_shows() {
        let day = 86_400_000_000i64;
        let terms = IndexTerms::default();
        let make = |extra: &[u8]| {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            let jsons: [&[u8]; 3] = [b"{\"a\":1}", b"{\"a\":2}", extra];
            let times = [3 * day - 1, 3 * day, 3 * day - 2];
            let entries: Vec<Entry<'_>> = jsons
                .iter()
                .zip(times)
                .map(|(j, t)| Entry {
                    received_micros: t,
                    json: j,
                    terms: &terms,
                })
                .collect();
            store.commit(&entries).unwrap();
            drop(store);
            let d = digest(&StoreReader::open(dir.path()).unwrap()).unwrap();
            (dir, d)
        };
        let (_a, one) = make(b"{\"a\":3}");
        let (_b, two) = make(b"{\"a\":3}");
        let (_c, other) = make(b"{\"a\":4}");
        assert_eq!(one, two);
        assert_eq!((one.records, one.last_seq), (3, 3));
        assert_ne!(one.sha256, other.sha256);
        let mut manual = Context::new(&SHA256);
        for (seq, json) in [
            (1u64, &b"{\"a\":1}"[..]),
            (2, b"{\"a\":2}"),
            (3, b"{\"a\":3}"),
        ] {
            manual.update(&seq.to_be_bytes());
            manual.update(&(json.len() as u64).to_be_bytes());
            manual.update(json);
        }
        assert_eq!(
            one.sha256[..],
            *manual.finish().as_ref(),
            "seq order across days"
        );
        assert!(one.to_string().starts_with("records=3 last_seq=3 sha256="));
    }
}
