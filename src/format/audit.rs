//! Audit log records (docs/FORMAT.md §16): `quire.audit` is a sealed record
//! stream (§10) with magic `QUIREAUD`, one frame (kind 1) per event. Each
//! record carries the link of the one before it, so the records form a
//! hash chain on top of the stream's per-frame authentication.
//!
//! ```text
//! body: seq u64 ‖ time i64 (ns, UTC) ‖ prev link (32) ‖ event u8 ‖ uid u32 ‖
//!       version u32 ‖ path len u16 ‖ path ‖ to len u16 ‖ to ‖ detail len u16 ‖ detail
//! link: HMAC-SHA256(audit chain key, body)       (prev link of record 1: 32 zero bytes)
//! ```

/// Stream magic.
pub const MAGIC: &[u8; 8] = b"QUIREAUD";
/// Frame kind of a record.
pub const RECORD: u8 = 1;
/// Frame kind of a record that names the person who unlocked (a named key
/// slot, §2.2): the body ends with `person len u16 ‖ person`.
pub const RECORD_BY: u8 = 2;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The vault was mounted (detail: read-write or read-only).
    Mount = 1,
    /// The vault was unmounted and sealed.
    Unmount = 2,
    /// A note was created.
    Create = 3,
    /// A note was saved (version: its version number, 0 if not kept).
    Save = 4,
    /// A note or folder was renamed (path → to).
    Rename = 5,
    /// A note was deleted (detail: to the trash, or for good).
    Delete = 6,
    /// An old version or a trashed note was restored.
    Restore = 7,
    /// A note expired and went to the trash.
    Expire = 8,
    /// A trashed note was purged: content, versions and trash entry.
    Purge = 9,
    /// The password was changed.
    PasswordChange = 10,
    /// The vault was unlocked with the recovery key.
    RecoveryKey = 11,
    /// A note's content was taken out of the vault by a quire command.
    Export = 12,
    /// A note's expiry or retention date was set or cleared.
    Dates = 13,
    /// A folder was created.
    Mkdir = 14,
    /// A folder was removed.
    Rmdir = 15,
    /// `quire audit --accept`: the log as it is was reviewed and accepted
    /// as this machine's head (detail: what the head was before).
    Accept = 16,
    /// A device of the vault was renamed (detail: the new name).
    Device = 17,
    /// An export file was disposed of (`quire export --dispose`; detail:
    /// the export's ID and file).
    Dispose = 18,
    /// A backup snapshot was taken (`quire backup`; detail: JSON with the
    /// backup folder, snapshot ID, files and bytes).
    Backup = 19,
    /// A restore drill was run (`quire backup drill`; detail: JSON with
    /// the snapshot, notes read, and whether it passed).
    Drill = 20,
    /// Wrong passwords or recovery keys were tried on this device since
    /// its last unlock (detail: how many, since when).
    FailedUnlocks = 21,
    /// A note or an old version was opened by another Linux account than
    /// the vault's owner (a mount with `--allow-other`; `uid` is the
    /// reader's; detail: its account name).
    Read = 22,
    /// A person's key slot was added or removed (`quire user`; detail:
    /// whom).
    User = 23,
    /// The vault was unlocked with the break-glass slot.
    BreakGlass = 24,
    /// The vault was re-keyed (`--rekey`; detail: what was carried over
    /// and who must be added again).
    Rekey = 25,
}

impl Event {
    /// All events, in code order.
    pub const ALL: [Event; 25] = [
        Event::Mount,
        Event::Unmount,
        Event::Create,
        Event::Save,
        Event::Rename,
        Event::Delete,
        Event::Restore,
        Event::Expire,
        Event::Purge,
        Event::PasswordChange,
        Event::RecoveryKey,
        Event::Export,
        Event::Dates,
        Event::Mkdir,
        Event::Rmdir,
        Event::Accept,
        Event::Device,
        Event::Dispose,
        Event::Backup,
        Event::Drill,
        Event::FailedUnlocks,
        Event::Read,
        Event::User,
        Event::BreakGlass,
        Event::Rekey,
    ];

    /// The event of a code.
    pub fn from_code(c: u8) -> Option<Event> {
        Event::ALL.iter().copied().find(|e| *e as u8 == c)
    }

    /// A word for listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Mount => "mount",
            Event::Unmount => "unmount",
            Event::Create => "create",
            Event::Save => "save",
            Event::Rename => "rename",
            Event::Delete => "delete",
            Event::Restore => "restore",
            Event::Expire => "expire",
            Event::Purge => "purge",
            Event::PasswordChange => "password-change",
            Event::RecoveryKey => "recovery-key",
            Event::Export => "export",
            Event::Dates => "dates",
            Event::Mkdir => "mkdir",
            Event::Rmdir => "rmdir",
            Event::Accept => "accept",
            Event::Device => "device",
            Event::Dispose => "dispose",
            Event::Backup => "backup",
            Event::Drill => "drill",
            Event::FailedUnlocks => "failed-unlocks",
            Event::Read => "read",
            Event::User => "user",
            Event::BreakGlass => "break-glass",
            Event::Rekey => "rekey",
        }
    }
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// 1, 2, 3 … with no gaps.
    pub seq: u64,
    /// When, ns since the Unix epoch.
    pub time_ns: i64,
    /// Link of the record before (zeros for the first).
    pub prev: [u8; 32],
    /// What.
    pub event: Event,
    /// The user id of the process that did it.
    pub uid: u32,
    /// Version number for saves and restores (0: none).
    pub version: u32,
    /// Path in the vault (`/`-separated, no leading `/`), or empty.
    pub path: Vec<u8>,
    /// Second path (a rename's target), or empty.
    pub to: Vec<u8>,
    /// Free text (never note content).
    pub detail: String,
    /// The person whose named key slot unlocked the vault, or empty (the
    /// shared password or the recovery key; frame kind [`RECORD`]).
    pub person: String,
}

fn put(b: &mut Vec<u8>, s: &[u8]) {
    let s = &s[..s.len().min(u16::MAX as usize)];
    b.extend_from_slice(&(s.len() as u16).to_be_bytes());
    b.extend_from_slice(s);
}

impl Record {
    /// The body bytes (what is sealed, and what the next record's link covers).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64 + self.path.len() + self.to.len() + self.detail.len());
        b.extend_from_slice(&self.seq.to_be_bytes());
        b.extend_from_slice(&self.time_ns.to_be_bytes());
        b.extend_from_slice(&self.prev);
        b.push(self.event as u8);
        b.extend_from_slice(&self.uid.to_be_bytes());
        b.extend_from_slice(&self.version.to_be_bytes());
        put(&mut b, &self.path);
        put(&mut b, &self.to);
        put(&mut b, self.detail.as_bytes());
        if !self.person.is_empty() {
            put(&mut b, self.person.as_bytes());
        }
        b
    }

    /// The frame kind its body is written as.
    pub fn kind(&self) -> u8 {
        if self.person.is_empty() {
            RECORD
        } else {
            RECORD_BY
        }
    }

    /// Parses a body of frame `kind`; `None` if malformed, of an unknown
    /// event or an unknown kind.
    pub fn decode_kind(kind: u8, b: &[u8]) -> Option<Record> {
        match kind {
            RECORD => Record::decode(b),
            RECORD_BY => Record::parse(b, true).filter(|r| !r.person.is_empty()),
            _ => None,
        }
    }

    /// Parses a body of kind [`RECORD`]; `None` if malformed or of an
    /// unknown event.
    pub fn decode(b: &[u8]) -> Option<Record> {
        Record::parse(b, false)
    }

    fn parse(b: &[u8], with_person: bool) -> Option<Record> {
        let mut r = b;
        let mut take = |n: usize| -> Option<&[u8]> {
            let (h, t) = (r.get(..n)?, r.get(n..)?);
            r = t;
            Some(h)
        };
        let seq = u64::from_be_bytes(take(8)?.try_into().ok()?);
        let time_ns = i64::from_be_bytes(take(8)?.try_into().ok()?);
        let prev: [u8; 32] = take(32)?.try_into().ok()?;
        let event = Event::from_code(take(1)?[0])?;
        let uid = u32::from_be_bytes(take(4)?.try_into().ok()?);
        let version = u32::from_be_bytes(take(4)?.try_into().ok()?);
        let mut field = || -> Option<Vec<u8>> {
            let n = u16::from_be_bytes(take(2)?.try_into().ok()?) as usize;
            Some(take(n)?.to_vec())
        };
        let path = field()?;
        let to = field()?;
        let detail = String::from_utf8(field()?).ok()?;
        let person = if with_person {
            String::from_utf8(field()?).ok()?
        } else {
            String::new()
        };
        if !r.is_empty() {
            return None;
        }
        Some(Record {
            seq,
            time_ns,
            prev,
            event,
            uid,
            version,
            path,
            to,
            detail,
            person,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_size() {
        let r = Record {
            seq: 7,
            time_ns: 1_795_608_000_000_000_000,
            prev: [9u8; 32],
            event: Event::Rename,
            uid: 1000,
            version: 0,
            path: b"a/b.md".to_vec(),
            to: b"a/c.md".to_vec(),
            detail: String::new(),
            person: String::new(),
        };
        let b = r.encode();
        // 8 + 8 + 32 + 1 + 4 + 4 + (2 + 6) + (2 + 6) + 2
        assert_eq!(b.len(), 75);
        assert_eq!(Record::decode(&b), Some(r.clone()));
        assert_eq!(Record::decode(&b[..74]), None);
        let mut unknown = b.clone();
        unknown[48] = 0xEE;
        assert_eq!(Record::decode(&unknown), None);
        for e in Event::ALL {
            assert_eq!(Event::from_code(e as u8), Some(e));
        }
        assert_eq!(r.kind(), RECORD);
        // A record naming a person: kind 2, the name after the detail.
        let by = Record {
            person: "Sam".into(),
            ..r.clone()
        };
        let bb = by.encode();
        assert_eq!(bb.len(), 75 + 2 + 3);
        assert_eq!(&bb[75..], b"\x00\x03Sam");
        assert_eq!(by.kind(), RECORD_BY);
        assert_eq!(Record::decode_kind(RECORD_BY, &bb), Some(by));
        // Either kind with the other's body, or an unknown kind, is refused.
        assert_eq!(Record::decode_kind(RECORD, &bb), None);
        assert_eq!(Record::decode_kind(RECORD_BY, &b), None);
        assert_eq!(Record::decode_kind(3, &b), None);
        // An empty person is written as kind 1, never as kind 2.
        let mut empty = b.clone();
        empty.extend_from_slice(&[0, 0]);
        assert_eq!(Record::decode_kind(RECORD_BY, &empty), None);
    }
}
