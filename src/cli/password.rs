//! Getting passwords and recovery keys: a no-echo prompt on a terminal, or
//! `--password-file`, `--password-command`, `QUIRE_PASSWORD_FILE` for
//! scripts. Never from the command line itself.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use clap::Args;
use std::process::{Command, Stdio};

use anyhow::Result;

use super::exit::{Code, fail};
use crate::crypto::{Key32, Password};
use crate::vault::{self, LockedVault, Secret, UnlockedVault, recovery};

/// Where the password comes from (for scripts; a terminal prompt otherwise).
#[derive(Args, Debug, Clone, Default)]
pub struct PasswordArgs {
    /// Read the password from the first line of FILE.
    #[arg(
        long,
        value_name = "FILE",
        env = "QUIRE_PASSWORD_FILE",
        conflicts_with = "password_command",
        global = true
    )]
    pub(crate) password_file: Option<PathBuf>,
    /// Run CMD with `sh -c` and use the first line it prints as the password.
    #[arg(long, value_name = "CMD", global = true)]
    pub(crate) password_command: Option<String>,
    /// Unlock with the recovery key instead of the password (asked on the
    /// terminal, or read from --recovery-key-file).
    #[arg(long, global = true)]
    recovery_key: bool,
    /// Read the recovery key from FILE (implies --recovery-key).
    #[arg(long, value_name = "FILE", global = true)]
    recovery_key_file: Option<PathBuf>,
    /// Unlock as NAME: only NAME's password is tried (a vault with a
    /// password per person, see `quire user`). Without it, every password
    /// of the vault is tried.
    #[arg(long = "as", value_name = "NAME", env = "QUIRE_AS", global = true)]
    pub(crate) as_person: Option<String>,
}

impl PasswordArgs {
    /// The same choice as arguments for another `quire` command (a drill
    /// mounts its restored copy with `quire mount`); empty means it asks
    /// on the terminal too.
    /// Whether this unlocks with the recovery key.
    pub(crate) fn uses_recovery_key(&self) -> bool {
        self.recovery_key || self.recovery_key_file.is_some()
    }

    pub(crate) fn forward(&self) -> Vec<std::ffi::OsString> {
        let mut v: Vec<std::ffi::OsString> = Vec::new();
        if let Some(f) = &self.password_file {
            v.extend(["--password-file".into(), f.clone().into()]);
        }
        if let Some(c) = &self.password_command {
            v.extend(["--password-command".into(), c.into()]);
        }
        if self.recovery_key {
            v.push("--recovery-key".into());
        }
        if let Some(f) = &self.recovery_key_file {
            v.extend(["--recovery-key-file".into(), f.clone().into()]);
        }
        if let Some(n) = &self.as_person {
            v.extend(["--as".into(), n.into()]);
        }
        v
    }
}

fn first_line(bytes: Vec<u8>) -> Vec<u8> {
    let mut b = zeroize::Zeroizing::new(bytes);
    let end = b.iter().position(|&c| c == b'\n').unwrap_or(b.len());
    let mut line = b[..end].to_vec();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    zeroize::Zeroize::zeroize(&mut *b);
    line
}

fn from_file(p: &Path) -> Result<Vec<u8>> {
    let b = std::fs::read(p).map_err(|e| {
        fail(
            Code::Cancelled,
            format!("cannot read the password file {}: {e}", p.display()),
        )
    })?;
    Ok(first_line(b))
}

fn from_command(cmd: &str) -> Result<Vec<u8>> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::inherit())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| {
            fail(
                Code::Cancelled,
                format!("cannot run the password command: {e}"),
            )
        })?;
    if !out.status.success() {
        return Err(fail(
            Code::Cancelled,
            format!("the password command failed ({})", out.status),
        ));
    }
    Ok(first_line(out.stdout))
}

fn prompt(text: &str) -> Result<Vec<u8>> {
    if !std::io::stdin().is_terminal() {
        return Err(fail(
            Code::Cancelled,
            "no password given: run this in a terminal, or use --password-file FILE or --password-command CMD",
        ));
    }
    let s = rpassword::prompt_password(text)
        .map_err(|e| fail(Code::Cancelled, format!("cannot read the password: {e}")))?;
    Ok(s.into_bytes())
}

fn check_nonempty(p: Vec<u8>) -> Result<Password> {
    if p.is_empty() {
        return Err(fail(Code::Cancelled, "the password is empty"));
    }
    Ok(Password::new(p))
}

/// Keeps this process's memory (a typed password, keys, decrypted notes)
/// out of core dumps and away from same-user ptrace. Every command that
/// reads a password or key calls it before reading: the daemon, and also
/// the CLI on a sealed vault (`quire show --vault …` holds plaintext too).
pub fn no_core_dumps() {
    // SAFETY: plain syscalls on this process with valid arguments.
    unsafe {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

fn unlock_secret_as(a: &PasswordArgs, label: &str) -> Result<Secret> {
    no_core_dumps();
    if a.recovery_key || a.recovery_key_file.is_some() {
        let text = match &a.recovery_key_file {
            Some(f) => from_file(f)?,
            None => prompt("Recovery key: ")?,
        };
        let text = zeroize::Zeroizing::new(String::from_utf8_lossy(&text).into_owned());
        let key: Key32 = recovery::decode(&text)?;
        return Ok(Secret::Recovery(key));
    }
    Ok(Secret::Password(existing_password_as(a, label)?))
}

/// Whether the secret is typed at a terminal (and can be typed again).
fn is_bad_recovery_key(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<vault::Error>(),
        Some(vault::Error::BadRecoveryKey(_))
    )
}

fn typed(a: &PasswordArgs) -> bool {
    a.password_file.is_none()
        && a.password_command.is_none()
        && a.recovery_key_file.is_none()
        && std::io::stdin().is_terminal()
}

/// Opens the vault at `path` with the password (or recovery key) of `a`.
/// Typed at a terminal, a wrong one is asked again, three tries in all
/// (issue 10.8); from a file or command, a wrong one fails at once.
/// `label` is the prompt: "Password: ", or "Current password: " for
/// `quire passwd`.
pub fn unlock(path: &Path, a: &PasswordArgs, label: &str) -> Result<UnlockedVault> {
    unlock_keeping(path, a, label).map(|(v, _)| v)
}

/// [`unlock`], also returning the secret that opened the vault (re-keying
/// seals the new key under the same password).
pub fn unlock_keeping(
    path: &Path,
    a: &PasswordArgs,
    label: &str,
) -> Result<(UnlockedVault, Secret)> {
    let tries = if typed(a) { 3 } else { 1 };
    let mut n = 1;
    loop {
        let locked = LockedVault::open(path)?;
        let password = !(a.recovery_key || a.recovery_key_file.is_some());
        super::paths::check_config(&locked, password, a.as_person.as_deref())?;
        let secret = match unlock_secret_as(a, label) {
            // A mistyped recovery key (a missing group, a wrong checksum)
            // is asked again like a wrong one (issue 16.8).
            Err(e) if n < tries && is_bad_recovery_key(&e) => {
                eprintln!("{e}: try again ({} tries left).", tries - n);
                n += 1;
                continue;
            }
            r => r?,
        };
        match locked.unlock_as(&secret, a.as_person.as_deref()) {
            Err(e @ (vault::Error::WrongPassword | vault::Error::WrongRecoveryKey))
                if n < tries =>
            {
                eprintln!("{e}: try again ({} tries left).", tries - n);
                n += 1;
            }
            r => {
                let v = r?;
                for n in v.notices() {
                    eprintln!("quire: warning: {n}");
                }
                super::paths::remember_config(&v);
                return Ok((v, secret));
            }
        }
    }
}

fn existing_password_as(a: &PasswordArgs, label: &str) -> Result<Password> {
    let p = if let Some(f) = &a.password_file {
        from_file(f)?
    } else if let Some(c) = &a.password_command {
        from_command(c)?
    } else {
        prompt(label)?
    };
    check_nonempty(p)
}

/// Passwords that are long enough but among the most used ones (compared
/// lower-case); shorter common ones fail the length rule anyway.
const COMMON: &[&str] = &[
    "123456789012",
    "1234567890123",
    "12345678901234",
    "123456789123",
    "111111111111",
    "000000000000",
    "password1234",
    "password12345",
    "password123!",
    "passwordpassword",
    "qwertyuiop12",
    "qwertyuiopas",
    "qwertyuiopasdfgh",
    "qwertyuiopasdfghjkl",
    "1q2w3e4r5t6y",
    "1q2w3e4r5t6y7u",
    "1qaz2wsx3edc",
    "1qaz2wsx3edc4rfv",
    "zaq12wsxcde3",
    "q1w2e3r4t5y6",
    "asdfghjkl123",
    "iloveyou1234",
    "iloveyouiloveyou",
    "letmeinletmein",
    "trustno1trustno1",
    "welcome12345",
    "welcome123456",
    "administrator",
    "administrator1",
    "changeme1234",
    "correcthorsebatterystaple",
    "abcdefghijkl",
    "abcdefg12345",
    "abc123abc123",
    "monkeymonkey",
    "football1234",
    "baseball1234",
    "superman1234",
    "sunshine1234",
    "princess1234",
    "therapist123",
    "counselling1",
    "counseling123",
    "quirepassword",
    "quire1234567",
];

/// Why a new password is weak, if it is (issue 10.8): fewer than 12
/// characters, one of the most common passwords, or made of only a few
/// different characters ("aaaaaaaaaaaa", "abababababab").
pub fn weakness(p: &[u8]) -> Option<&'static str> {
    let s = String::from_utf8_lossy(p);
    let chars = s.chars().count();
    if chars < 12 {
        return Some("it is shorter than 12 characters");
    }
    let lower = zeroize::Zeroizing::new(s.to_lowercase());
    if COMMON.contains(&lower.as_str()) {
        return Some("it is one of the most common passwords");
    }
    let mut distinct: Vec<char> = s.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    let few = distinct.len() < 5;
    zeroize::Zeroize::zeroize(&mut distinct);
    if few {
        return Some("it repeats a few characters");
    }
    None
}

/// A new password: from a file or command once (a weak one is warned
/// about), or typed twice at a terminal, asked again when the two differ
/// or when a weak one is not confirmed.
pub fn new_password(file: Option<&Path>, command: Option<&str>, what: &str) -> Result<Password> {
    no_core_dumps();
    let given = match (file, command) {
        (Some(f), _) => Some(from_file(f)?),
        (None, Some(c)) => Some(from_command(c)?),
        (None, None) => None,
    };
    if let Some(p) = given {
        let p = check_nonempty(p)?;
        if let Some(why) = weakness(p.expose()) {
            eprintln!("warning: this password is weak ({why}).");
        }
        return Ok(p);
    }
    for _ in 0..5 {
        let a = Password::new(prompt(&format!("{what}: "))?);
        if a.expose().is_empty() {
            eprintln!("The password is empty; type one.");
            continue;
        }
        if let Some(why) = weakness(a.expose()) {
            eprintln!(
                "This password is weak: {why}. Anyone who gets a copy of the vault can try millions of guesses; a longer phrase of several words is much safer."
            );
            if !confirm("Use it anyway?") {
                continue;
            }
        }
        let b = Password::new(prompt(&format!("{what} (again): "))?);
        if a.expose() != b.expose() {
            eprintln!("The two passwords differ; type it again.");
            continue;
        }
        return Ok(a);
    }
    Err(fail(
        Code::Cancelled,
        "no password was set; nothing was changed",
    ))
}

/// Asks a yes/no question on the terminal; `false` when there is none.
pub fn confirm(question: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!("{question} [y/N] ");
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim(), "y" | "Y" | "yes" | "Yes")
}
