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
        if let Some(path) = find_cycle(&edges) {
            let names: Vec<&str> = path.iter().map(|&i| files[i].as_str()).collect();
            panic!("import circle in src/{module}: {}", names.join(" -> "));
        }
    }
}

/// Every `.rs` file under `src/` with its module path (`vault::tree::rename`;
/// a `mod.rs` or `lib.rs` is its folder's module).
fn modules(src: &Path) -> Vec<(Vec<String>, std::path::PathBuf)> {
    let mut files = Vec::new();
    rs_files(src, &mut files);
    files
        .into_iter()
        .filter(|p| !p.ends_with("main.rs") && !p.ends_with("lib.rs"))
        .map(|p| {
            let rel = p.strip_prefix(src).unwrap().with_extension("");
            let mut m: Vec<String> = rel
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            if m.last().is_some_and(|l| l == "mod") {
                m.pop();
            }
            (m, p)
        })
        .collect()
}

/// The modules a file names in its code (comments skipped): `crate::a::b`,
/// `super::x` and `self::x`-less sibling paths `x::…` declared in a
/// `mod.rs`, each resolved to the longest known module path.
fn imports(me: &[String], is_mod: bool, text: &str, known: &[Vec<String>]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    // Tests (an inline module at the end) are not part of the graph.
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    for line in text.lines() {
        // A re-export (`pub use`) hands names on; it is the module's face,
        // not a use of them.
        let t = line.trim_start();
        if t.starts_with("pub use") || t.starts_with("pub(crate) use") {
            continue;
        }
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find(|c: char| c.is_alphabetic()) {
            let tail = &rest[at..];
            let path: String = tail
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let preceded = at > 0 && rest.as_bytes()[at - 1] == b'_';
            rest = &tail[path.len().max(1)..];
            // `a::{b, c::d}`: each name of the group, resolved on its own.
            let mut paths = vec![path.clone()];
            if path.ends_with("::") && rest.starts_with('{') {
                let group: String = rest[1..].chars().take_while(|c| *c != '}').collect();
                paths = group
                    .split(',')
                    .map(|n| format!("{path}{}", n.trim()))
                    .filter(|p| !p.ends_with("::") && !p.contains('{'))
                    .collect();
            }
            for path in paths {
                if preceded || !path.contains("::") {
                    continue;
                }
                let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
                let mut abs: Vec<String> = match segs[0] {
                    "crate" => Vec::new(),
                    "super" => me[..me.len().saturating_sub(1)].to_vec(),
                    "self" => me.to_vec(),
                    // A child module named from its parent's mod.rs.
                    first if is_mod && known.contains(&[me, &[first.to_string()]].concat()) => {
                        let mut b = me.to_vec();
                        b.push(first.to_string());
                        abs_rest(&mut b, &segs[1..]);
                        if let Some(h) = longest(&b, known) {
                            out.push(h);
                        }
                        continue;
                    }
                    _ => continue,
                };
                let mut i = 1;
                while i < segs.len() && segs[i] == "super" {
                    abs.pop();
                    i += 1;
                }
                abs.extend(segs[i..].iter().map(|s| s.to_string()));
                if let Some(h) = longest(&abs, known)
                    && h != me
                {
                    out.push(h);
                }
            }
        }
    }
    out
}

fn abs_rest(b: &mut Vec<String>, rest: &[&str]) {
    b.extend(rest.iter().map(|s| s.to_string()));
}

/// The longest known module that prefixes `path`.
fn longest(path: &[String], known: &[Vec<String>]) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| known.contains(p))
}

/// A cycle in `edges` (node indices), if any.
fn find_cycle(edges: &[Vec<usize>]) -> Option<Vec<usize>> {
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
    let mut state = vec![0u8; edges.len()];
    for n in 0..edges.len() {
        let mut path = Vec::new();
        if state[n] == 0 && visit(n, edges, &mut state, &mut path) {
            return Some(path);
        }
    }
    None
}

/// Issue 21: no import circle anywhere in `src/` (file by file), and
/// inside `vault/` the concerns (its sub-folders and files) stand in
/// floors: no import runs back up from one concern to another.
#[test]
fn no_import_circle_anywhere_and_vault_concerns_point_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mods = modules(&src);
    let known: Vec<Vec<String>> = mods.iter().map(|(m, _)| m.clone()).collect();
    let edges: Vec<Vec<Vec<String>>> = mods
        .iter()
        .map(|(m, p)| {
            let text = std::fs::read_to_string(p).unwrap();
            imports(m, p.ends_with("mod.rs"), &text, &known)
        })
        .collect();
    let index = |m: &Vec<String>| known.iter().position(|k| k == m).unwrap();
    let file_edges: Vec<Vec<usize>> = edges
        .iter()
        .map(|es| es.iter().map(index).collect())
        .collect();
    if let Some(c) = find_cycle(&file_edges) {
        let names: Vec<String> = c.iter().map(|&i| known[i].join("::")).collect();
        panic!("import circle in src/: {}", names.join(" -> "));
    }
    // vault's concerns: vault::X for every file or folder X directly in it
    // (the vault's own mod.rs, its face, stands above them all).
    let concern = |m: &Vec<String>| -> Option<String> {
        (m.len() >= 2 && m[0] == "vault").then(|| m[1].clone())
    };
    let mut names: Vec<String> = known.iter().filter_map(concern).collect();
    names.sort();
    names.dedup();
    let mut cedges = vec![Vec::new(); names.len()];
    for (i, es) in edges.iter().enumerate() {
        let Some(a) = concern(&known[i]) else {
            continue;
        };
        for e in es {
            if let Some(b) = concern(e)
                && a != b
            {
                let (ai, bi) = (
                    names.iter().position(|n| *n == a).unwrap(),
                    names.iter().position(|n| *n == b).unwrap(),
                );
                if !cedges[ai].contains(&bi) {
                    cedges[ai].push(bi);
                }
            }
        }
    }
    if let Some(c) = find_cycle(&cedges) {
        let path: Vec<&str> = c.iter().map(|&i| names[i].as_str()).collect();
        panic!(
            "an import runs back up between vault's concerns: {}",
            path.join(" -> ")
        );
    }
}

/// Issue 21: small files in the vault (HOUSE.md habit 12): none over 700
/// lines.
#[test]
fn no_vault_file_is_over_700_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/vault");
    let mut files = Vec::new();
    rs_files(&src, &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > 700).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "files over 700 lines: {long:?}");
}
