//! Record bodies of the crash-undo journal `quire.undo` (docs/FORMAT.md §11),
//! framed and sealed as a stream (§10) with magic `QUIREUND`.

/// Stream magic of `quire.undo`.
pub const MAGIC: &[u8; 8] = b"QUIREUND";
/// Frame kind: a file starts changing.
pub const BEGIN: u8 = 1;
/// Frame kind: the saved ciphertext of one block before it is overwritten.
pub const BLOCK: u8 = 2;
/// Frame kind: the changes of a session are committed.
pub const END: u8 = 3;
/// Record kind: an append to a history stream or the audit log is about to
/// be written at an offset (a torn frame there is a crash's, not
/// tampering).
pub const APPEND: u8 = 4;
/// Frame kind: a file starts changing, with the host file's inode number
/// (written since issue 18.1; `BEGIN` is still read).
pub const BEGIN_AT: u8 = 5;
/// `APPEND`'s target: a note's history stream.
pub const TO_HISTORY: u8 = 1;
/// `APPEND`'s target: the audit log.
pub const TO_AUDIT: u8 = 2;

/// One decoded journal record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// `session u64 ‖ file ID (16) ‖ committed host size u64 ‖ directory
    /// ID (16) ‖ host name`: the file is found by its folder's ID (stable
    /// across folder renames) and its host (ciphertext) name.
    Begin {
        /// Session number, unique within a journal generation.
        session: u64,
        /// The file's content ID (its header), checked before undoing.
        file_id: [u8; 16],
        /// Host size at the last commit.
        size: u64,
        /// The host file's inode number (`BEGIN_AT`; `None` in a `BEGIN`
        /// of an older journal): a file replaced since (a sync tool, a
        /// restored backup) is not this session's and is left alone.
        ino: Option<u64>,
        /// ID of the folder holding the file.
        dir_id: [u8; 16],
        /// Host name of the file in that folder.
        name: Vec<u8>,
    },
    /// `session u64 ‖ block index u64 ‖ sealed block as it was`.
    Block {
        /// Session number.
        session: u64,
        /// Block index.
        index: u64,
        /// The block's host bytes at the last commit.
        bytes: Vec<u8>,
    },
    /// `session u64`.
    End {
        /// Session number.
        session: u64,
    },
    /// `target u8 ‖ offset u64 ‖ directory ID (16) ‖ host name`.
    Append {
        /// [`TO_HISTORY`] or [`TO_AUDIT`] (for the audit log, the folder ID
        /// is the ID of the device whose chain it is, zero in journals of
        /// versions before per-device chains, and there is no name).
        target: u8,
        /// Where the frames are being written.
        offset: u64,
        /// For a history stream: ID of the folder holding it.
        dir_id: [u8; 16],
        /// For a history stream: its host name.
        name: Vec<u8>,
    },
}

impl Record {
    /// Frame kind and body bytes.
    pub fn encode(&self) -> (u8, Vec<u8>) {
        match self {
            Record::Begin {
                session,
                file_id,
                size,
                ino,
                dir_id,
                name,
            } => {
                let mut b = Vec::with_capacity(56 + name.len());
                b.extend_from_slice(&session.to_be_bytes());
                b.extend_from_slice(file_id);
                b.extend_from_slice(&size.to_be_bytes());
                if let Some(ino) = ino {
                    b.extend_from_slice(&ino.to_be_bytes());
                }
                b.extend_from_slice(dir_id);
                b.extend_from_slice(name);
                (if ino.is_some() { BEGIN_AT } else { BEGIN }, b)
            }
            Record::Block {
                session,
                index,
                bytes,
            } => {
                let mut b = Vec::with_capacity(16 + bytes.len());
                b.extend_from_slice(&session.to_be_bytes());
                b.extend_from_slice(&index.to_be_bytes());
                b.extend_from_slice(bytes);
                (BLOCK, b)
            }
            Record::End { session } => (END, session.to_be_bytes().to_vec()),
            Record::Append {
                target,
                offset,
                dir_id,
                name,
            } => {
                let mut b = Vec::with_capacity(25 + name.len());
                b.push(*target);
                b.extend_from_slice(&offset.to_be_bytes());
                b.extend_from_slice(dir_id);
                b.extend_from_slice(name);
                (APPEND, b)
            }
        }
    }

    /// Decodes a body of the given kind; `None` if malformed or unknown.
    pub fn decode(kind: u8, b: &[u8]) -> Option<Record> {
        let u64_at = |i: usize| -> Option<u64> {
            Some(u64::from_be_bytes(b.get(i..i + 8)?.try_into().ok()?))
        };
        match kind {
            BEGIN | BEGIN_AT => {
                // BEGIN_AT has the inode number after the size.
                let (ino, at) = match kind {
                    BEGIN_AT => (Some(u64_at(32)?), 40),
                    _ => (None, 32),
                };
                (b.len() > at + 16).then_some(())?;
                Some(Record::Begin {
                    session: u64_at(0)?,
                    file_id: b[8..24].try_into().ok()?,
                    size: u64_at(24)?,
                    ino,
                    dir_id: b[at..at + 16].try_into().ok()?,
                    name: b[at + 16..].to_vec(),
                })
            }
            BLOCK if b.len() > 16 => Some(Record::Block {
                session: u64_at(0)?,
                index: u64_at(8)?,
                bytes: b[16..].to_vec(),
            }),
            END if b.len() == 8 => Some(Record::End {
                session: u64_at(0)?,
            }),
            APPEND if b.len() >= 25 => Some(Record::Append {
                target: b[0],
                offset: u64_at(1)?,
                dir_id: b[9..25].try_into().ok()?,
                name: b[25..].to_vec(),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for r in [
            Record::Begin {
                session: 7,
                file_id: [1; 16],
                size: 4124,
                ino: None,
                dir_id: [2; 16],
                name: b"abcdef".to_vec(),
            },
            Record::Begin {
                session: 8,
                file_id: [1; 16],
                size: 4124,
                ino: Some(0x0102_0304_0506_0708),
                dir_id: [2; 16],
                name: b"abcdef".to_vec(),
            },
            Record::Block {
                session: 7,
                index: 3,
                bytes: vec![9; 4124],
            },
            Record::End { session: 7 },
        ] {
            let (k, b) = r.encode();
            assert_eq!(Record::decode(k, &b), Some(r));
        }
        assert_eq!(Record::decode(9, &[0; 8]), None);
        assert_eq!(Record::decode(END, &[0; 7]), None);
        assert_eq!(Record::decode(BEGIN, &[0; 48]), None);
        assert_eq!(Record::decode(BEGIN_AT, &[0; 56]), None);
        // The inode number sits between the size and the folder ID.
        let (k, b) = Record::Begin {
            session: 1,
            file_id: [3; 16],
            size: 2,
            ino: Some(0xAB),
            dir_id: [4; 16],
            name: b"n".to_vec(),
        }
        .encode();
        assert_eq!(k, BEGIN_AT);
        assert_eq!(&b[32..40], &0xABu64.to_be_bytes());
        assert_eq!(&b[40..56], &[4; 16]);
    }
}
