//! A `tantivy::Directory` that seals every index file (docs/FORMAT.md §17).
//! A file is a sequence of blocks of up to 64 KiB, each `nonce ‖
//! AES-256-GCM(index key, AAD = "quire/v1/index/" ‖ file name ‖ block
//! number ‖ last-block flag) ‖ tag`: blocks are decrypted when tantivy
//! reads them (a few are cached), so the daemon's memory holds what tantivy
//! keeps, not the whole index, and nothing of the index — terms, stored
//! text, paths — reaches the disk in the clear, not even in a temp folder.
//! Files being written are sealed block by block into `<name>.qtmp`,
//! fsync'd and renamed into place when finished.

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use tantivy::directory::error::{DeleteError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    AntiCallToken, FileHandle, OwnedBytes, TerminatingWrite, WatchCallback, WatchCallbackList,
    WatchHandle, WritePtr,
};
use tantivy::{Directory, HasLen};

use crate::crypto::AeadKey;

/// Plaintext bytes per block.
pub const BLOCK: usize = 64 * 1024;
/// Bytes a block adds: nonce and tag.
const OVER: usize = 28;
/// Decrypted blocks kept per open file.
const CACHED: usize = 4;

/// The index's sealed directory.
#[derive(Clone)]
pub struct SealedDir(Arc<Inner>);

struct Inner {
    root: PathBuf,
    key: AeadKey,
    read_only: bool,
    writing: RwLock<HashSet<PathBuf>>,
    locks: Mutex<HashSet<PathBuf>>,
    watch: WatchCallbackList,
}

/// A lock held in memory: the vault lock already keeps other processes
/// out, and a lock *file* would outlive a killed daemon.
struct Held(SealedDir, PathBuf);

impl Drop for Held {
    fn drop(&mut self) {
        self.0
            .0
            .locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.1);
    }
}

impl std::fmt::Debug for SealedDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedDir")
    }
}

fn aad(name: &Path, block: u64, last: bool) -> Vec<u8> {
    let mut a = b"quire/v1/index/".to_vec();
    a.extend_from_slice(name.as_os_str().as_encoded_bytes());
    a.extend_from_slice(&block.to_be_bytes());
    a.push(last as u8);
    a
}

/// (plaintext length, blocks) of a sealed file of `enc` bytes, if a
/// sealed file can have that length.
fn geometry(enc: u64) -> Option<(u64, u64)> {
    let (b, o) = (BLOCK as u64, OVER as u64);
    if enc < o {
        return None;
    }
    let n = enc.div_ceil(b + o);
    let plain = enc - n * o;
    (plain >= (n - 1) * b && plain <= n * b).then_some((plain, n))
}

/// Seals a whole file at once (small files; tests).
fn seal_all(key: &AeadKey, name: &Path, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + OVER * (data.len() / BLOCK + 1));
    let n = data.len().div_ceil(BLOCK).max(1);
    for i in 0..n {
        let piece = &data[(i * BLOCK).min(data.len())..((i + 1) * BLOCK).min(data.len())];
        out.extend_from_slice(&key.seal(&aad(name, i as u64, i + 1 == n), piece));
    }
    out
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

fn io_err(path: &Path, e: io::Error) -> OpenReadError {
    OpenReadError::IoError {
        io_error: Arc::new(e),
        filepath: path.to_owned(),
    }
}

/// An open sealed file: blocks are read and opened on demand.
struct SealedFile {
    dir: SealedDir,
    name: PathBuf,
    file: File,
    len: usize,
    blocks: u64,
    cache: Mutex<VecDeque<(u64, Arc<Vec<u8>>)>>,
}

impl std::fmt::Debug for SealedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedFile({} bytes)", self.len)
    }
}

impl HasLen for SealedFile {
    fn len(&self) -> usize {
        self.len
    }
}

impl SealedFile {
    fn block(&self, i: u64) -> io::Result<Arc<Vec<u8>>> {
        {
            let c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, b)) = c.iter().find(|(n, _)| *n == i) {
                return Ok(b.clone());
            }
        }
        let step = (BLOCK + OVER) as u64;
        let start = i * step;
        let size = if i + 1 == self.blocks {
            (self.len as u64 - i * BLOCK as u64) as usize + OVER
        } else {
            BLOCK + OVER
        };
        let mut sealed = vec![0u8; size];
        self.file.read_exact_at(&mut sealed, start)?;
        let plain = self
            .dir
            .0
            .key
            .open(&aad(&self.name, i, i + 1 == self.blocks), &sealed)
            .map_err(|_| invalid("an index block failed authentication"))?;
        let b = Arc::new(plain);
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if c.len() >= CACHED {
            c.pop_front();
        }
        c.push_back((i, b.clone()));
        Ok(b)
    }

    /// Opens every block (verifies the whole file).
    fn verify(&self) -> io::Result<()> {
        for i in 0..self.blocks {
            self.block(i)?;
        }
        Ok(())
    }
}

impl FileHandle for SealedFile {
    fn read_bytes(&self, range: Range<usize>) -> io::Result<OwnedBytes> {
        if range.start >= range.end {
            return Ok(OwnedBytes::empty());
        }
        if range.end > self.len {
            return Err(invalid("read past the end of an index file"));
        }
        let (first, last) = (range.start / BLOCK, (range.end - 1) / BLOCK);
        let mut out = Vec::with_capacity(range.len());
        for b in first..=last {
            let blk = self.block(b as u64)?;
            let s = if b == first {
                range.start - b * BLOCK
            } else {
                0
            };
            let e = if b == last {
                range.end - b * BLOCK
            } else {
                blk.len()
            };
            out.extend_from_slice(&blk[s..e]);
        }
        Ok(OwnedBytes::new(out))
    }
}

impl SealedDir {
    /// Opens (creating) the folder `root`.
    pub fn open(root: &Path, key: AeadKey, read_only: bool) -> io::Result<SealedDir> {
        if !read_only {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(root)?;
        }
        // The index folder itself must be a folder, not a symlink planted
        // to send the index's writes elsewhere.
        if let Ok(m) = std::fs::symlink_metadata(root)
            && !m.is_dir()
        {
            return Err(invalid(&format!(
                "{} is not a folder: the vault folder was tampered with; remove it (the index is rebuilt)",
                root.display()
            )));
        }
        if !read_only && let Ok(rd) = std::fs::read_dir(root) {
            // Temporary files a killed daemon left (random names: they
            // would otherwise pile up).
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().ends_with(".qtmp") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(SealedDir(Arc::new(Inner {
            root: root.to_owned(),
            key,
            read_only,
            writing: RwLock::default(),
            locks: Mutex::default(),
            watch: WatchCallbackList::default(),
        })))
    }

    fn host(&self, name: &Path) -> io::Result<PathBuf> {
        // tantivy names its files itself (UUIDs, meta.json): plain names.
        let s = name.to_str().unwrap_or("");
        if s.is_empty() || s.contains('/') || s.starts_with("..") || s.ends_with(".qtmp") {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "bad index file name",
            ));
        }
        Ok(self.0.root.join(name))
    }

    fn open_file(&self, name: &Path) -> Result<SealedFile, OpenReadError> {
        let host = self.host(name).map_err(|e| io_err(name, e))?;
        let file = match crate::store::safe::open(&host, u64::MAX) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(OpenReadError::FileDoesNotExist(name.to_owned()));
            }
            Err(e) => return Err(io_err(name, e)),
        };
        let enc = file.metadata().map_err(|e| io_err(name, e))?.len();
        let (len, blocks) = geometry(enc)
            .ok_or_else(|| io_err(name, invalid("an index file has an impossible length")))?;
        Ok(SealedFile {
            dir: self.clone(),
            name: name.to_owned(),
            file,
            len: len as usize,
            blocks,
            cache: Mutex::default(),
        })
    }

    /// Opens every block of every file: an index that fails is rebuilt.
    pub fn verify(&self) -> io::Result<()> {
        for e in std::fs::read_dir(&self.0.root)? {
            let name = e?.file_name();
            if name.to_string_lossy().ends_with(".qtmp") {
                continue;
            }
            self.open_file(Path::new(&name))
                .map_err(|e| invalid(&e.to_string()))?
                .verify()?;
        }
        Ok(())
    }

    /// Total bytes of the sealed files on disk.
    pub fn disk_size(&self) -> u64 {
        std::fs::read_dir(&self.0.root)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    fn create_tmp(&self, name: &Path) -> io::Result<(File, PathBuf)> {
        if self.0.read_only {
            return Err(io::Error::from_raw_os_error(libc::EROFS));
        }
        // A random name, O_EXCL and O_NOFOLLOW (store::safe): a symlink
        // planted at a temporary name is never written through (issue 17.3).
        let host = self.host(name)?;
        let stem = host.file_name().unwrap_or_default().to_string_lossy();
        let (f, tmp) = crate::store::safe::create_temp(&self.0.root, &format!("{stem}."), ".qtmp")?;
        Ok((f, tmp))
    }

    fn finish(&self, f: File, tmp: &Path, name: &Path) -> io::Result<()> {
        f.sync_data()?;
        std::fs::rename(tmp, self.host(name)?)
    }
}

/// A file being written: sealed block by block (the block before the last
/// is sealed only once more data shows it is not the last).
struct Writer {
    dir: SealedDir,
    name: PathBuf,
    file: Option<(File, PathBuf)>,
    pending: Vec<u8>,
    block: u64,
    done: bool,
}

impl Writer {
    fn seal_out(&mut self, n: usize, last: bool) -> io::Result<()> {
        let sealed = self
            .dir
            .0
            .key
            .seal(&aad(&self.name, self.block, last), &self.pending[..n]);
        self.file
            .as_mut()
            .expect("open until terminated")
            .0
            .write_all(&sealed)?;
        self.pending.drain(..n);
        self.block += 1;
        Ok(())
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while self.pending.len() > BLOCK {
            self.seal_out(BLOCK, false)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TerminatingWrite for Writer {
    fn terminate_ref(&mut self, _: AntiCallToken) -> io::Result<()> {
        let n = self.pending.len();
        self.seal_out(n, true)?;
        let (f, tmp) = self.file.take().expect("open until terminated");
        self.dir.finish(f, &tmp, &self.name)?;
        self.done = true;
        self.dir
            .0
            .writing
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.name);
        Ok(())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if !self.done {
            if let Some((_, tmp)) = self.file.take() {
                let _ = std::fs::remove_file(tmp);
            }
            self.dir
                .0
                .writing
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&self.name);
        }
    }
}

impl Directory for SealedDir {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        Ok(Arc::new(self.open_file(path)?))
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        let host = self.host(path).map_err(|e| DeleteError::IoError {
            io_error: Arc::new(e),
            filepath: path.to_owned(),
        })?;
        match std::fs::remove_file(host) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(DeleteError::FileDoesNotExist(path.to_owned()))
            }
            Err(e) => Err(DeleteError::IoError {
                io_error: Arc::new(e),
                filepath: path.to_owned(),
            }),
        }
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        if self
            .0
            .writing
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(path)
        {
            return Ok(true);
        }
        let host = self.host(path).map_err(|e| io_err(path, e))?;
        Ok(host.exists())
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        if self.exists(path).unwrap_or(false)
            || !self
                .0
                .writing
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(path.to_owned())
        {
            return Err(OpenWriteError::FileAlreadyExists(path.to_owned()));
        }
        let file = match self.create_tmp(path) {
            Ok(f) => f,
            Err(e) => {
                self.0
                    .writing
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(path);
                return Err(OpenWriteError::IoError {
                    io_error: Arc::new(e),
                    filepath: path.to_owned(),
                });
            }
        };
        Ok(BufWriter::new(Box::new(Writer {
            dir: self.clone(),
            name: path.to_owned(),
            file: Some(file),
            pending: Vec::new(),
            block: 0,
            done: false,
        })))
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        let f = self.open_file(path)?;
        let b = f.read_bytes(0..f.len).map_err(|e| io_err(path, e))?;
        Ok(b.as_slice().to_vec())
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let sealed = seal_all(&self.0.key, path, data);
        let (mut f, tmp) = self.create_tmp(path)?;
        f.write_all(&sealed)?;
        self.finish(f, &tmp, path)?;
        if path == Path::new("meta.json") {
            drop(self.0.watch.broadcast());
        }
        Ok(())
    }

    fn sync_directory(&self) -> io::Result<()> {
        if self.0.read_only {
            return Ok(());
        }
        File::open(&self.0.root)?.sync_all()
    }

    fn acquire_lock(
        &self,
        lock: &tantivy::directory::Lock,
    ) -> Result<tantivy::directory::DirectoryLock, tantivy::directory::error::LockError> {
        loop {
            if self
                .0
                .locks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(lock.filepath.clone())
            {
                return Ok(Box::new(Held(self.clone(), lock.filepath.clone())).into());
            }
            if !lock.is_blocking {
                return Err(tantivy::directory::error::LockError::LockBusy);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    fn watch(&self, cb: WatchCallback) -> tantivy::Result<WatchHandle> {
        Ok(self.0.watch.subscribe(cb))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AeadKey {
        AeadKey::from_bytes(&[9u8; 32])
    }

    #[test]
    fn geometry_and_sizes() {
        for plain in [
            0usize,
            1,
            BLOCK - 1,
            BLOCK,
            BLOCK + 1,
            3 * BLOCK,
            3 * BLOCK + 7,
        ] {
            let enc = seal_all(&key(), Path::new("x"), &vec![1u8; plain]).len() as u64;
            let n = plain.div_ceil(BLOCK).max(1) as u64;
            assert_eq!(geometry(enc), Some((plain as u64, n)), "{plain}");
        }
        assert_eq!(geometry(27), None);
    }

    #[test]
    fn files_are_sealed_on_disk_read_in_ranges_and_bound_to_their_names() {
        let d = tempfile::tempdir().unwrap();
        let dir = SealedDir::open(d.path(), key(), false).unwrap();
        // A file of several blocks, written in odd pieces.
        let data: Vec<u8> = (0..(3 * BLOCK + 1234)).map(|i| (i % 251) as u8).collect();
        let mut w = dir.open_write(Path::new("a.idx")).unwrap();
        for chunk in data.chunks(7777) {
            w.write_all(chunk).unwrap();
        }
        w.write_all(b"canary").unwrap();
        w.terminate().unwrap();
        let mut all = data.clone();
        all.extend_from_slice(b"canary");
        dir.atomic_write(Path::new("meta.json"), b"{\"canary\":1}")
            .unwrap();
        for e in std::fs::read_dir(d.path()).unwrap() {
            let b = std::fs::read(e.unwrap().path()).unwrap();
            assert!(!b.windows(6).any(|w| w == b"canary"));
        }
        // Ranges across block boundaries read back exactly.
        let again = SealedDir::open(d.path(), key(), true).unwrap();
        let h = again.get_file_handle(Path::new("a.idx")).unwrap();
        assert_eq!(h.len(), all.len());
        for r in [
            0..10,
            BLOCK - 5..BLOCK + 5,
            BLOCK..2 * BLOCK,
            100..3 * BLOCK + 100,
            all.len() - 6..all.len(),
            0..all.len(),
        ] {
            assert_eq!(h.read_bytes(r.clone()).unwrap().as_slice(), &all[r]);
        }
        assert_eq!(
            again.atomic_read(Path::new("meta.json")).unwrap(),
            b"{\"canary\":1}"
        );
        again.verify().unwrap();
        // Swapped names, a flipped bit, a dropped last block: errors.
        std::fs::copy(d.path().join("meta.json"), d.path().join("b.idx")).unwrap();
        assert!(again.atomic_read(Path::new("b.idx")).is_err());
        std::fs::remove_file(d.path().join("b.idx")).unwrap();
        let orig = std::fs::read(d.path().join("a.idx")).unwrap();
        let mut b = orig.clone();
        b[BLOCK + 100] ^= 1;
        std::fs::write(d.path().join("a.idx"), &b).unwrap();
        let h = again.get_file_handle(Path::new("a.idx")).unwrap();
        assert!(h.read_bytes(0..10).is_ok());
        assert!(h.read_bytes(BLOCK - 1..BLOCK + 1).is_err());
        assert!(again.verify().is_err());
        std::fs::write(d.path().join("a.idx"), &orig[..3 * (BLOCK + OVER)]).unwrap();
        let h = again.get_file_handle(Path::new("a.idx")).unwrap();
        assert!(
            h.read_bytes(h.len() - 1..h.len()).is_err(),
            "the new last block is not marked last"
        );
        std::fs::write(d.path().join("a.idx"), &orig).unwrap();
        // Writing twice to one name is refused, as tantivy expects.
        assert!(dir.open_write(Path::new("a.idx")).is_err());
        dir.delete(Path::new("a.idx")).unwrap();
        assert!(!dir.exists(Path::new("a.idx")).unwrap());
        // An abandoned writer leaves no temporary file.
        let w = dir.open_write(Path::new("c.idx")).unwrap();
        drop(w);
        assert!(
            std::fs::read_dir(d.path()).unwrap().all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".qtmp"))
        );
    }
}
