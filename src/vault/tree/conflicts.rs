//! Sync tools' conflict copies, shown beside their note (issue 18.4,
//! docs/FORMAT.md §5.5). When two devices change one note before their
//! sync tool has carried either change across, the tool keeps both: the
//! winner under the note's host name, the other under a name of its own
//! (`<host>.sync-conflict-20261204-144500-ABCDEF7` for Syncthing, see
//! [`crate::format::conflicts`]). Such a name is no encryption of any
//! name, so it would be hidden; instead it is shown as
//! `n02 (conflict 2026-12-04 14.45 ABCDEF7).md` beside `n02.md`,
//! readable, with its own history, removable (to the trash) once the user
//! has merged what they want to keep.

use std::ffi::{OsStr, OsString};

use super::Tree;
use crate::format::conflicts::{self, Conflict};
use crate::format::names;
use crate::vault::node::Node;

/// Marks a shown name as a conflict copy's.
const MARK: &[u8] = b" (conflict ";

/// What a host name is a conflict copy of.
#[derive(Debug, Clone)]
pub struct CopyOf {
    /// The host name of the entry it is a copy of.
    pub original: OsString,
    /// That entry's plaintext name.
    pub plain: Vec<u8>,
    /// How the sync tool named the copy.
    pub conflict: Conflict,
}

impl CopyOf {
    /// The name the copy is shown under: the original's name with
    /// ` (conflict <when> <who>)` before its extension.
    pub fn shown(&self) -> Vec<u8> {
        let p = &self.plain;
        let dot = p
            .iter()
            .rposition(|&b| b == b'.')
            .filter(|&i| i > 0 && i + 1 < p.len());
        let (stem, ext) = match dot {
            Some(i) => (&p[..i], &p[i..]),
            None => (&p[..], &b""[..]),
        };
        let mut what = Vec::new();
        if let Some(w) = &self.conflict.when {
            // "2026-12-04 14:45:00" → "2026-12-04 14.45": no ':' (which
            // some systems and sync tools refuse in a name).
            let w = match w.split_once(' ') {
                Some((d, t)) => format!("{d} {}", t.get(..5).unwrap_or(t).replace(':', ".")),
                None => w.clone(),
            };
            what.push(w);
        }
        if let Some(d) = &self.conflict.device {
            what.push(d.clone());
        }
        if what.is_empty() {
            what.push(self.conflict.tool.name().into());
        }
        let what: String = what
            .join(" ")
            .chars()
            .filter(|c| *c != '/' && *c != '\0' && !c.is_control())
            .collect();
        let mut out = stem.to_vec();
        out.extend_from_slice(MARK);
        out.extend_from_slice(what.as_bytes());
        out.push(b')');
        out.extend_from_slice(ext);
        out
    }
}

impl Tree {
    /// If the entry `host` of `dir` is a sync tool's conflict copy of
    /// another entry of `dir`: what it is a copy of. A host name that is
    /// itself an entry's encrypted name is never a copy (a OneDrive-like
    /// suffix can occur in base64url by chance); the original's name must
    /// decrypt (AES-SIV authenticates it), and a copy of one of Quire's
    /// own side files (`.qh`, `.ql`, …) is not an entry.
    pub(crate) fn copy_of(&self, dir: &Node, host: &OsStr) -> Option<CopyOf> {
        let h = host.to_str()?;
        if h.starts_with('.') || self.decrypted_name(dir, host).is_some() {
            return None;
        }
        conflicts::readings(h).into_iter().find_map(|c| {
            if matches!(names::classify(&c.original), names::Entry::Hidden) {
                return None;
            }
            let plain = self.decrypted_name(dir, OsStr::new(&c.original))?;
            Some(CopyOf {
                original: OsString::from(&c.original),
                plain,
                conflict: c,
            })
        })
    }

    /// The host name of the conflict copy shown as `name` in `dir`, if
    /// there is one.
    pub(crate) fn copy_named(&self, dir: &Node, name: &[u8]) -> Option<OsString> {
        if !looks_like_copy(name) {
            return None;
        }
        let rd = dir.handle().ok()?.read_dir().ok()?;
        rd.flatten().find_map(|e| {
            let host = e.file_name();
            let c = self.copy_of(dir, &host)?;
            (c.shown() == name).then_some(host)
        })
    }

    /// Every conflict copy in `dir`: (host name, what it is a copy of).
    pub fn conflict_copies(&self, dir: &Node) -> std::io::Result<Vec<(OsString, CopyOf)>> {
        let mut out = Vec::new();
        for e in dir.handle()?.read_dir()? {
            let host = e?.file_name();
            if let Some(c) = self.copy_of(dir, &host) {
                out.push((host, c));
            }
        }
        out.sort_by_key(|a| a.1.shown());
        Ok(out)
    }

    /// The host names a record beside `host` in `dir` (a history stream,
    /// a dates record) may be bound to: its own, and, for a conflict copy,
    /// the original's, since the sync tool copied the record as it was.
    pub(crate) fn bound_names(&self, dir: &Node, host: &OsStr) -> Vec<OsString> {
        let mut v = vec![host.to_owned()];
        if let Some(c) = self.copy_of(dir, host) {
            v.push(c.original);
        }
        v
    }
}

impl Tree {
    /// Folder IDs of `dir` other than its own: sync tools' conflict copies
    /// of its `quire.dirid` (`quire.sync-conflict-….dirid`, …), left when
    /// the folder was created under one name on two computers at once.
    pub(crate) fn other_folder_ids(&self, dir: &Node) -> Vec<(OsString, [u8; 16])> {
        let Ok(h) = dir.handle() else {
            return Vec::new();
        };
        let own = dir.dir_id().ok();
        let Ok(names) = h.read_names() else {
            return Vec::new();
        };
        names
            .into_iter()
            .filter(|n| {
                let n = n.to_string_lossy();
                n != crate::format::dirid::FILE_NAME
                    && n.starts_with("quire")
                    && n.ends_with(".dirid")
            })
            .filter_map(|n| {
                let id = crate::format::dirid::parse(&h.read_child(&n).ok()?)?;
                (Some(id) != own).then_some((n, id))
            })
            .collect()
    }

    /// The name `host` has under another folder ID of `dir` (see
    /// [`Tree::other_folder_ids`]), and that ID's file: a note made in the
    /// other computer's copy of the folder.
    pub(crate) fn name_in_other_folder(
        &self,
        dir: &Node,
        host: &OsStr,
    ) -> Option<(Vec<u8>, OsString)> {
        let h = host.to_str()?;
        let enc = match names::classify(h) {
            names::Entry::Direct(enc) => enc.to_string(),
            // A long name's encrypted name is in its sidecar (§5.3).
            names::Entry::Long(_) => String::from_utf8(
                dir.handle()
                    .ok()?
                    .read_child(OsStr::new(&names::sidecar_of(h)))
                    .ok()?,
            )
            .ok()?,
            _ => return None,
        };
        let sealed = names::decode(&enc)?;
        self.other_folder_ids(dir)
            .into_iter()
            .find_map(|(file, id)| Some((self.keys.names.decrypt(&id, &sealed).ok()?, file)))
    }
}

/// One conflict copy found in the vault.
#[derive(Debug, Clone)]
pub struct Found {
    /// The vault path it is shown under.
    pub path: Vec<u8>,
    /// The vault path of the note it is a copy of.
    pub original: Vec<u8>,
    /// How the sync tool named it.
    pub copy: CopyOf,
}

impl Tree {
    /// Every conflict copy of a note in the vault (folders excluded from
    /// history, such as `.git`, are not walked), in path order.
    pub fn all_conflicts(&self) -> std::io::Result<Vec<Found>> {
        let mut out = Vec::new();
        self.walk_files(&mut |dir, e, path| {
            if let Some(c) = self.copy_of(dir, e.host()) {
                let mut original = path.to_vec();
                let cut = original
                    .iter()
                    .rposition(|&b| b == b'/')
                    .map_or(0, |i| i + 1);
                original.truncate(cut);
                original.extend_from_slice(&c.plain);
                out.push(Found {
                    path: path.to_vec(),
                    original,
                    copy: c,
                });
            }
        })?;
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}

/// Whether a plaintext name is shaped like a conflict copy's shown name
/// (a new note may not take such a name while the copy exists: it would
/// be two entries under one name).
pub(crate) fn looks_like_copy(name: &[u8]) -> bool {
    name.windows(MARK.len()).any(|w| w == MARK)
}

/// The name of the note a shown copy name `stem (conflict …)<.ext>` is a
/// copy of (`stem<.ext>`), for a copy no longer there to be asked.
pub(crate) fn original_of_shown(name: &[u8]) -> Option<Vec<u8>> {
    let at = name.windows(MARK.len()).position(|w| w == MARK)?;
    let close = name[at..].iter().position(|&b| b == b')')? + at;
    Some([&name[..at], &name[close + 1..]].concat())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::conflicts::Tool;

    #[test]
    fn a_shown_copy_name_names_its_original() {
        assert_eq!(
            original_of_shown(b"n02 (conflict 2026-12-04 14.45 ABCDEF7).md").as_deref(),
            Some(&b"n02.md"[..])
        );
        assert_eq!(original_of_shown(b"n02.md"), None);
    }

    fn copy(plain: &str, tool: Tool, when: Option<&str>, device: Option<&str>) -> CopyOf {
        CopyOf {
            original: OsString::from("x"),
            plain: plain.as_bytes().to_vec(),
            conflict: Conflict {
                original: "x".into(),
                tool,
                when: when.map(str::to_string),
                device: device.map(str::to_string),
            },
        }
    }

    #[test]
    fn shown_names_keep_the_extension_and_say_when_and_who() {
        let c = copy(
            "n02.md",
            Tool::Syncthing,
            Some("2026-12-04 14:45:00"),
            Some("ABCDEF7"),
        );
        assert_eq!(c.shown(), b"n02 (conflict 2026-12-04 14.45 ABCDEF7).md");
        let c = copy("notes", Tool::Dropbox, Some("2026-12-04"), Some("Anna/B"));
        assert_eq!(c.shown(), b"notes (conflict 2026-12-04 AnnaB)");
        let c = copy(".bashrc", Tool::GoogleDrive, None, None);
        assert_eq!(c.shown(), b".bashrc (conflict Google Drive)");
        assert!(looks_like_copy(&c.shown()));
        assert!(!looks_like_copy(b"n02.md"));
    }
}
