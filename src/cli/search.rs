//! `quire search` and `quire reindex`: full-text search of a vault's notes
//! through its encrypted index (docs/FORMAT.md §17), on a mounted vault
//! (through its daemon) or a sealed one (opened here with the password).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Result;
use clap::Args;

use super::exit::{Code, fail};
use super::target::{Conn, TargetArgs, connect};
use crate::control::{HitOut, Request, Response, SearchRequest};
use crate::index::SearchIndex;
use crate::vault::history::stamp;

/// `quire search`.
#[derive(Args, Debug)]
pub struct SearchArgs {
    /// What to look for: words (all must appear; stemmed, typos forgiven),
    /// "an exact phrase", prefix*, NOT excluded (or -excluded after `--`),
    /// OR between alternatives. Options may come anywhere before `--`.
    /// `-` reads the query from standard input, so other users of the
    /// machine cannot see it in the process list.
    #[arg(required = true, num_args = 1.., value_name = "QUERY")]
    query: Vec<String>,
    /// Most results shown.
    #[arg(long, short = 'n', default_value_t = 20)]
    limit: usize,
    /// Only notes at or under PATH (a path in the mount, or in the vault).
    #[arg(long, value_name = "PATH")]
    path: Option<PathBuf>,
    /// Only notes changed on or after DATE (local: 2026-11-25, "2026-11-25 14:03").
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Only notes changed on or before DATE.
    #[arg(long, value_name = "DATE")]
    until: Option<String>,
    /// Also search old versions (each hit says which version matched).
    #[arg(long)]
    history: bool,
    /// Print `path:line:text` for every matching line, like `grep -n`
    /// (`path@vN` for an old version).
    #[arg(long, conflicts_with = "json")]
    grep: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: TargetArgs,
}

/// `quire reindex`.
#[derive(Args, Debug)]
pub struct ReindexArgs {
    #[command(flatten)]
    target: TargetArgs,
}

fn ns(t: std::time::SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn open_sealed(c: &Conn, write: bool) -> Result<SearchIndex> {
    let (_, v) = c.sealed().expect("a sealed vault");
    let (root, key) = v.index_access();
    match SearchIndex::open(&root, key, !write) {
        Ok((i, _)) => Ok(i),
        Err(crate::index::Error::Missing) => Err(fail(
            Code::NotFound,
            "this vault has no search index yet: mount it once (the daemon builds it) or run `quire reindex --vault DIR`",
        )),
        Err(e) if write => {
            eprintln!("The search index could not be opened ({e}); starting a new one.");
            SearchIndex::wipe(&root)?;
            Ok(SearchIndex::open(&root, v.index_access().1, false)
                .map_err(|e| fail(Code::Io, e.to_string()))?
                .0)
        }
        Err(e) => Err(fail(
            Code::Io,
            format!("{e}; rebuild it with `quire reindex`"),
        )),
    }
}

fn print(hits: &[HitOut], a: &SearchArgs) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", serde_json::to_string(hits)?)?;
        return Ok(());
    }
    if a.grep {
        for h in hits {
            let name = if h.version > 0 {
                format!("{}@v{}", h.path, h.version)
            } else {
                h.path.clone()
            };
            for (n, line) in &h.lines {
                writeln!(out, "{name}:{n}:{line}")?;
            }
        }
        return Ok(());
    }
    if hits.is_empty() {
        // On the same stream as results and the header (issue 16.8).
        writeln!(out, "No note matches.")?;
        return Ok(());
    }
    let tty = std::io::stdout().is_terminal();
    for h in hits {
        let when = stamp(UNIX_EPOCH + Duration::from_nanos(h.mtime_ns.max(0) as u64));
        let version = if h.version > 0 {
            format!("  (version {})", h.version)
        } else {
            String::new()
        };
        writeln!(out, "{}  {when}{version}", h.path)?;
        let mut s = String::new();
        let mut at = 0;
        for &(a, b) in &h.highlights {
            if a < at || b > h.snippet.len() {
                continue;
            }
            s.push_str(&h.snippet[at..a]);
            if tty {
                s.push_str(&format!("\x1b[1m{}\x1b[0m", &h.snippet[a..b]));
            } else {
                s.push_str(&format!("[{}]", &h.snippet[a..b]));
            }
            at = b;
        }
        s.push_str(&h.snippet[at..]);
        writeln!(out, "    {}", s.trim())?;
    }
    Ok(())
}

/// The query from standard input (`quire search -`): the process list
/// shows every user a process's arguments, not what it reads (issue 11.9).
fn read_query() -> Result<zeroize::Zeroizing<String>> {
    use std::io::Read;
    let mut q = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut q)
        .map_err(|e| {
            fail(
                Code::Usage,
                format!("could not read the query from standard input: {e}"),
            )
        })?;
    let trimmed = q.trim().to_string();
    if trimmed.is_empty() {
        return Err(fail(
            Code::Usage,
            "the query read from standard input is empty",
        ));
    }
    Ok(zeroize::Zeroizing::new(trimmed))
}

/// `quire search`.
pub fn search(a: SearchArgs) -> Result<()> {
    let (c, rel) = connect(&a.target, a.path.as_deref())?;
    let query = if a.query == ["-"] {
        read_query()?
    } else {
        zeroize::Zeroizing::new(a.query.join(" "))
    };
    let req = SearchRequest {
        query: query.to_string(),
        limit: a.limit.max(1),
        path: a.path.as_ref().map(|_| rel.clone()),
        since_ns: a
            .since
            .as_deref()
            .map(|s| super::history::parse_start(s).map(ns))
            .transpose()?,
        until_ns: a
            .until
            .as_deref()
            .map(|s| super::history::parse_time(s).map(ns))
            .transpose()?,
        history: a.history,
        all_lines: a.grep,
    };
    let hits = match &c {
        Conn::Remote { .. } => match c.call(Request::Search(req))? {
            Response::Hits { hits } => hits,
            _ => return Err(fail(Code::Io, "unexpected answer from the daemon")),
        },
        Conn::Local { .. } => {
            let index = open_sealed(&c, false)?;
            super::indexer::search(&index, &req).map_err(|(errno, m)| {
                fail(
                    if errno == libc::EINVAL {
                        Code::Usage
                    } else {
                        Code::Io
                    },
                    m,
                )
            })?
        }
    };
    if !a.json && !a.grep {
        c.header();
    }
    print(&hits, &a)
}

/// Draws the progress bar on a terminal.
fn bar(tty: bool, done: u64, total: u64) {
    if !tty {
        return;
    }
    let pct = (done * 100 / total.max(1)).min(100);
    let bar = "#".repeat((pct / 4) as usize);
    eprint!("\rindexing [{bar:<25}] {pct:>3}% ({done}/{total} notes)");
    let _ = std::io::stderr().flush();
}

/// `quire reindex`.
pub fn reindex(a: ReindexArgs) -> Result<()> {
    let (c, _) = connect(&a.target, None)?;
    let tty = std::io::stderr().is_terminal();
    let docs = match &c {
        Conn::Remote { .. } => {
            eprintln!("Rebuilding the search index of the mounted vault…");
            // The rebuild runs in the daemon; its progress is asked for
            // on the side while this request waits.
            let result = std::thread::scope(|s| {
                let job = s.spawn(|| c.call(Request::Reindex));
                while !job.is_finished() {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    if let Ok(Response::Progress { done, total }) = c.call(Request::ReindexProgress)
                        && total > 0
                    {
                        bar(tty, done, total);
                    }
                }
                job.join()
                    .unwrap_or_else(|_| Err(fail(Code::Io, "the request failed")))
            });
            if tty {
                eprintln!();
            }
            match result? {
                Response::Reindexed { docs } => docs,
                _ => return Err(fail(Code::Io, "unexpected answer from the daemon")),
            }
        }
        Conn::Local { .. } => {
            let index = open_sealed(&c, true)?;
            let (tree, _) = c.sealed().expect("sealed");
            let mut last = 0;
            let n = super::indexer::build(tree, &index, &mut |done, total| {
                if done == total || done - last >= 25 {
                    last = done;
                    bar(tty, done, total);
                }
            })
            .map_err(|e| fail(Code::Io, e))?;
            if tty {
                eprintln!();
            }
            n
        }
    };
    eprintln!(
        "The search index holds {docs} documents: each note's current text, and each older version's."
    );
    Ok(())
}
