//! Editor and tool debris: files that never become history or trash.
//!
//! Editors save through temporary, backup, swap and lock files; keeping
//! versions of those would bury the note's real history, and trashing them
//! would fill the trash. The rules are by name (and by a `.git` folder
//! anywhere above); files created and removed within [`SHORT_LIVED`] are
//! treated the same way by the trash.

use std::time::Duration;

/// A file removed this soon after it was created is not trashed.
pub const SHORT_LIVED: Duration = Duration::from_secs(5);

/// Whether a file name is editor or tool debris.
pub fn is_debris(name: &[u8]) -> bool {
    let Ok(n) = std::str::from_utf8(name) else {
        return false;
    };
    let ends = |s: &str| n.ends_with(s);
    let starts = |s: &str| n.starts_with(s);
    // vim: swap files (.name.swp, .swo, .swx …), backups (name~) and the
    // write test file 4913.
    if starts(".")
        && (ends(".swp") || ends(".swo") || ends(".swx") || ends(".swn") || ends(".swpx"))
    {
        return true;
    }
    if ends("~") || n == "4913" {
        return true;
    }
    // emacs: #autosave# and .#lock.
    if (starts("#") && ends("#") && n.len() > 1) || starts(".#") {
        return true;
    }
    // gedit / GIO atomic saves; kate swap; LibreOffice lock.
    if starts(".goutputstream-") || ends(".kate-swp") || starts(".~lock.") {
        return true;
    }
    // JetBrains safe write; VS Code and others' temporary names.
    if n.contains("___jb_tmp___") || n.contains("___jb_old___") {
        return true;
    }
    if ends(".tmp") || ends(".temp") || ends(".part") || ends(".crdownload") || ends(".bak~") {
        return true;
    }
    // SQLite's side files.
    if ends("-journal") || ends("-wal") || ends("-shm") {
        return true;
    }
    // sed -i (sedXXXXXX), rsync (.name.XXXXXX), mktemp (tmp.XXXXXXXXXX),
    // Python tempfile (tmpXXXXXXXX), Quire's own and .DS_Store.
    if random_suffix(n, "sed", 6) || random_suffix(n, "tmp.", 10) || random_suffix(n, "tmp", 8) {
        return true;
    }
    if starts(".")
        && let Some((_, tail)) = n.rsplit_once('.')
        && tail.len() == 6
        && tail.chars().all(|c| c.is_ascii_alphanumeric())
        && n.len() > 8
        && tail.chars().any(|c| c.is_ascii_uppercase())
    {
        return true;
    }
    n == ".DS_Store" || starts(".quire-")
}

/// `prefix` followed by exactly `len` random-looking characters.
fn random_suffix(n: &str, prefix: &str, len: usize) -> bool {
    n.strip_prefix(prefix)
        .is_some_and(|t| t.len() == len && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// Whether a folder name excludes everything below it from history
/// (a git repository's internals change constantly and have their own).
pub fn is_excluded_folder(name: &[u8]) -> bool {
    name == b".git"
}

#[cfg(test)]
mod tests {
    use super::is_debris;

    #[test]
    fn patterns() {
        for d in [
            ".note.md.swp",
            ".note.md.swo",
            "note.md~",
            "4913",
            "#note.md#",
            ".#note.md",
            ".goutputstream-ABC123",
            "note.md___jb_tmp___",
            "note.md___jb_old___",
            "note.md.tmp",
            ".~lock.report.odt#",
            "db.sqlite-journal",
            "db.sqlite-wal",
            "db.sqlite-shm",
            "sedA1b2C3",
            "tmpab12cd_3",
            "tmp.Xy12Ab34Cd",
            ".note.md.Ab12Cd",
            ".DS_Store",
        ] {
            assert!(is_debris(d.as_bytes()), "{d}");
        }
        for n in [
            "note.md",
            "session-2026-11-25.md",
            "sedation.md",
            "tmp",
            "temperament.txt",
            "2024",
            ".profile",
            ".notes.backup",
            "#hashtag",
        ] {
            assert!(!is_debris(n.as_bytes()), "{n}");
        }
    }
}
