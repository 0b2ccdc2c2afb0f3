//! Default locations: the vault in `$XDG_DATA_HOME/quire/vault` (else
//! `~/.local/share/quire/vault`), the mount point `~/Notes`.

use std::path::{Path, PathBuf};

use crate::crypto::kdf::Argon2Params;

pub fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// The default vault folder.
pub fn default_vault() -> PathBuf {
    match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d).join("quire/vault"),
        None => home().join(".local/share/quire/vault"),
    }
}

/// The default mount point.
pub fn default_mountpoint() -> PathBuf {
    home().join("Notes")
}

/// Makes a path absolute without resolving symlinks of the last component.
pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}

/// Where the audit log's last link of the vault `id` in the folder `vault`
/// is remembered on this machine:
/// `$XDG_STATE_HOME/quire/audit/<id>-<place>.head` (else
/// `~/.local/state/…`), where `<place>` is the first 16 hex digits of
/// SHA-256 of the vault folder's canonical path. Outside the vault folder
/// so that a copy of the vault cannot carry it (docs/THREAT_MODEL.md);
/// keyed by the folder too, so that a copy (rsync, a backup restored
/// elsewhere), which has the same vault ID, keeps its own (issue 10.5).
pub fn audit_head(id: &str, vault: &Path) -> PathBuf {
    audit_dir().join(format!("{id}-{}.head", crate::store::place(vault)))
}

fn audit_dir() -> PathBuf {
    crate::store::state_home().join("audit")
}

/// Lets an unlocked vault take over the audit head an older version
/// remembered for its single log (the vault now keeps the heads of every
/// chain in its device folder, docs/FORMAT.md §16).
pub fn remember_audit_head(v: &mut crate::vault::UnlockedVault) {
    let p = audit_head(&v.id_hex(), v.path());
    // A head remembered by an even older Quire, keyed by the vault ID
    // alone, is taken over only if the log agrees with it (otherwise it
    // was another copy's, and would raise a false alarm here).
    let old = audit_dir().join(format!("{}.head", v.id_hex()));
    if p.exists() {
        v.take_over_audit_head(&p, false);
    } else if old.exists() {
        v.take_over_audit_head(&old, true);
    }
}

/// What this machine remembers of a vault's config (issue 11.5), beside
/// its audit head: `<vault ID>-<place>.conf` with the feature flags and
/// the password slot's Argon2 cost at the last unlock here. A config whose
/// flags were cleared or whose cost was lowered since is refused as
/// modified, instead of failing as a wrong password.
fn config_profile(id: &str, vault: &Path) -> PathBuf {
    audit_head(id, vault).with_extension("conf")
}

/// The Argon2 cost of every password slot: (`None` for the unnamed one,
/// or the person's name, lower-case; cost).
fn costs(c: &crate::format::config::Config) -> Vec<(Option<String>, Argon2Params)> {
    c.slots
        .iter()
        .filter_map(|s| Some((s.name().map(str::to_lowercase), s.params()?)))
        .collect()
}

fn show(p: &Argon2Params) -> String {
    format!("{} KiB, {} passes, {} lanes", p.m_kib, p.t, p.p)
}

/// What [`remember_config`] noted of a vault on this machine.
#[derive(Default)]
struct Profile {
    flags: Option<u32>,
    memory: Option<u32>,
    passes: Option<u32>,
    lanes: Option<u32>,
    /// Named slots: (name, lower-case; cost), from `person` lines.
    people: Vec<(String, Argon2Params)>,
}

impl Profile {
    fn parse(text: &str) -> Profile {
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
        };
        let num = |k: &str| field(k).and_then(|v| v.parse::<u32>().ok());
        let people = text
            .lines()
            .filter_map(|l| {
                let mut w = l.strip_prefix("person ")?.splitn(4, ' ');
                let mut n = || w.next()?.parse::<u32>().ok();
                let (m_kib, t, p) = (n()?, n()?, n()?);
                Some((w.next()?.to_lowercase(), Argon2Params { m_kib, t, p }))
            })
            .collect();
        Profile {
            flags: field("flags ").and_then(|f| u32::from_str_radix(&f, 16).ok()),
            memory: num("argon2-memory-kib "),
            passes: num("argon2-passes "),
            lanes: num("argon2-lanes "),
            people,
        }
    }

    /// The cost last seen here of the slot named `name` (`None`: the
    /// unnamed one).
    fn cost_of(&self, name: Option<&str>) -> Option<Argon2Params> {
        match name {
            None => self.cost(),
            Some(n) => self.people.iter().find(|(p, _)| p == n).map(|(_, c)| *c),
        }
    }

    /// The password cost last seen here (lanes: profiles before issue
    /// 17.4 did not note them, so the ceiling's).
    fn cost(&self) -> Option<Argon2Params> {
        Some(Argon2Params {
            m_kib: self.memory?,
            t: self.passes?,
            p: self.lanes.unwrap_or(Argon2Params::CEILING.p),
        })
    }
}

/// Refuses a config that is weaker than this machine last saw it, or
/// whose password cost was raised (above what this machine remembers, or
/// above [`Argon2Params::CEILING`] when it remembers nothing) before
/// Argon2 runs on it (issue 17.4). `password`: the unlock will run the
/// password slot (a recovery-key unlock runs no Argon2).
pub fn check_config(
    v: &crate::vault::LockedVault,
    password: bool,
    person: Option<&str>,
) -> Result<(), crate::vault::Error> {
    let c = v.config();
    let p = config_profile(&v.id_hex(), v.path());
    let profile = crate::store::safe::read(&p, crate::store::safe::MAX_RECORD)
        .ok()
        .map(|b| Profile::parse(&String::from_utf8_lossy(&b)))
        .unwrap_or_default();
    if let Some(f) = profile.flags {
        let cleared = f & !c.flags;
        if cleared != 0 {
            return Err(crate::vault::Error::ConfigModified(format!(
                "feature flags {cleared:#x} were cleared since it was last opened on this machine"
            )));
        }
    }
    let person = person.map(str::to_lowercase);
    for (name, now) in costs(c) {
        let seen = profile.cost_of(name.as_deref());
        let whose = match &name {
            Some(n) => format!("the password slot of {n}"),
            None => "its password slot".to_string(),
        };
        // Only slots the unlock will run Argon2 on are held to a ceiling.
        let tried = password && (person.is_none() || person == name);
        if tried {
            let (limit, whence) = match seen {
                Some(s) => (s, "when it was last opened on this machine"),
                None => (
                    Argon2Params::CEILING,
                    "the most Quire tries on a machine that has not opened this vault before",
                ),
            };
            if now.exceeds(&limit) {
                return Err(crate::vault::Error::ConfigModified(format!(
                    "key-derivation cost raised: {whose} asks for {} ({} {whence}). Nothing was tried. If you did not raise it, restore quire.conf from a backup of the vault folder",
                    show(&now),
                    show(&limit)
                )));
            }
        }
        if let Some(s) = seen
            && (now.m_kib < s.m_kib || now.t < s.t)
        {
            return Err(crate::vault::Error::ConfigModified(format!(
                "the key-derivation cost was lowered for {whose}, to {} KiB and {} passes (it was {} KiB and {} passes when last opened on this machine)",
                now.m_kib, now.t, s.m_kib, s.t
            )));
        }
    }
    Ok(())
}

/// Remembers an unlocked (so authentic) config for [`check_config`].
pub fn remember_config(v: &crate::vault::UnlockedVault) {
    let c = v.config();
    let p = config_profile(&v.id_hex(), v.path());
    let mut text = format!("quire config profile v1\nflags {:08x}\n", c.flags);
    for (name, a) in costs(c) {
        match name {
            None => text.push_str(&format!(
                "argon2-memory-kib {}\nargon2-passes {}\nargon2-lanes {}\n",
                a.m_kib, a.t, a.p
            )),
            Some(n) => text.push_str(&format!("person {} {} {} {n}\n", a.m_kib, a.t, a.p)),
        }
    }
    if let Some(dir) = p.parent() {
        let _ = crate::store::atomic::private_dir(dir);
    }
    if let Err(e) = crate::store::atomic::write(&p, text.as_bytes()) {
        log::warn!("could not remember the vault's config ({e})");
    }
}

/// Refuses `what` (in the existing folder `dir`) inside a mounted vault or
/// a vault folder, sealed or not: exports, backups and restores go out of
/// the vault. `why` ends the message ("an export goes out of the vault").
pub fn outside_vaults(what: &Path, dir: &Path, why: &str) -> anyhow::Result<()> {
    use super::exit::{Code, fail};
    let real = std::fs::canonicalize(dir)?;
    for m in super::runtime::mounts() {
        // Mount points come from the kernel, resolved already (and never
        // looked at: another user's mount is not touched).
        if real.starts_with(&m.mountpoint) {
            return Err(fail(
                Code::Refused,
                format!(
                    "{} is inside the mounted vault at {}: {why}",
                    what.display(),
                    m.mountpoint.display()
                ),
            ));
        }
        if let Some(v) = &m.vault
            && (real.starts_with(v) || std::fs::canonicalize(v).is_ok_and(|r| real.starts_with(r)))
        {
            return Err(fail(
                Code::Refused,
                format!(
                    "{} is inside the vault folder {}: {why}",
                    what.display(),
                    v.display()
                ),
            ));
        }
    }
    // A vault folder that is not mounted (`ancestors` starts at itself).
    if real.ancestors().any(|p| p.join("quire.conf").is_file()) {
        return Err(fail(
            Code::Refused,
            format!("{} is inside a vault folder: {why}", what.display()),
        ));
    }
    Ok(())
}
