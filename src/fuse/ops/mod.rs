//! The FUSE operations by family; the `Filesystem` impl in `fuse/mod.rs`
//! only delegates here.

mod dir;
mod file;
mod xattr;
