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

/// Issue 16.10: tools/setup and tools/test check the Rust toolchain first:
/// a missing cargo or one older than Cargo.toml's rust-version (Debian
/// 12's 1.63) gets a plain message naming rustup, not a compile failure.
#[test]
fn a_missing_or_old_rust_is_named_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let run = |path: &str| {
        Command::new("bash")
            .arg("-c")
            .arg(". tools/deps.sh && ensure_rust")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("PATH", path)
            .env("HOME", dir.path())
            .output()
            .unwrap()
    };
    // No cargo at all (only the shell's own tools).
    let o = run(&format!("{}:/usr/bin:/bin", bin.display()));
    let err = String::from_utf8_lossy(&o.stderr);
    if !std::path::Path::new("/usr/bin/cargo").exists() {
        assert!(!o.status.success() && err.contains("has no Rust"), "{err}");
        assert!(err.contains("rustup"), "{err}");
    }
    // Debian 12's cargo.
    std::fs::write(
        bin.join("cargo"),
        "#!/bin/sh\necho 'cargo 1.63.0 (fd9c4297c 2022-05-26)'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("cargo"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = run(&format!("{}:/usr/bin:/bin", bin.display()));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("this machine's cargo is 1.63.0") && err.contains("rustup"),
        "{err}"
    );
    // The toolchain running this test is new enough.
    let cargo_dir = option_env!("CARGO")
        .and_then(|c| std::path::Path::new(c).parent())
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let o = run(&format!("{cargo_dir}:{}", std::env::var("PATH").unwrap()));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
