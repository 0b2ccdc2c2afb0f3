//! The layer rule of HOUSE.md §1, checked on the source: a module may use
//! only the layers below it. (gocryptfs keeps such rules in test.bash.)

use std::path::Path;

/// What each top-level module may import from `crate::`.
const ALLOWED: &[(&str, &[&str])] = &[
    ("crypto", &["crypto"]),
    ("format", &["format", "crypto"]),
    ("store", &["store"]),
    ("vault", &["vault", "crypto", "format", "store"]),
    ("index", &["index", "crypto", "format", "store"]),
    ("fuse", &["fuse", "vault"]),
    ("control", &["control", "vault"]),
    (
        "cli",
        &[
            "cli", "crypto", "format", "store", "vault", "index", "fuse", "control",
        ],
    ),
];

fn rs_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn modules_only_use_layers_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    for (module, allowed) in ALLOWED {
        let dir = src.join(module);
        if !dir.exists() {
            continue;
        }
        let mut files = Vec::new();
        rs_files(&dir, &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for (i, line) in text.lines().enumerate() {
                let mut rest = line;
                while let Some(at) = rest.find("crate::") {
                    let after = &rest[at + 7..];
                    let used: String = after
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !used.is_empty() && !allowed.contains(&used.as_str()) {
                        violations.push(format!(
                            "{}:{}: {module} uses crate::{used}",
                            f.display(),
                            i + 1
                        ));
                    }
                    rest = after;
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layer violations:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_fuse_layer_never_names_a_key_type() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/fuse");
    let mut files = Vec::new();
    rs_files(&src, &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for word in [
            "SubKeys",
            "MasterKey",
            "AeadKey",
            "NameKey",
            "Key32",
            "aes_gcm",
            "aes_siv",
        ] {
            assert!(!text.contains(word), "{} mentions {word}", f.display());
        }
    }
}

/// No import circle among the files of a module (HOUSE.md §1; issue 21):
/// a file names a sibling as `super::NAME` or `crate::MODULE::NAME`. The
/// vault module's circle is issue 21's to untangle; the others stay free.
#[test]
fn no_import_circle_inside_the_lower_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for module in ["crypto", "format", "store", "index", "control"] {
        let dir = src.join(module);
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .filter(|s| s != "mod")
            .collect();
        files.sort();
        let edges: Vec<Vec<usize>> = files
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(dir.join(format!("{f}.rs"))).unwrap();
                files
                    .iter()
                    .enumerate()
                    .filter(|(_, g)| {
                        *g != f
                            && [format!("super::{g}"), format!("crate::{module}::{g}")]
                                .iter()
                                .any(|pat| {
                                    text.match_indices(pat.as_str()).any(|(i, _)| {
                                        !text[i + pat.len()..]
                                            .starts_with(|c: char| c.is_alphanumeric() || c == '_')
                                    })
                                })
                    })
                    .map(|(j, _)| j)
                    .collect()
            })
            .collect();
        // Depth-first search for a back edge.
        fn visit(n: usize, e: &[Vec<usize>], state: &mut [u8], path: &mut Vec<usize>) -> bool {
            state[n] = 1;
            path.push(n);
            for &m in &e[n] {
                if state[m] == 1 {
                    path.push(m);
                    return true;
                }
                if state[m] == 0 && visit(m, e, state, path) {
                    return true;
                }
            }
            path.pop();
            state[n] = 2;
            false
        }
        let mut state = vec![0u8; files.len()];
        for n in 0..files.len() {
            let mut path = Vec::new();
            if state[n] == 0 && visit(n, &edges, &mut state, &mut path) {
                let names: Vec<&str> = path.iter().map(|&i| files[i].as_str()).collect();
                panic!("import circle in src/{module}: {}", names.join(" -> "));
            }
        }
    }
}
