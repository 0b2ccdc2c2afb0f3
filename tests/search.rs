//! Full-text search end to end (docs/FORMAT.md §17): notes saved through
//! the mount become searchable, the query language works through the CLI
//! (mounted and sealed), renames, deletions and purges are followed, a
//! killed daemon's index is repaired and a damaged one rebuilt, and PDFs
//! and images are indexed by their text.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn search(w: &World, args: &[&str]) -> String {
    let mut a = vec!["search"];
    a.extend_from_slice(args);
    let o = w.run(&a);
    assert!(o.status.success(), "search {args:?}: {o:?}");
    out(&o)
}

/// Waits until `query` finds `path` (the indexer debounces for up to a second).
fn until_found(w: &World, query: &str, path: &str) -> bool {
    wait_until(Duration::from_secs(15), || {
        search(w, &["--json", query]).contains(&format!("\"path\":\"{path}\""))
    })
}

/// A one-page PDF whose text is `lines` (Helvetica).
fn text_pdf(lines: &[&str]) -> Vec<u8> {
    let content = format!(
        "BT /F1 28 Tf 72 720 Td 36 TL {} ET",
        lines
            .iter()
            .map(|l| format!("({l}) '"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    pdf_with(&[
        "<< /Type /Catalog /Pages 2 0 R >>".into(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".into(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".into(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()).into_bytes(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".into(),
    ])
}

fn pdf_with(objs: &[Vec<u8>]) -> Vec<u8> {
    let mut b = b"%PDF-1.4\n".to_vec();
    let mut offs = Vec::new();
    for (i, o) in objs.iter().enumerate() {
        offs.push(b.len());
        b.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        b.extend_from_slice(o);
        b.extend_from_slice(b"\nendobj\n");
    }
    let x = b.len();
    b.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objs.len() + 1).as_bytes());
    for o in offs {
        b.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    b.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{x}\n%%EOF\n",
            objs.len() + 1
        )
        .as_bytes(),
    );
    b
}

/// A "scanned" PDF: the page of `text_pdf(lines)` as a grey image only.
fn scanned_pdf(dir: &std::path::Path, lines: &[&str]) -> Vec<u8> {
    let src = dir.join("src.pdf");
    std::fs::write(&src, text_pdf(lines)).unwrap();
    let o = Command::new("pdftoppm")
        .args(["-r", "150", "-gray", "-singlefile"])
        .arg(&src)
        .output()
        .unwrap();
    assert!(o.status.success());
    // PGM: "P5\n<w> <h>\n255\n" then the pixels.
    let pgm = o.stdout;
    let mut fields = Vec::new();
    let mut pos = 0;
    while fields.len() < 4 {
        while pgm[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let start = pos;
        while !pgm[pos].is_ascii_whitespace() {
            pos += 1;
        }
        fields.push(String::from_utf8_lossy(&pgm[start..pos]).into_owned());
    }
    let (w, h) = (fields[1].clone(), fields[2].clone());
    let pixels = &pgm[pos + 1..];
    let (pw, ph) = (612, 792);
    let content = format!("q {pw} 0 0 {ph} 0 0 cm /Im0 Do Q");
    let mut image = format!(
        "<< /Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace /DeviceGray /BitsPerComponent 8 /Length {} >>\nstream\n",
        pixels.len()
    )
    .into_bytes();
    image.extend_from_slice(pixels);
    image.extend_from_slice(b"\nendstream");
    pdf_with(&[
        "<< /Type /Catalog /Pages 2 0 R >>".into(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".into(),
        format!("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {pw} {ph}] /Contents 4 0 R /Resources << /XObject << /Im0 5 0 R >> >> >>").into_bytes(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()).into_bytes(),
        image,
    ])
}

#[test]
fn saved_notes_are_found_with_the_whole_query_language() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    std::fs::create_dir_all(m.path("clients/a-k")).unwrap();
    std::fs::write(
        m.path("clients/a-k/anna.md"),
        "Session 3\nAnna described a panic attack on the train.\nWe reviewed her medications.\n",
    )
    .unwrap();
    std::fs::write(
        m.path("clients/ben.md"),
        "Ben sleeps badly.\nInsomnia since March.\n",
    )
    .unwrap();
    std::fs::write(
        m.path("admin.md"),
        "Order medication forms. Panic button test.\n",
    )
    .unwrap();
    assert!(until_found(&w, "insomnia", "clients/ben.md"));
    assert!(until_found(&w, "panic", "clients/a-k/anna.md"));
    let paths = |args: &[&str]| {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let v: serde_json::Value = serde_json::from_str(&search(&w, &a)).unwrap();
        let mut p: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["path"].as_str().unwrap().to_string())
            .collect();
        p.sort();
        p
    };
    assert_eq!(paths(&["\"panic attack\""]), ["clients/a-k/anna.md"]);
    assert_eq!(paths(&["panic", "NOT", "train"]), ["admin.md"]);
    assert_eq!(paths(&["--", "panic", "-train"]), ["admin.md"]);
    // Options anywhere before `--` (issue 10.8), a folder with a slash.
    assert_eq!(
        paths(&["medication", "--path", "clients/"]),
        ["clients/a-k/anna.md"]
    );
    assert_eq!(
        paths(&["insomnia", "OR", "train"]),
        ["clients/a-k/anna.md", "clients/ben.md"]
    );
    assert_eq!(paths(&["medic*"]), ["admin.md", "clients/a-k/anna.md"]);
    assert_eq!(paths(&["insomina"]), ["clients/ben.md"]); // a typo
    assert_eq!(paths(&["sleep"]), ["clients/ben.md"]); // stemming: sleeps
    assert_eq!(
        paths(&["--path", "clients", "medication"]),
        ["clients/a-k/anna.md"]
    );
    let in_mount = m.path("clients/a-k");
    assert_eq!(
        paths(&["--path", in_mount.to_str().unwrap(), "panic"]),
        ["clients/a-k/anna.md"]
    );
    assert!(paths(&["--until", "2000-01-01", "panic"]).is_empty());
    assert_eq!(
        paths(&["--since", "2000-01-01", "insomnia"]),
        ["clients/ben.md"]
    );
    // Ranked output with a highlighted snippet; grep-style lines.
    let s = search(&w, &["train"]);
    assert!(
        s.contains("clients/a-k/anna.md") && s.contains("the [train]"),
        "{s}"
    );
    assert_eq!(
        search(&w, &["--grep", "medication"])
            .lines()
            .collect::<Vec<_>>()
            .len(),
        2
    );
    assert!(search(&w, &["--grep", "insomnia"]).contains("clients/ben.md:2:Insomnia since March."));
    // A malformed query says what is wrong (exit 2).
    let o = w.run(&["search", "\"panic attack"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("quote"),
        "{o:?}"
    );
    // Old versions with --history, saying which version matched.
    std::fs::write(m.path("clients/ben.md"), "Ben sleeps well now.\n").unwrap();
    assert!(wait_until(Duration::from_secs(15), || {
        !search(&w, &["--json", "insomnia"]).contains("ben.md")
    }));
    let h = search(&w, &["--history", "--json", "insomnia"]);
    assert!(
        h.contains("\"path\":\"clients/ben.md\",\"version\":1"),
        "{h}"
    );
    assert!(search(&w, &["--history", "--grep", "insomnia"]).contains("clients/ben.md@v1:2:"));
    // Renames and deletions are followed.
    std::fs::rename(m.path("clients"), m.path("people")).unwrap();
    assert!(until_found(&w, "train", "people/a-k/anna.md"));
    assert!(!search(&w, &["--json", "train"]).contains("\"clients/"));
    std::fs::remove_file(m.path("admin.md")).unwrap();
    assert!(wait_until(Duration::from_secs(15), || {
        !search(&w, &["--json", "button"]).contains("admin.md")
    }));
    // grep -r on the mount keeps working as on any folder.
    let g = sh(&w.mnt, "grep -rl train . | sort");
    assert_eq!(g.trim(), "./people/a-k/anna.md");
    m.unmount();
    // The sealed vault answers too (with the password), and reindexes.
    fn with<'a>(w: &'a World, extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec![
            "--vault",
            w.vault.to_str().unwrap(),
            "--password-file",
            w.pwfile.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        a
    }
    let sealed = |extra: &[&'static str]| with(&w, extra);
    let s = search(&w, &sealed(&["--json", "train"]));
    assert!(s.contains("people/a-k/anna.md"), "{s}");
    let mut a = vec!["reindex"];
    a.extend(sealed(&[]));
    let o = w.run(&a);
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("documents"));
    assert!(search(&w, &sealed(&["--json", "medication"])).contains("anna.md"));
    // A read-only mount searches the index as it was sealed.
    let m = w.mount(&["--read-only"]);
    assert!(search(&w, &["--json", "train"]).contains("people/a-k/anna.md"));
    assert_eq!(w.run(&["reindex"]).status.code(), Some(19));
    m.unmount();
}

#[test]
fn a_killed_daemon_and_a_damaged_index_are_repaired() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    std::fs::write(m.path("first.md"), "alpha bravo").unwrap();
    assert!(until_found(&w, "alpha", "first.md"));
    // Saved, then the daemon killed before the indexer's batch is committed.
    let pid = w.daemon_pid().unwrap();
    std::fs::write(m.path("second.md"), "charlie delta").unwrap();
    sh(w.dir.path(), &format!("kill -KILL {pid}"));
    assert!(wait_gone(pid, Duration::from_secs(5)));
    std::mem::forget(m);
    let m = w.mount(&[]);
    assert!(until_found(&w, "charlie", "second.md"));
    assert!(until_found(&w, "alpha", "first.md"));
    // A rebuild through the daemon, while other requests are answered.
    let o = w.run(&["reindex"]);
    assert!(o.status.success(), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("holds 2 documents"),
        "{o:?}"
    );
    assert!(until_found(&w, "delta", "second.md"));
    m.unmount();
    // A damaged index file: the next mount rebuilds, and says so.
    let idx = w.local().join("index");
    let meta = idx.join("meta.json");
    let mut b = std::fs::read(&meta).unwrap();
    let n = b.len();
    b[n / 2] ^= 0x20;
    std::fs::write(&meta, b).unwrap();
    let m = w.mount(&[]);
    assert!(until_found(&w, "delta", "second.md"));
    m.unmount();
    let o = w.run(&[
        "logs",
        w.vault.to_str().unwrap(),
        "--password-file",
        w.pwfile.to_str().unwrap(),
    ]);
    let logs = out(&o);
    assert!(logs.contains("search index repaired: 1 note(s)"), "{logs}");
    assert!(
        logs.contains("could not be opened") && logs.contains("rebuilt"),
        "{logs}"
    );
    // A sealed search on a vault that never had an index says what to do.
    let w2 = World::new();
    w2.init();
    let o = w2.run(&[
        "search",
        "--vault",
        w2.vault.to_str().unwrap(),
        "--password-file",
        w2.pwfile.to_str().unwrap(),
        "x",
    ]);
    assert_eq!(o.status.code(), Some(22));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("reindex"),
        "{o:?}"
    );
}

#[test]
fn purged_notes_leave_no_trace_in_the_index() {
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    std::fs::write(m.path("keep.md"), "ordinary words").unwrap();
    std::fs::write(m.path("gone.md"), "zanzibar quokka").unwrap();
    assert!(until_found(&w, "quokka", "gone.md"));
    m.unmount();
    // Deleted after a remount (so it goes to the trash), then emptied.
    let m = w.mount(&[]);
    std::fs::remove_file(m.path("gone.md")).unwrap();
    assert!(wait_until(Duration::from_secs(15), || {
        !search(&w, &["--json", "--history", "quokka"]).contains("gone.md")
    }));
    let o = w.run(&["trash", "empty", "--yes"]);
    assert!(o.status.success(), "{o:?}");
    std::thread::sleep(Duration::from_millis(1500));
    m.unmount();
    // Rebuilding from the notes finds nothing either, and no index file
    // holds the words: checked through a fresh sealed reindex's absence of
    // hits and the unit test of compaction (index files are sealed on disk).
    for q in ["quokka", "zanzibar"] {
        let s = search(
            &w,
            &[
                "--json",
                "--history",
                "--vault",
                w.vault.to_str().unwrap(),
                "--password-file",
                w.pwfile.to_str().unwrap(),
                q,
            ],
        );
        assert_eq!(s.trim(), "[]", "{q}: {s}");
    }
    assert_eq!(contains_bytes(&w.vault, b"quokka"), None);
    assert_eq!(contains_bytes(&w.local(), b"quokka"), None);
}

#[test]
fn pdfs_and_images_are_indexed_by_their_text() {
    need("pdftotext");
    need("tesseract");
    let started = std::time::SystemTime::now() - Duration::from_secs(2);
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    std::fs::write(
        m.path("referral.pdf"),
        text_pdf(&["Referral letter for Clara", "Diagnosis: hypothyroidism"]),
    )
    .unwrap();
    let scan = scanned_pdf(w.dir.path(), &["Scanned consent form", "Signed by Dorian"]);
    std::fs::write(m.path("consent.pdf"), &scan).unwrap();
    let png = Command::new("pdftoppm")
        .args(["-r", "150", "-gray", "-png", "-singlefile"])
        .arg(w.dir.path().join("src.pdf"))
        .output()
        .unwrap()
        .stdout;
    std::fs::write(m.path("photo.png"), png).unwrap();
    std::fs::write(
        m.path("broken.pdf"),
        b"%PDF-1.4\n1 0 obj << /Kids [ >> garbage\n%%EOF",
    )
    .unwrap();
    assert!(until_found(&w, "hypothyroidism", "referral.pdf"));
    assert!(until_found(&w, "dorian", "consent.pdf"));
    assert!(until_found(&w, "dorian", "photo.png"));
    // The malformed PDF was skipped; the daemon is alive and well.
    std::fs::write(m.path("after.md"), "still indexing").unwrap();
    assert!(until_found(&w, "indexing", "after.md"));
    m.unmount();
    // Nothing extracted reached the disk in the clear.
    assert_eq!(contains_bytes(&w.vault, b"hypothyroidism"), None);
    assert_eq!(contains_bytes(&w.vault, b"Dorian"), None);
    assert_eq!(contains_bytes(&w.local(), b"hypothyroidism"), None);
    assert_eq!(contains_bytes(&w.local(), b"Dorian"), None);
    // Nor in a temp folder (the helpers read from memory and a pipe).
    assert_eq!(
        contains_bytes_since(&w.tmp, b"hypothyroidism", started),
        None
    );
}

/// Issue 16.2: the index a seal leaves is exactly current: a note deleted
/// just before `quire unmount` is not found by a sealed search, a save
/// made just before it is, the next mount has nothing to repair, and a
/// purge made through the sealed vault leaves the sealed index too.
#[test]
fn the_sealed_index_is_exactly_current() {
    let w = World::new();
    w.init();
    let sealed = |q: &str| {
        search(
            &w,
            &[
                "--json",
                "--history",
                "--vault",
                w.vault.to_str().unwrap(),
                "--password-file",
                w.pwfile.to_str().unwrap(),
                q,
            ],
        )
    };
    let m = w.mount(&[]);
    std::fs::write(m.path("stays.md"), "ordinary words\n").unwrap();
    std::fs::write(m.path("expiring.md"), "wallaby notes\n").unwrap();
    std::fs::write(m.path("oops.md"), "zebrafinch\n").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::remove_file(m.path("oops.md")).unwrap();
    std::fs::write(m.path("last.md"), "quokka at the last moment\n").unwrap();
    m.unmount();
    assert_eq!(sealed("zebrafinch").trim(), "[]");
    assert!(sealed("quokka").contains("\"path\":\"last.md\""));
    // Nothing left to repair at the next mount.
    let m = w.mount(&[]);
    let o = w.run(&["expire", m.path("expiring.md").to_str().unwrap(), "+1d"]);
    assert!(o.status.success(), "{o:?}");
    std::thread::sleep(Duration::from_secs(2));
    let logs = out(&w.run(&["logs"]));
    assert!(!logs.contains("search index repaired"), "{logs}");
    m.unmount();
    // Expired and purged through the sealed vault: gone from the index.
    let o = w.run(&[
        "purge",
        "--now",
        "+200d",
        "--vault",
        w.vault.to_str().unwrap(),
        "--password-file",
        w.pwfile.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(sealed("wallaby").trim(), "[]");
    assert!(sealed("ordinary").contains("stays.md"));
    // reindex counts documents, and says they include older versions
    // (issue 16.7: "15 documents" for 4 notes read as a wrong count).
    let o = w.run(&[
        "reindex",
        "--vault",
        w.vault.to_str().unwrap(),
        "--password-file",
        w.pwfile.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("each older version"), "{err}");
}
