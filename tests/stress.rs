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
    let runs: Vec<_> = [(42u32, "a.bin"), (7, "b.bin")]
        .into_iter()
        .map(|(seed, name)| {
            let file = m.path(name);
            let art = art.clone();
            std::thread::spawn(move || {
                std::process::Command::new("fsx")
                    .args(["-N", "4000", "-S", &seed.to_string(), "-P"])
                    .arg(&art)
                    .arg(&file)
                    .output()
                    .unwrap()
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
}
