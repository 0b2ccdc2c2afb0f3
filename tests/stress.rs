//! Externally written stress: fsx (the File System eXerciser, a Rust port of
//! the classic tool, installed by tools/test) runs random reads, writes,
//! truncates, fallocates and mmap I/O against one file and checks every
//! byte against its own model. Two run at once on one mount; then the
//! vault, with the history they made, must verify.

mod common;

use common::*;

#[test]
fn fsx_random_operations_match_its_model() {
    need("fsx");
    let w = World::new();
    w.init();
    let m = w.mount(&[]);
    let art = w.dir.path().join("fsx-artifacts");
    std::fs::create_dir_all(&art).unwrap();
    // The third run also punches holes, preallocates, copies ranges and
    // fsyncs, over a 4 MiB file: runs of holes are made, split, joined and
    // cut (issue 10.2).
    let holes = w.dir.path().join("holes.toml");
    std::fs::write(
        &holes,
        "flen = 4194304\n[weights]\nread = 1.0\nwrite = 1.0\nmapread = 0.5\nmapwrite = 0.5\n\
         truncate = 1.0\nposix_fallocate = 1.0\npunch_hole = 1.0\ncopy_file_range = 0.5\n\
         fsync = 0.1\nclose_open = 0.05\n",
    )
    .unwrap();
    let runs: Vec<_> = [
        (42u32, "a.bin", None),
        (7, "b.bin", None),
        (11, "c.bin", Some(holes)),
    ]
    .into_iter()
    .map(|(seed, name, config)| {
        let file = m.path(name);
        let art = art.clone();
        std::thread::spawn(move || {
            let mut c = std::process::Command::new("fsx");
            let n = if config.is_some() { "2500" } else { "4000" };
            c.args(["-N", n, "-S", &seed.to_string(), "-P"]).arg(&art);
            if let Some(f) = config {
                c.arg("-f").arg(f);
            }
            c.arg(&file).output().unwrap()
        })
    })
    .collect();
    for r in runs {
        let o = r.join().unwrap();
        let out = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            o.status.success() && out.contains("A-OK"),
            "fsx failed:\n{out}"
        );
    }
    m.unmount();
    let o = w.check_sealed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    // No reader inside the daemon (indexer, history, checkpoints) saw a
    // block mid-write (issue 16.13): such a refusal with no program seeing
    // an error is a race, and fails the run.
    let o = w.run(&[
        "logs",
        w.vault.to_str().unwrap(),
        "--password-file",
        w.pwfile.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let logs = String::from_utf8_lossy(&o.stdout);
    for bad in [
        "last written there",
        "failed authentication",
        "does not authenticate",
    ] {
        assert!(
            !logs.lines().any(|l| l.contains(bad)),
            "the daemon refused a block during fsx: {}",
            logs.lines()
                .filter(|l| l.contains(bad))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
