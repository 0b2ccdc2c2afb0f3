//! Quire: an encrypted, versioned notebook you mount as an ordinary folder.
//!
//! Layers point down only (see `../shared/HOUSE.md` and the
//! `layering` test): `crypto` → `format`, `store` → `vault` → `fuse`,
//! `control` → `cli`.

pub mod cli;
pub mod control;
pub mod crypto;
pub mod format;
pub mod fuse;
pub mod index;
pub mod store;
pub mod vault;
