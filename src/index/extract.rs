//! Text of a note or an attachment, for the index. Plain text as is; PDFs
//! through `pdftotext` (poppler-utils); images through `tesseract` when it
//! is installed (found at run time). Helpers run as child processes with a
//! time limit, read the document from an in-memory file (`memfd`) and
//! write text to a pipe: nothing decrypted touches the disk, and a
//! malformed file can crash or hang only the helper, never the daemon.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Files larger than this are not indexed.
pub const MAX_INPUT: usize = 32 << 20;
/// Text kept per document.
pub const MAX_TEXT: usize = 4 << 20;
/// Time one helper may take.
pub const TIME_LIMIT: Duration = Duration::from_secs(30);

/// What a file is, for extraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text (UTF-8, or mostly so).
    Text,
    /// A PDF.
    Pdf,
    /// A PNG, JPEG, TIFF or similar image.
    Image,
    /// Something else (binary): not indexed.
    Other,
}

/// Classifies by content.
pub fn kind_of(b: &[u8]) -> Kind {
    if b.starts_with(b"%PDF-") {
        return Kind::Pdf;
    }
    if b.starts_with(b"\x89PNG")
        || b.starts_with(b"\xff\xd8\xff")
        || b.starts_with(b"II*\0")
        || b.starts_with(b"MM\0*")
        || b.starts_with(b"GIF8")
        || (b.len() > 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP")
    {
        return Kind::Image;
    }
    let head = &b[..b.len().min(8192)];
    if head.contains(&0) {
        return Kind::Other;
    }
    match std::str::from_utf8(head) {
        Ok(_) => Kind::Text,
        // A multi-byte character cut at the end of the window is fine.
        Err(e) if e.error_len().is_none() => Kind::Text,
        Err(_) => Kind::Other,
    }
}

/// Whether a program is on the PATH.
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// The text of a document, `Ok(None)` if it has none to index (binary,
/// too large, or its helper is not installed), `Err` if it failed.
pub fn text_of(b: &[u8]) -> Result<Option<String>, String> {
    if b.len() > MAX_INPUT {
        return Ok(None);
    }
    match kind_of(b) {
        Kind::Text => {
            let mut s = String::from_utf8_lossy(b).into_owned();
            s.truncate(floor(&s, MAX_TEXT));
            Ok(Some(s))
        }
        Kind::Pdf => {
            if !have("pdftotext") {
                return Ok(None);
            }
            let t = run(
                Command::new("pdftotext").args(["-q", "-enc", "UTF-8", "/dev/fd/3", "-"]),
                b,
                true,
            )?;
            if t.trim().is_empty() && have("tesseract") && have("pdftoppm") {
                return ocr_pdf(b).map(Some);
            }
            Ok(Some(t))
        }
        Kind::Image => {
            if !have("tesseract") {
                return Ok(None);
            }
            run(
                Command::new("tesseract").args(["stdin", "stdout", "--psm", "3"]),
                b,
                false,
            )
            .map(Some)
        }
        Kind::Other => Ok(None),
    }
}

fn floor(s: &str, n: usize) -> usize {
    let mut n = n.min(s.len());
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    n
}

/// A scanned PDF: each page (up to 50) rendered by `pdftoppm` to an image
/// in memory, then read by `tesseract`.
fn ocr_pdf(b: &[u8]) -> Result<String, String> {
    let mut out = String::new();
    for page in 1..=50u32 {
        let p = page.to_string();
        let png = run_bytes(
            Command::new("pdftoppm").args([
                "-q",
                "-r",
                "200",
                "-gray",
                "-png",
                "-singlefile",
                "-f",
                &p,
                "-l",
                &p,
                "/dev/fd/3",
            ]),
            b,
            true,
        );
        let png = match png {
            Ok(png) if !png.is_empty() => png,
            _ => break, // past the last page
        };
        out.push_str(&run(
            Command::new("tesseract").args(["stdin", "stdout", "--psm", "3"]),
            &png,
            false,
        )?);
        if out.len() > MAX_TEXT {
            break;
        }
    }
    out.truncate(floor(&out, MAX_TEXT));
    Ok(out)
}

fn run(cmd: &mut Command, input: &[u8], as_file: bool) -> Result<String, String> {
    let out = run_bytes(cmd, input, as_file)?;
    let mut s = String::from_utf8_lossy(&out).into_owned();
    s.truncate(floor(&s, MAX_TEXT));
    Ok(s)
}

/// Runs a helper with `input` as fd 3 (an in-memory file) or on stdin;
/// returns its standard output. Killed after [`TIME_LIMIT`].
fn run_bytes(cmd: &mut Command, input: &[u8], as_file: bool) -> Result<Vec<u8>, String> {
    let name = cmd.get_program().to_string_lossy().into_owned();
    let memfd = if as_file {
        // SAFETY: a valid NUL-terminated name; the fd is owned below.
        let fd = unsafe { libc::memfd_create(c"quire-extract".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(format!("memfd: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut f = std::fs::File::from(fd);
        f.write_all(input).map_err(|e| e.to_string())?;
        Some(f)
    } else {
        None
    };
    cmd.stdin(if as_file {
        Stdio::null()
    } else {
        Stdio::piped()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .env("OMP_THREAD_LIMIT", "1");
    let raw = memfd.as_ref().map(|f| f.as_raw_fd());
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit and dup2 are async-signal-safe; this runs in the
    // child only. A helper that crashes on a malformed file must not write
    // a core dump: it holds the document's plaintext.
    unsafe {
        cmd.pre_exec(move || {
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::setrlimit(libc::RLIMIT_CORE, &none) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(raw) = raw
                && libc::dup2(raw, 3) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| format!("{name}: {e}"))?;
    let feeder = if as_file {
        None
    } else {
        let mut stdin = child.stdin.take().expect("piped");
        let data = input.to_vec();
        Some(std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        }))
    };
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = (&mut stdout).take(MAX_INPUT as u64).read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() > TIME_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{name} took longer than {} s",
                    TIME_LIMIT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("{name}: {e}")),
        }
    };
    if let Some(f) = feeder {
        let _ = f.join();
    }
    let out = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(format!("{name} failed ({status})"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(kind_of(b"%PDF-1.7\n..."), Kind::Pdf);
        assert_eq!(kind_of(b"\x89PNG\r\n\x1a\n"), Kind::Image);
        assert_eq!(kind_of("Notes — café\n".as_bytes()), Kind::Text);
        assert_eq!(kind_of(b"\x00\x01\x02"), Kind::Other);
        assert_eq!(kind_of(b"\xff\xfe\xfd not utf8"), Kind::Other);
        assert_eq!(text_of(b"plain").unwrap().as_deref(), Some("plain"));
        assert_eq!(text_of(b"\x00bin").unwrap(), None);
    }

    #[test]
    fn a_malformed_pdf_is_an_error_not_a_crash() {
        if !have("pdftotext") {
            return;
        }
        let r = text_of(b"%PDF-1.4\n garbage garbage \n%%EOF");
        // Either an error, or no text: never a panic, never garbage.
        if let Ok(Some(t)) = r {
            assert!(t.trim().is_empty(), "{t:?}");
        }
    }
}
