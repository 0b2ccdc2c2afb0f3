//! The project's own scripts, as a new user's machine runs them.

use std::process::Command;

/// tools/setup and tools/test install packages through `ensure_packages`.
/// When another program holds apt's lock (an unattended upgrade on a fresh
/// machine), they wait with a message instead of failing (issue 10.10).
#[test]
fn package_install_waits_for_a_locked_apt() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let count = dir.path().join("count");
    // A fake apt-get: locked twice, then it installs.
    std::fs::write(
        bin.join("apt-get"),
        format!(
            "#!/bin/sh\nn=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}\n\
             echo \"apt-get $*\" >> {c}.args\n\
             if [ $n -le 2 ]; then echo 'E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 1 (apt-get)' >&2; exit 100; fi\n\
             exit 0\n",
            c = count.display()
        ),
    )
    .unwrap();
    std::fs::write(bin.join("sudo"), "#!/bin/sh\nexec \"$@\"\n").unwrap();
    for f in ["apt-get", "sudo"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join(f), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let o = Command::new("bash")
        .arg("-c")
        .arg(". tools/deps.sh && ensure_packages quire-no-such-command:fakepkg")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PATH", &path)
        .env("QUIRE_APT_WAIT_STEP", "0")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("waiting for it to finish"), "{err}");
    assert_eq!(err.matches("waiting for it").count(), 1, "{err}");
    let args = std::fs::read_to_string(dir.path().join("count.args")).unwrap();
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        vec!["apt-get install -y fakepkg"; 3],
        "{args}"
    );

    // A real failure (no such package) is reported, not waited on.
    std::fs::write(
        bin.join("apt-get"),
        "#!/bin/sh\necho 'E: Unable to locate package fakepkg' >&2; exit 100\n",
    )
    .unwrap();
    let o = Command::new("bash")
        .arg("-c")
        .arg(". tools/deps.sh && ensure_packages quire-no-such-command:fakepkg")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PATH", &path)
        .env("QUIRE_APT_WAIT_STEP", "0")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("Unable to locate package"), "{err}");
    assert!(!err.contains("waiting for it"), "{err}");
}
