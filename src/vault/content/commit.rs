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
        self.commit(&of.node)
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
        self.commit(&of.node)?;
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
            self.commit(&of.node)?;
        }
        // Only this handle's own unrecorded change: the release comes
        // after `close` returned, when another handle may be in the middle
        // of the next save.
        Ok(of.unrecorded.swap(false, Ordering::AcqRel))
    }

    /// Commits a node's changes in progress (see [`crate::vault::journal`]).
    pub(crate) fn commit(&self, node: &Node) -> io::Result<()> {
        let _g = node.io.write().unwrap_or_else(|e| e.into_inner());
        self.journal.commit(&node.undo).map(|_| ())
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
