//! A `tantivy::Directory` that seals every index file (docs/FORMAT.md §17):
//! on disk each file is `nonce ‖ AES-256-GCM(index key, AAD = "quire/v1/index/"
//! ‖ file name, content) ‖ tag`; in memory it is kept decrypted (the index
//! of a notebook is small), so nothing of the index — terms, stored text,
//! paths — ever reaches the disk in the clear, not even in a temp folder:
//! files being written are buffered in memory and sealed when finished.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tantivy::Directory;
use tantivy::directory::error::{DeleteError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    AntiCallToken, FileHandle, FileSlice, TerminatingWrite, WatchCallback, WatchCallbackList,
    WatchHandle, WritePtr,
};

use crate::crypto::AeadKey;

/// The index's sealed directory.
#[derive(Clone)]
pub struct SealedDir(Arc<Inner>);

struct Inner {
    root: PathBuf,
    key: AeadKey,
    read_only: bool,
    files: RwLock<HashMap<PathBuf, FileSlice>>,
    writing: RwLock<HashSet<PathBuf>>,
    locks: std::sync::Mutex<HashSet<PathBuf>>,
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

fn aad(name: &Path) -> Vec<u8> {
    let mut a = b"quire/v1/index/".to_vec();
    a.extend_from_slice(name.as_os_str().as_encoded_bytes());
    a
}

fn io_err(path: &Path, e: io::Error) -> OpenReadError {
    OpenReadError::IoError {
        io_error: Arc::new(e),
        filepath: path.to_owned(),
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
        Ok(SealedDir(Arc::new(Inner {
            root: root.to_owned(),
            key,
            read_only,
            files: RwLock::default(),
            writing: RwLock::default(),
            locks: Default::default(),
            watch: WatchCallbackList::default(),
        })))
    }

    fn host(&self, name: &Path) -> io::Result<PathBuf> {
        // tantivy names its files itself (UUIDs, meta.json): plain names.
        let s = name.to_str().unwrap_or("");
        if s.is_empty() || s.contains('/') || s.starts_with("..") {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "bad index file name",
            ));
        }
        Ok(self.0.root.join(name))
    }

    /// Reads and opens one file. A file that fails authentication is an
    /// I/O error (tampered or damaged: the index is then rebuilt).
    fn load(&self, name: &Path) -> Result<FileSlice, OpenReadError> {
        if let Some(f) = self
            .0
            .files
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Ok(f.clone());
        }
        let host = self.host(name).map_err(|e| io_err(name, e))?;
        let sealed = match std::fs::read(&host) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(OpenReadError::FileDoesNotExist(name.to_owned()));
            }
            Err(e) => return Err(io_err(name, e)),
        };
        let plain = self.0.key.open(&aad(name), &sealed).map_err(|_| {
            io_err(
                name,
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "an index file failed authentication",
                ),
            )
        })?;
        let slice = FileSlice::from(plain);
        self.0
            .files
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), slice.clone());
        Ok(slice)
    }

    /// Seals `data` as `name`: written to a temporary file, fsync'd and
    /// renamed into place.
    fn store(&self, name: &Path, data: Vec<u8>) -> io::Result<()> {
        if self.0.read_only {
            return Err(io::Error::from_raw_os_error(libc::EROFS));
        }
        let host = self.host(name)?;
        let sealed = self.0.key.seal(&aad(name), &data);
        let tmp = host.with_extension("qtmp");
        {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&sealed)?;
            f.sync_data()?;
        }
        std::fs::rename(&tmp, &host)?;
        self.0
            .files
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), FileSlice::from(data));
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
}

struct Writer {
    dir: SealedDir,
    name: PathBuf,
    data: Vec<u8>,
    done: bool,
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.data.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TerminatingWrite for Writer {
    fn terminate_ref(&mut self, _: AntiCallToken) -> io::Result<()> {
        let data = std::mem::take(&mut self.data);
        self.dir.store(&self.name, data)?;
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
        Ok(Arc::new(self.load(path)?))
    }

    fn open_read(&self, path: &Path) -> Result<FileSlice, OpenReadError> {
        self.load(path)
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.0
            .files
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(path);
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
            .files
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(path)
            || self
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
        Ok(BufWriter::new(Box::new(Writer {
            dir: self.clone(),
            name: path.to_owned(),
            data: Vec::new(),
            done: false,
        })))
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        let s = self.load(path)?;
        let b = s.read_bytes().map_err(|e| io_err(path, e))?;
        Ok(b.as_slice().to_vec())
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.store(path, data.to_vec())?;
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

    #[test]
    fn files_are_sealed_on_disk_and_bound_to_their_names() {
        let d = tempfile::tempdir().unwrap();
        let key = || AeadKey::from_bytes(&[9u8; 32]);
        let dir = SealedDir::open(d.path(), key(), false).unwrap();
        let mut w = dir.open_write(Path::new("a.idx")).unwrap();
        w.write_all(b"secret term canary").unwrap();
        w.terminate().unwrap();
        dir.atomic_write(Path::new("meta.json"), b"{\"canary\":1}")
            .unwrap();
        for e in std::fs::read_dir(d.path()).unwrap() {
            let b = std::fs::read(e.unwrap().path()).unwrap();
            assert!(!b.windows(6).any(|w| w == b"canary"));
        }
        // A fresh opening reads them back.
        let again = SealedDir::open(d.path(), key(), true).unwrap();
        assert_eq!(
            again.atomic_read(Path::new("a.idx")).unwrap(),
            b"secret term canary"
        );
        // Swapped names, or a flipped bit: an error, never other content.
        std::fs::copy(d.path().join("meta.json"), d.path().join("b.idx")).unwrap();
        let again = SealedDir::open(d.path(), key(), true).unwrap();
        assert!(again.atomic_read(Path::new("b.idx")).is_err());
        let mut b = std::fs::read(d.path().join("a.idx")).unwrap();
        b[15] ^= 1;
        std::fs::write(d.path().join("a.idx"), b).unwrap();
        let again = SealedDir::open(d.path(), key(), true).unwrap();
        assert!(again.atomic_read(Path::new("a.idx")).is_err());
        // Writing twice to one name is refused, as tantivy expects.
        assert!(dir.open_write(Path::new("a.idx")).is_err());
        dir.delete(Path::new("a.idx")).unwrap();
        assert!(!dir.exists(Path::new("a.idx")).unwrap());
    }
}
