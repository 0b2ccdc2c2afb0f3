//! File content operations as the namespace offers them: each goes to the
//! content engine ([`crate::vault::content`]) and tells the hooks of its
//! commit points (a close that is a save, an fsync) and of a file's first
//! change since its last commit.

use std::fs::File;
use std::io;
use std::sync::Arc;

use super::Tree;
use super::hooks::Commit;
use crate::vault::content::OpenFile;
use crate::vault::node::Node;

impl Tree {
    /// Opens a file for I/O (see [`crate::vault::content::Content::open`]).
    pub fn open(&self, node: Arc<Node>, write: bool) -> io::Result<OpenFile> {
        self.content.open(node, write)
    }

    /// Wraps a host file just created by [`Tree::create`].
    pub fn open_created(&self, node: Arc<Node>, file: File) -> OpenFile {
        self.content.open_created(node, file)
    }

    /// Reads up to `size` bytes at `off` and hands them to `f`.
    pub fn read_with<R>(
        &self,
        of: &OpenFile,
        off: u64,
        size: u32,
        f: impl FnOnce(&[u8]) -> R,
    ) -> io::Result<R> {
        self.content.read_with(of, off, size, f)
    }

    /// The whole plaintext of a file node, read under its content lock.
    pub fn plain_content(&self, node: &Node) -> io::Result<zeroize::Zeroizing<Vec<u8>>> {
        self.content.plain_content(node)
    }

    /// `lseek(SEEK_DATA / SEEK_HOLE)`.
    pub fn seek_data(&self, of: &OpenFile, offset: u64, data: bool) -> io::Result<u64> {
        self.content.seek_data(of, offset, data)
    }

    /// What every change does first, for the hooks.
    fn first(&self) -> impl Fn(&Node, &File) + '_ {
        move |n, f| self.hooks().first_change(self, n, f)
    }

    /// Writes `data` at `off`.
    pub fn write(&self, of: &OpenFile, off: u64, data: &[u8]) -> io::Result<usize> {
        self.content.write(of, off, data, &self.first())
    }

    /// Sets the plaintext size (truncate or extend with zeros).
    pub fn truncate(&self, of: &OpenFile, size: u64) -> io::Result<()> {
        self.content.truncate(of, size, &self.first())
    }

    /// fallocate (see [`crate::vault::content::Content::fallocate`]).
    pub fn fallocate(&self, of: &OpenFile, offset: u64, length: u64, mode: i32) -> io::Result<()> {
        self.content
            .fallocate(of, offset, length, mode, &self.first())
    }

    /// Truncates a file that is not open (setattr without a handle).
    pub fn truncate_node(&self, node: Arc<Node>, size: u64) -> io::Result<()> {
        let of = self.open(node, true)?;
        let r = self.truncate(&of, size);
        let c = self.release(&of);
        r.and(c)
    }

    /// fsync / fdatasync: the content is durable and becomes what a crash
    /// rolls back to.
    pub fn fsync(&self, of: &OpenFile, datasync: bool) -> io::Result<()> {
        self.content.fsync(of, datasync)?;
        self.hooks().committed(self, of, Commit::Synced);
        Ok(())
    }

    /// A close of a descriptor on this handle: the changes so far are
    /// committed (and recorded, when they are new).
    pub fn flush(&self, of: &OpenFile) -> io::Result<()> {
        if !of.writable() {
            return Ok(());
        }
        let save = self.content.flush(of)?;
        self.hooks().committed(self, of, Commit::Closed { save });
        Ok(())
    }

    /// Closes a handle (once per handle, after its last descriptor).
    pub fn release(&self, of: &OpenFile) -> io::Result<()> {
        if !of.writable() {
            return Ok(());
        }
        let save = self.content.release(of)?;
        self.hooks().committed(self, of, Commit::Released { save });
        Ok(())
    }
}
