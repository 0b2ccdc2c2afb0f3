//! The names sync tools give conflict copies (issue 18.4; the table is in
//! `../shared/DEVICES.md`): a host name such as
//! `<stem>.sync-conflict-20261204-144500-ABCDEF7.qh` is a copy of
//! `<stem>.qh` that Syncthing made when two devices changed it. This module
//! only reads names: it returns every way a host name can be read as a
//! conflict copy, most specific first. A OneDrive suffix (`-<COMPUTER>`)
//! cannot be told from the `-` of base64url by its shape alone, so the
//! caller keeps the reading whose original name decrypts (AES-SIV
//! authenticates it).

/// The tool whose conflict naming a host name follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `<stem>.sync-conflict-YYYYMMDD-HHMMSS-<device ID, 7 chars><.ext>`
    Syncthing,
    /// `<stem> (conflicted copy YYYY-MM-DD HHMMSS)<.ext>`
    Nextcloud,
    /// `<stem> (<who>'s conflicted copy YYYY-MM-DD)<.ext>`
    Dropbox,
    /// `<stem>-<COMPUTERNAME><.ext>`
    OneDrive,
    /// `<stem> (N)<.ext>`
    GoogleDrive,
}

impl Tool {
    /// The tool's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Tool::GoogleDrive => "Google Drive",
            Tool::OneDrive => "OneDrive",
            Tool::Syncthing => "Syncthing",
            Tool::Nextcloud => "Nextcloud",
            Tool::Dropbox => "Dropbox",
        }
    }
}

/// One reading of a host name as a conflict copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The host name it is a copy of (suffix removed, extension kept).
    pub original: String,
    /// Which tool's naming.
    pub tool: Tool,
    /// When, as the tool wrote it (`2026-12-04 14:45:00`, or a date).
    pub when: Option<String>,
    /// Which device or person, as the tool wrote it.
    pub device: Option<String>,
}

/// The extension a tool keeps last: Quire's own suffixes of a host name.
const EXTENSIONS: &[&str] = &[
    super::history::SUFFIX,
    super::lifecycle::SUFFIX,
    super::records::BINDING_SUFFIX,
    super::names::SIDECAR_SUFFIX,
];

/// `name` split into (stem, extension kept last).
fn split_ext(name: &str) -> (&str, &str) {
    for e in EXTENSIONS {
        if let Some(stem) = name.strip_suffix(e) {
            return (stem, &name[stem.len()..]);
        }
    }
    (name, "")
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// Every reading of `host` as a conflict copy, most specific first (empty
/// when it is no conflict copy of any known tool).
pub fn readings(host: &str) -> Vec<Conflict> {
    let (stem, ext) = split_ext(host);
    let mut out = Vec::new();
    let mut push = |s: &str, tool, when: Option<String>, device: Option<String>| {
        if !s.is_empty() {
            out.push(Conflict {
                original: format!("{s}{ext}"),
                tool,
                when,
                device,
            });
        }
    };
    // Syncthing: .sync-conflict-YYYYMMDD-HHMMSS-XXXXXXX
    if let Some(at) = stem.rfind(".sync-conflict-") {
        let rest = &stem[at + ".sync-conflict-".len()..];
        let parts: Vec<&str> = rest.split('-').collect();
        if parts.len() == 3 && digits(parts[0], 8) && digits(parts[1], 6) {
            let (d, t) = (parts[0], parts[1]);
            push(
                &stem[..at],
                Tool::Syncthing,
                Some(format!(
                    "{}-{}-{} {}:{}:{}",
                    &d[..4],
                    &d[4..6],
                    &d[6..],
                    &t[..2],
                    &t[2..4],
                    &t[4..]
                )),
                (!parts[2].is_empty()).then(|| parts[2].to_string()),
            );
        }
    }
    // The tools that append ` (...)`.
    if let Some(inner) = stem.strip_suffix(')')
        && let Some(open) = inner.rfind(" (")
    {
        let (base, what) = (&inner[..open], &inner[open + 2..]);
        if let Some(when) = what.strip_prefix("conflicted copy ") {
            // Nextcloud / ownCloud: "conflicted copy 2026-12-04 144500"
            // (newer clients put the user first: "conflicted copy <user> <date> <time>").
            let w: Vec<&str> = when.split(' ').collect();
            let n = w.len();
            if n >= 2 && w[n - 2].len() == 10 && digits(w[n - 1], 6) {
                let t = w[n - 1];
                push(
                    base,
                    Tool::Nextcloud,
                    Some(format!("{} {}:{}:{}", w[n - 2], &t[..2], &t[2..4], &t[4..])),
                    (n > 2).then(|| w[..n - 2].join(" ")),
                );
            }
        } else if let Some(k) = what.find("'s conflicted copy ") {
            // Dropbox: "<who>'s conflicted copy 2026-12-04"
            let date = &what[k + "'s conflicted copy ".len()..];
            push(
                base,
                Tool::Dropbox,
                Some(date.to_string()),
                Some(what[..k].to_string()),
            );
        } else if !what.is_empty() && what.bytes().all(|b| b.is_ascii_digit()) {
            // Google Drive: " (1)"
            push(base, Tool::GoogleDrive, None, None);
        }
    }
    // OneDrive: "-<COMPUTERNAME>" (NetBIOS: up to 15 upper-case letters,
    // digits and hyphens). Every split is a candidate.
    for (i, _) in stem.match_indices('-') {
        let who = &stem[i + 1..];
        if !who.is_empty()
            && who.len() <= 15
            && who
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
            && who.bytes().any(|b| b.is_ascii_uppercase())
        {
            push(&stem[..i], Tool::OneDrive, None, Some(who.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEM: &str = "aB3-x_Yz09QkLmN";

    fn first(h: &str) -> Conflict {
        readings(h).into_iter().next().expect("a reading")
    }

    #[test]
    fn syncthing_copies_of_notes_and_their_histories() {
        let c = first(&format!("{STEM}.sync-conflict-20261204-144500-ABCDEF7.qh"));
        assert_eq!(c.tool, Tool::Syncthing);
        assert_eq!(c.original, format!("{STEM}.qh"));
        assert_eq!(c.when.as_deref(), Some("2026-12-04 14:45:00"));
        assert_eq!(c.device.as_deref(), Some("ABCDEF7"));
        let c = first(&format!("{STEM}.sync-conflict-20261204-144500-ABCDEF7"));
        assert_eq!(c.original, STEM);
        // Not a date: no reading of Syncthing's.
        assert!(
            readings(&format!("{STEM}.sync-conflict-2026-1-X"))
                .iter()
                .all(|c| c.tool != Tool::Syncthing)
        );
    }

    #[test]
    fn nextcloud_owncloud_dropbox_and_google_drive_copies() {
        let c = first(&format!("{STEM} (conflicted copy 2026-12-04 144500).ql"));
        assert_eq!(
            (c.tool, c.original.as_str()),
            (Tool::Nextcloud, format!("{STEM}.ql").as_str())
        );
        assert_eq!(c.when.as_deref(), Some("2026-12-04 14:45:00"));
        assert_eq!(c.device, None);
        let c = first(&format!("{STEM} (conflicted copy anna 2026-12-04 144500)"));
        assert_eq!(c.device.as_deref(), Some("anna"));
        let c = first(&format!("{STEM} (Laptop's conflicted copy 2026-12-04).qh"));
        assert_eq!(c.tool, Tool::Dropbox);
        assert_eq!(c.original, format!("{STEM}.qh"));
        assert_eq!(c.device.as_deref(), Some("Laptop"));
        assert_eq!(c.when.as_deref(), Some("2026-12-04"));
        let c = first(&format!("{STEM} (1)"));
        assert_eq!((c.tool, c.original.as_str()), (Tool::GoogleDrive, STEM));
    }

    #[test]
    fn onedrive_suffixes_are_candidates_the_caller_confirms() {
        let r = readings(&format!("{STEM}-DESKTOP-4F2K.qh"));
        let originals: Vec<&str> = r
            .iter()
            .filter(|c| c.tool == Tool::OneDrive)
            .map(|c| c.original.as_str())
            .collect();
        assert!(originals.contains(&format!("{STEM}.qh").as_str()));
        // A plain host name may still read as one (its own '-'): only a
        // stem that decrypts confirms it.
        assert!(!readings("abc-DEF").is_empty());
        assert!(readings("abc-def_ghi").is_empty());
    }

    #[test]
    fn ordinary_host_names_are_no_conflict_copies() {
        for h in [
            STEM,
            "aB3x_Yz09QkLmN.qh",
            "abcdef.name",
            ".quire-new-00ff",
            "(1)",
        ] {
            assert!(readings(h).is_empty(), "{h}");
        }
    }
}
