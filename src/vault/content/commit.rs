//! Commit points: fsync, the close of a descriptor (flush) and of a
//! handle (release) make a file's changes what a crash rolls back to; the
//! crash journal notes blocks before they change (FORMAT §11).

use std::io;
use std::sync::atomic::Ordering;

use super::{Content, FileKey, FirstChange, OpenFile};
use crate::vault::node::Node;

impl Content {
    /// fsync / fdatasync: the content is durable and becomes what a crash
    /// rolls back to.
    pub fn fsync(&self, of: &OpenFile, datasync: bool) -> io::Result<()> {
        crate::store::fault::point()?;
        if datasync {
            of.file.sync_data()?;
        } else {
            of.file.sync_all()?;
        }
        self.commit(of)
    }

    /// A close of a descriptor on this handle (`close` waits for it): the
    /// changes so far are committed. Returns whether the content changed
    /// since it was last recorded: then this close is a save.
    ///
    /// A handle that wrote is recorded here, while `close` waits (the
    /// release comes later, when the next save may already be under way).
    /// Not for a handle that only truncated: a shell's `>` closes a
    /// duplicate descriptor right after truncating, before writing.
    pub fn flush(&self, of: &OpenFile) -> io::Result<bool> {
        if !of.writable {
            return Ok(false);
        }
        self.commit(of)?;
        if of.wrote.swap(false, Ordering::AcqRel) {
            of.unrecorded.store(false, Ordering::Release);
            // Recorded already (an fsync's checkpoint, or another
            // handle's save since the last write): nothing new to
            // record or audit (issue 10.7: vim's first :w fsyncs,
            // then closes).
            return Ok(of.node.changed.swap(false, Ordering::AcqRel));
        }
        Ok(false)
    }

    /// Closes a handle (once per handle, after its last descriptor is
    /// closed). The last writer's close commits its changes. Returns
    /// whether a change of this handle's is not yet recorded (a truncate
    /// without a write): then this close is a save.
    pub fn release(&self, of: &OpenFile) -> io::Result<bool> {
        if !of.writable {
            return Ok(false);
        }
        if of.node.writers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.commit(of)?;
            self.keep_sums(&of.node, &of.file);
        }
        // Only this handle's own unrecorded change: the release comes
        // after `close` returned, when another handle may be in the middle
        // of the next save.
        Ok(of.unrecorded.swap(false, Ordering::AcqRel))
    }

    /// Commits a node's changes in progress without an open handle (it is
    /// being removed).
    pub(crate) fn commit_node(&self, node: &Node) -> io::Result<()> {
        let _g = node.io.write().unwrap_or_else(|e| e.into_inner());
        self.journal.commit(&node.undo).map(|_| ())
    }

    /// Commits an open file's changes in progress (see
    /// [`crate::vault::journal`]). If the note's name no longer holds this file (another program, such
    /// as a sync tool bringing another computer's version, replaced or
    /// removed it while it was being written here), what was written is
    /// kept as a conflict copy beside it and the commit fails: the change
    /// never silently stays in a file no name reaches (issue 18.5).
    pub(crate) fn commit(&self, of: &OpenFile) -> io::Result<()> {
        let node = &of.node;
        let _g = node.io.write().unwrap_or_else(|e| e.into_inner());
        if self.journal.commit(&node.undo)? {
            self.still_in_place(of)?;
        }
        Ok(())
    }

    /// Whether the node's name still holds its file (see [`Content::commit`]).
    fn still_in_place(&self, of: &OpenFile) -> io::Result<()> {
        let node = &of.node;
        if node.replaced.load(Ordering::Acquire) {
            return Err(crate::vault::util::eio());
        }
        let Some((dir, host)) = node.location() else {
            return Ok(()); // its last name was removed here: an open, unlinked file
        };
        let now = dir.handle()?.stat_child(&host);
        if now.as_ref().is_ok_and(|st| st.st_ino == node.ino) {
            return Ok(());
        }
        node.replaced.store(true, Ordering::Release);
        let what = if now.is_ok() { "replaced" } else { "removed" };
        match self.keep_copy(&dir, &host, &of.file) {
            Ok(copy) => log::error!(
                "{} was {what} by another program (a sync tool bringing another computer's version?) while it was being written here: what was written here is kept as the conflict copy {} beside it (shown as '… (conflict …)'); the note keeps the other version",
                node.describe(),
                copy.to_string_lossy()
            ),
            Err(e) => log::error!(
                "{} was {what} by another program while it was being written here, and what was written here could not be kept as a conflict copy ({e})",
                node.describe()
            ),
        }
        Err(crate::vault::util::eio())
    }

    /// Copies the host file `file` beside `host` in `dir` under a
    /// Syncthing-style conflict name (docs/FORMAT.md §5.5) naming this
    /// device; returns the copy's host name.
    fn keep_copy(
        &self,
        dir: &Node,
        host: &std::ffi::OsStr,
        file: &std::fs::File,
    ) -> io::Result<std::ffi::OsString> {
        use std::os::unix::fs::FileExt;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let tag = self
            .device_tag
            .get()
            .cloned()
            .unwrap_or_else(|| "QUIRE00".into());
        let h = dir.handle()?;
        for n in 0..100i64 {
            // Two copies within one second: Syncthing's shape has no
            // counter, so the time moves on by `n` seconds.
            let mut name = host.to_owned();
            name.push(format!(
                ".sync-conflict-{}-{tag}",
                crate::vault::util::utc_compact(now + n)
            ));
            let out = match h.open_child(
                &name,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
                0o600,
            ) {
                Ok(f) => f,
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
                Err(e) => return Err(e),
            };
            let len = file.metadata()?.len();
            let mut buf = vec![0u8; 1 << 20];
            let mut at = 0u64;
            while at < len {
                let n = file.read_at(&mut buf, at)?;
                if n == 0 {
                    break;
                }
                out.write_all_at(&buf[..n], at)?;
                at += n as u64;
            }
            out.sync_all()?;
            return Ok(name);
        }
        Err(io::Error::from_raw_os_error(libc::EEXIST))
    }

    /// Journals blocks `first..=last` (as committed at host size `csize`)
    /// before they change.
    pub(crate) fn before_change(
        &self,
        of: &OpenFile,
        csize: u64,
        first: u64,
        last: u64,
        on_first: FirstChange,
    ) -> io::Result<()> {
        let k = self.first_change(of, csize, on_first)?;
        self.journal.before_change(
            &of.node.undo,
            || self.journal_location(&of.node),
            &of.file,
            &k.id,
            csize,
            first,
            last,
        )
    }

    /// Before everything from block `first` on is cut: the journal saves
    /// what it holds in bounded batches, skipping holes (issue 16.11).
    pub(crate) fn before_cut(
        &self,
        of: &OpenFile,
        csize: u64,
        first: u64,
        on_first: FirstChange,
    ) -> io::Result<()> {
        let k = self.first_change(of, csize, on_first)?;
        self.journal.before_cut(
            &of.node.undo,
            || self.journal_location(&of.node),
            &of.file,
            &k.id,
            csize,
            first,
        )
    }

    /// What every change does first: the file's key, and for the first
    /// change since the last commit of a file with content, `on_first` while
    /// its content is still intact (the history keeps a first version then).
    pub(crate) fn first_change<'a>(
        &self,
        of: &'a OpenFile,
        csize: u64,
        on_first: FirstChange,
    ) -> io::Result<&'a FileKey> {
        let k = self.key(&of.node, &of.file)?;
        if csize > self.layout.header_len()
            && of
                .node
                .undo
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_none()
        {
            on_first(&of.node, &of.file);
        }
        Ok(k)
    }

    /// The folder ID and host name the crash journal names a file by.
    pub(crate) fn journal_location(&self, node: &Node) -> Option<([u8; 16], Vec<u8>)> {
        let (dir, host) = node.location()?;
        let id = dir.dir_id().ok()?;
        Some((
            id,
            std::os::unix::ffi::OsStrExt::as_bytes(host.as_os_str()).to_vec(),
        ))
    }
}
