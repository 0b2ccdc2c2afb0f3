//! Getting passwords and recovery keys: a no-echo prompt on a terminal, or
//! `--password-file`, `--password-command`, `QUIRE_PASSWORD_FILE` for
//! scripts. Never from the command line itself.

use std::io::{BufRead, IsTerminal};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Result;

use super::PasswordArgs;
use super::exit::{Code, fail};
use crate::crypto::{Key32, Password};
use crate::vault::{Secret, recovery};

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

/// The password (or recovery key) that opens an existing vault.
pub fn unlock_secret(a: &PasswordArgs) -> Result<Secret> {
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
    Ok(Secret::Password(existing_password(a)?))
}

/// An existing password from the configured source.
pub fn existing_password(a: &PasswordArgs) -> Result<Password> {
    let p = if let Some(f) = &a.password_file {
        from_file(f)?
    } else if let Some(c) = &a.password_command {
        from_command(c)?
    } else {
        prompt("Password: ")?
    };
    check_nonempty(p)
}

/// A new password: from a file or command once, or typed twice.
pub fn new_password(file: Option<&Path>, command: Option<&str>, what: &str) -> Result<Password> {
    no_core_dumps();
    if let Some(f) = file {
        return check_nonempty(from_file(f)?);
    }
    if let Some(c) = command {
        return check_nonempty(from_command(c)?);
    }
    let a = check_nonempty(prompt(&format!("{what}: "))?)?;
    let b = Password::new(prompt(&format!("{what} (again): "))?);
    if a.expose() != b.expose() {
        return Err(fail(
            Code::Cancelled,
            "the two passwords differ; nothing was changed",
        ));
    }
    Ok(a)
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
