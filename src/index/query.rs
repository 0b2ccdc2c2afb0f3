//! The query language of `quire search`, parsed into tantivy queries:
//! words (all must appear; stemmed, and a typo or two forgiven), `"exact
//! phrases"`, `prefix*`, `-excluded` (or `NOT word`), `OR` between
//! alternatives, `AND` accepted and implied. Also finds, for snippets and
//! `--grep` output, the lines of a note that match.

use tantivy::Term;
use tantivy::query::{
    BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, PhraseQuery, Query, RegexQuery, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TextAnalyzer;

/// A query that does not parse, said so a user can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad query: {0}")]
pub struct QueryError(pub String);

fn bad(s: impl Into<String>) -> QueryError {
    QueryError(s.into())
}

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Word(String),
    Phrase(String),
    Or,
    Not,
}

fn lex(s: &str) -> Result<Vec<Item>, QueryError> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '"' {
            chars.next();
            let mut p = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some(x) => p.push(x),
                    None => {
                        return Err(bad(
                            "a quote is not closed (phrases go in \"double quotes\")",
                        ));
                    }
                }
            }
            out.push(Item::Phrase(p));
            continue;
        }
        if c == '-' {
            chars.next();
            out.push(Item::Not);
            continue;
        }
        let mut w = String::new();
        while let Some(&x) = chars.peek() {
            if x.is_whitespace() || x == '"' {
                break;
            }
            w.push(x);
            chars.next();
        }
        match w.as_str() {
            "OR" => out.push(Item::Or),
            "AND" => {}
            "NOT" => out.push(Item::Not),
            _ => out.push(Item::Word(w)),
        }
    }
    Ok(out)
}

fn tokens(an: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut v = Vec::new();
    let mut ts = an.token_stream(text);
    while ts.advance() {
        v.push(ts.token().text.clone());
    }
    v
}

/// Lowercase and fold accents, without stemming (for prefixes).
fn fold(s: &str) -> String {
    let mut an =
        tantivy::tokenizer::TextAnalyzer::builder(tantivy::tokenizer::RawTokenizer::default())
            .filter(tantivy::tokenizer::LowerCaser)
            .filter(tantivy::tokenizer::AsciiFoldingFilter)
            .build();
    tokens(&mut an, s).into_iter().next().unwrap_or_default()
}

/// What lines of a note match: stems, prefixes and phrases of the query.
#[derive(Debug, Default, Clone)]
pub struct Needles {
    stems: Vec<String>,
    /// Query words, lowercased and folded but not stemmed (typos).
    words: Vec<String>,
    prefixes: Vec<String>,
}

/// Edits forgiven in a word of `n` letters.
fn typos(n: usize) -> u8 {
    if n >= 8 {
        2
    } else if n >= 4 {
        1
    } else {
        0
    }
}

/// A parsed query.
pub struct Parsed {
    pub query: Box<dyn Query>,
    pub needles: Needles,
}

/// A word: its stem exactly (ranked higher), or the word as typed within
/// a few edits of a word of the note (the unstemmed copy).
fn term_clause(body: Field, raw: Option<Field>, stem: &str, word: &str) -> Box<dyn Query> {
    let exact: Box<dyn Query> = Box::new(BoostQuery::new(
        Box::new(TermQuery::new(
            Term::from_field_text(body, stem),
            IndexRecordOption::WithFreqs,
        )),
        2.0,
    ));
    let distance = typos(word.chars().count());
    let Some(raw) = raw.filter(|_| distance > 0) else {
        return exact;
    };
    Box::new(BooleanQuery::new(vec![
        (Occur::Should, exact),
        (
            Occur::Should,
            Box::new(FuzzyTermQuery::new(
                Term::from_field_text(raw, word),
                distance,
                true,
            )),
        ),
    ]))
}

/// Parses `text` for the field `body`, analysed with `an`.
/// `raw`: the unstemmed field to forgive typos in (none: exact stems only).
pub fn parse(
    text: &str,
    body: Field,
    raw: Option<Field>,
    an: &mut TextAnalyzer,
) -> Result<Parsed, QueryError> {
    let items = lex(text)?;
    if items.is_empty() {
        return Err(bad("the query is empty"));
    }
    let mut needles = Needles::default();
    let mut groups: Vec<Vec<(Occur, Box<dyn Query>)>> = vec![Vec::new()];
    let mut negate = false;
    for (i, it) in items.iter().enumerate() {
        match it {
            Item::Or => {
                if i == 0
                    || i == items.len() - 1
                    || negate
                    || groups.last().is_some_and(|g| g.is_empty())
                {
                    return Err(bad("OR needs something on both sides"));
                }
                groups.push(Vec::new());
                continue;
            }
            Item::Not => {
                if negate {
                    return Err(bad("two negations in a row"));
                }
                negate = true;
                continue;
            }
            _ => {}
        }
        let occur = if negate { Occur::MustNot } else { Occur::Must };
        let q: Option<Box<dyn Query>> = match it {
            Item::Word(w) if w.ends_with('*') => {
                let p = fold(w.trim_end_matches('*'));
                if p.chars().count() < 2 {
                    return Err(bad(format!("`{w}`: a prefix needs at least 2 letters")));
                }
                if !p.chars().all(char::is_alphanumeric) {
                    return Err(bad(format!(
                        "`{w}`: a prefix is letters and digits followed by *"
                    )));
                }
                if !negate {
                    needles.prefixes.push(p.clone());
                }
                Some(Box::new(
                    RegexQuery::from_pattern(&format!("{p}.*"), body)
                        .map_err(|e| bad(e.to_string()))?,
                ))
            }
            Item::Word(w) => {
                let ts = tokens(an, w);
                let word = fold(w.trim_matches(|c: char| !c.is_alphanumeric()));
                if !negate {
                    needles.stems.extend(ts.iter().cloned());
                    if ts.len() == 1 {
                        needles.words.push(word.clone());
                    }
                }
                match ts.len() {
                    0 => None,
                    1 => Some(term_clause(body, raw, &ts[0], &word)),
                    _ => Some(Box::new(PhraseQuery::new(
                        ts.iter().map(|t| Term::from_field_text(body, t)).collect(),
                    ))),
                }
            }
            Item::Phrase(p) => {
                let ts = tokens(an, p);
                if !negate {
                    needles.stems.extend(ts.iter().cloned());
                }
                match ts.len() {
                    0 => None,
                    1 => Some(Box::new(TermQuery::new(
                        Term::from_field_text(body, &ts[0]),
                        IndexRecordOption::WithFreqs,
                    ))),
                    _ => Some(Box::new(PhraseQuery::new(
                        ts.iter().map(|t| Term::from_field_text(body, t)).collect(),
                    ))),
                }
            }
            _ => None,
        };
        negate = false;
        if let Some(q) = q {
            groups.last_mut().expect("one group").push((occur, q));
        }
    }
    if negate {
        return Err(bad("`-` or NOT needs a word after it"));
    }
    let mut alts: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for g in groups {
        if !g.iter().any(|(o, _)| *o == Occur::Must) {
            return Err(bad(
                "nothing to look for: a query needs at least one word that must appear",
            ));
        }
        alts.push((Occur::Should, Box::new(BooleanQuery::new(g))));
    }
    let query: Box<dyn Query> = if alts.len() == 1 {
        alts.pop().expect("one").1
    } else {
        Box::new(BooleanQuery::new(alts))
    };
    Ok(Parsed { query, needles })
}

/// (snippet, highlighted byte ranges in it, matching lines as (1-based
/// number, text)).
pub type Snippet = (String, Vec<(usize, usize)>, Vec<(usize, String)>);

/// Edit distance, giving up above `max`.
fn near(a: &str, b: &str, max: usize) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > max {
        return false;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        if cur.iter().min().copied().unwrap_or(0) > max {
            return false;
        }
        prev = cur;
    }
    prev[b.len()] <= max
}

impl Needles {
    /// Whether a token (lowercased, folded) matches, stemming it only when
    /// it could share a stem with the query (stemming every word of every
    /// hit was most of a search's time).
    fn token_matches(&self, raw: &str, an: &mut TextAnalyzer) -> bool {
        if self.words.iter().any(|w| w == raw)
            || self.prefixes.iter().any(|p| raw.starts_with(p.as_str()))
            || self.words.iter().any(|w| {
                let d = typos(w.chars().count()) as usize;
                d > 0 && near(w, raw, d)
            })
        {
            return true;
        }
        let head: String = raw.chars().take(2).collect();
        if !self.stems.iter().any(|s| s.starts_with(&head)) {
            return false;
        }
        tokens(an, raw)
            .first()
            .is_some_and(|stem| self.stems.contains(stem))
    }

    /// (snippet, highlighted byte ranges in it, matching lines). With
    /// `all_lines` false, stops at the first matching line.
    pub fn snippet(&self, text: &str, an: &mut TextAnalyzer, all_lines: bool) -> Snippet {
        let mut lines = Vec::new();
        let mut first: Option<(String, Vec<(usize, usize)>)> = None;
        let mut raw_an = tantivy::tokenizer::TextAnalyzer::builder(
            tantivy::tokenizer::SimpleTokenizer::default(),
        )
        .filter(tantivy::tokenizer::RemoveLongFilter::limit(48))
        .filter(tantivy::tokenizer::LowerCaser)
        .filter(tantivy::tokenizer::AsciiFoldingFilter)
        .build();
        for (n, line) in text.lines().enumerate() {
            let mut spans = Vec::new();
            let mut rs = raw_an.token_stream(line);
            let mut found = Vec::new();
            while rs.advance() {
                let t = rs.token();
                found.push((t.text.clone(), t.offset_from, t.offset_to));
            }
            for (raw, a, b) in found {
                if self.token_matches(&raw, an) {
                    spans.push((a, b));
                }
            }
            if spans.is_empty() {
                continue;
            }
            if lines.len() < 50 {
                lines.push((n + 1, line.to_string()));
            }
            if first.is_none() {
                first = Some((line.to_string(), spans));
                if !all_lines {
                    break;
                }
            }
        }
        let (line, spans) = first.unwrap_or_else(|| {
            (
                text.lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .to_string(),
                Vec::new(),
            )
        });
        // At most about 200 bytes, around the first match.
        let (mut start, mut end) = (0, line.len());
        if line.len() > 200 {
            let at = spans.first().map_or(0, |s| s.0);
            start = at.saturating_sub(60);
            while !line.is_char_boundary(start) {
                start -= 1;
            }
            end = (start + 200).min(line.len());
            while !line.is_char_boundary(end) {
                end -= 1;
            }
        }
        let cut = line[start..end].to_string();
        let hl = spans
            .into_iter()
            .filter(|(a, b)| *a >= start && *b <= end)
            .map(|(a, b)| (a - start, b - start))
            .collect();
        (cut, hl, lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn an() -> TextAnalyzer {
        TextAnalyzer::builder(tantivy::tokenizer::SimpleTokenizer::default())
            .filter(tantivy::tokenizer::LowerCaser)
            .filter(tantivy::tokenizer::Stemmer::new(
                tantivy::tokenizer::Language::English,
            ))
            .build()
    }

    fn field() -> Field {
        let mut b = tantivy::schema::Schema::builder();
        b.add_text_field("body", tantivy::schema::TEXT)
    }

    fn parse(q: &str, f: Field, an: &mut TextAnalyzer) -> Result<Parsed, QueryError> {
        super::parse(q, f, Some(f), an)
    }

    #[test]
    fn malformed_queries_say_what_is_wrong() {
        for (q, want) in [
            ("", "empty"),
            ("\"panic attack", "quote"),
            ("OR sleep", "OR"),
            ("sleep OR", "OR"),
            ("-sleep", "at least one word"),
            ("sleep -", "needs a word"),
            ("m*", "2 letters"),
            ("sleep OR -dream", "at least one word"),
        ] {
            let e = parse(q, field(), &mut an())
                .err()
                .unwrap_or_else(|| panic!("{q} parsed"));
            assert!(e.to_string().contains(want), "{q}: {e}");
        }
        for q in [
            "sleep",
            "\"panic attack\" AND sleep",
            "medic* -aspirin",
            "sleep OR insomnia",
            "NOT dream sleep",
        ] {
            assert!(parse(q, field(), &mut an()).is_ok(), "{q}");
        }
    }

    #[test]
    fn snippets_find_stems_prefixes_and_typos() {
        let p = parse("medication", field(), &mut an()).unwrap();
        let text = "Intro line\nShe stopped her medications last week.\nOther\nmedicated? no";
        let (snip, hl, lines) = p.needles.snippet(text, &mut an(), true);
        assert_eq!(snip, "She stopped her medications last week.");
        assert_eq!(&snip[hl[0].0..hl[0].1], "medications");
        assert_eq!(lines[0].0, 2);
        let p = parse("medicaton", field(), &mut an()).unwrap(); // a typo
        assert_eq!(p.needles.snippet(text, &mut an(), true).2[0].0, 2);
        let p = parse("medic*", field(), &mut an()).unwrap();
        let lines = p.needles.snippet(text, &mut an(), true).2;
        assert_eq!(lines.iter().map(|l| l.0).collect::<Vec<_>>(), [2, 4]);
        assert!(near("kitten", "sitting", 3) && !near("kitten", "sitting", 2));
    }
}
