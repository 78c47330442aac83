//! A snapshot's body on the wire: the files of a store checkpoint packed one after another
//! (name length, name, size, bytes), so that Raft can stream it in chunks as one file.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

/// Packs the regular files of `dir` (a checkpoint is flat) into `out`.
pub fn pack(dir: &Path, out: &Path) -> io::Result<()> {
    let mut writer = BufWriter::with_capacity(1 << 20, File::create(out)?);
    let mut names: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for name in names {
        let name_bytes = name.as_encoded_bytes();
        let mut file = File::open(dir.join(&name))?;
        let size = file.metadata()?.len();
        writer.write_all(&(name_bytes.len() as u32).to_be_bytes())?;
        writer.write_all(name_bytes)?;
        writer.write_all(&size.to_be_bytes())?;
        let copied = io::copy(&mut (&mut file).take(size), &mut writer)?;
        if copied != size {
            return Err(io::Error::other(format!("{name:?} shrank while packing")));
        }
    }
    writer.into_inner().map_err(|e| e.into_error())?.sync_all()
}

/// Unpacks what [`pack`] wrote into `dir`, which must not exist yet.
pub fn unpack(packed: &Path, dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut reader = BufReader::with_capacity(1 << 20, File::open(packed)?);
    loop {
        let mut len = [0u8; 4];
        match reader.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut name = vec![0u8; u32::from_be_bytes(len) as usize];
        reader.read_exact(&mut name)?;
        let name =
            String::from_utf8(name).map_err(|_| io::Error::other("a file name is not UTF-8"))?;
        if name.contains('/') || name == ".." || name == "." || name.is_empty() {
            return Err(io::Error::other(format!("refusing file name {name:?}")));
        }
        let mut size = [0u8; 8];
        reader.read_exact(&mut size)?;
        let size = u64::from_be_bytes(size);
        let mut file = File::create(dir.join(&name))?;
        let copied = io::copy(&mut (&mut reader).take(size), &mut file)?;
        if copied != size {
            return Err(io::Error::other(format!("{name} is cut short")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_survives_packing() {
        let from = tempfile::tempdir().unwrap();
        std::fs::write(from.path().join("CURRENT"), b"MANIFEST-1\n").unwrap();
        std::fs::write(from.path().join("000009.sst"), vec![7u8; 300_000]).unwrap();
        let out = tempfile::tempdir().unwrap();
        let packed = out.path().join("s.snap");
        pack(from.path(), &packed).unwrap();
        let to = out.path().join("unpacked");
        unpack(&packed, &to).unwrap();
        assert_eq!(std::fs::read(to.join("CURRENT")).unwrap(), b"MANIFEST-1\n");
        assert_eq!(
            std::fs::read(to.join("000009.sst")).unwrap(),
            vec![7u8; 300_000]
        );
    }
}
