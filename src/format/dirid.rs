//! The directory ID file `quire.dirid` (docs/FORMAT.md §5): 16 random bytes,
//! the associated data of every name encrypted in that directory.

/// File name of the directory ID inside each ciphertext directory.
pub const FILE_NAME: &str = "quire.dirid";
/// Length of a directory ID.
pub const LEN: usize = 16;

/// Parses a dirid file's bytes.
pub fn parse(b: &[u8]) -> Option<[u8; LEN]> {
    b.try_into().ok()
}
