//! The README and the manual under `docs/` stay navigable: every relative link or image points
//! at a file that exists, every `#anchor` into a Markdown file names one of its headings (by
//! GitHub's slug rule), `docs/src/SUMMARY.md` lists exactly the pages under `docs/src/`, and the
//! README stays short. Plain std: no Markdown crate, so the small parser below is tested too.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs;
use std::path::{Component, Path, PathBuf};

const README_MAX_LINES: usize = 250;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A link or image found in a Markdown text: its 1-based line and its target as written.
#[derive(Debug, PartialEq)]
struct Link {
    line: usize,
    target: String,
}

/// True for a line that opens or closes a fenced code block (``` or ~~~); returns the fence.
fn fence_of(line: &str) -> Option<String> {
    let t = line.trim_start();
    for c in ['`', '~'] {
        let n = t.chars().take_while(|&x| x == c).count();
        if n >= 3 {
            return Some(c.to_string().repeat(n));
        }
    }
    None
}

/// The text with everything that is code blanked out, so that nothing inside code is read as a
/// link or a heading: fenced blocks become empty lines and the inside of each inline code span
/// becomes `x`s (its backticks stay). Line breaks are kept, so line numbers still match.
fn mask_code(text: &str) -> String {
    // Fenced blocks first, line by line.
    let mut unfenced = String::with_capacity(text.len());
    let mut open: Option<String> = None;
    for line in text.split_inclusive('\n') {
        let newline = if line.ends_with('\n') { "\n" } else { "" };
        match (&open, fence_of(line)) {
            (None, Some(f)) => {
                open = Some(f);
                unfenced.push_str(newline);
            }
            (Some(o), Some(f)) if f.starts_with(o.as_str()) && line.trim() == f => {
                open = None;
                unfenced.push_str(newline);
            }
            (Some(_), _) => unfenced.push_str(newline),
            (None, None) => unfenced.push_str(line),
        }
    }

    // Then inline code spans: a run of n backticks up to the next run of exactly n, within
    // one paragraph; an unmatched run is literal text.
    let chars: Vec<char> = unfenced.chars().collect();
    let mut out = chars.clone();
    let run_at = |i: usize| chars[i..].iter().take_while(|&&c| c == '`').count();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            i += 1;
            continue;
        }
        let n = run_at(i);
        let mut j = i + n;
        let mut close = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let m = run_at(j);
                if m == n {
                    close = Some(j);
                    break;
                }
                j += m;
            } else if chars[j] == '\n' && paragraph_ends_after(&chars, j) {
                break;
            } else {
                j += 1;
            }
        }
        match close {
            Some(j) => {
                for c in &mut out[i + n..j] {
                    if *c != '\n' {
                        *c = 'x';
                    }
                }
                i = j + n;
            }
            None => i += n,
        }
    }
    out.into_iter().collect()
}

/// True when the line after the newline at `nl` is blank (the paragraph ends there).
fn paragraph_ends_after(chars: &[char], nl: usize) -> bool {
    chars[nl + 1..]
        .iter()
        .take_while(|&&c| c != '\n')
        .all(|c| c.is_whitespace())
}

/// Every inline link `[text](target)` and image `![alt](target)` outside code, in order.
/// Nested ones (an image inside a link's text) are found too. A title after the target
/// (`(file.md "Title")`) and angle brackets around it (`(<a b.md>)`) are dropped.
fn links(markdown: &str) -> Vec<Link> {
    let masked = mask_code(markdown);
    let chars: Vec<char> = masked.chars().collect();
    let mut found = Vec::new();
    let mut line = 1;
    for (i, &c) in chars.iter().enumerate() {
        if c == '\n' {
            line += 1;
        }
        if c != '[' || (i > 0 && chars[i - 1] == '\\') {
            continue;
        }
        // The matching `]`, within the paragraph.
        let mut depth = 0;
        let mut close = None;
        for (j, &d) in chars.iter().enumerate().skip(i) {
            match d {
                '[' if j == i || chars[j - 1] != '\\' => depth += 1,
                ']' if chars[j - 1] != '\\' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(j);
                        break;
                    }
                }
                '\n' if paragraph_ends_after(&chars, j) => break,
                _ => {}
            }
        }
        let Some(close) = close else { continue };
        if chars.get(close + 1) != Some(&'(') {
            continue;
        }
        // The matching `)` on the same line (parentheses inside the target must balance).
        let mut depth = 0;
        let mut end = None;
        for (j, &d) in chars.iter().enumerate().skip(close + 1) {
            match d {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(j);
                        break;
                    }
                }
                '\n' => break,
                _ => {}
            }
        }
        let Some(end) = end else { continue };
        let inside: String = chars[close + 2..end].iter().collect();
        let inside = inside.trim();
        let target = if let Some(rest) = inside.strip_prefix('<') {
            rest.split('>').next().unwrap_or("")
        } else {
            inside.split_whitespace().next().unwrap_or("")
        };
        found.push(Link {
            line,
            target: target.to_string(),
        });
    }
    found
}

/// GitHub's anchor for a heading: the heading's visible text, lowercased, with everything but
/// letters, digits, spaces, `-` and `_` dropped, and each space turned into `-`.
fn slug(heading: &str) -> String {
    // Keep only the text of links and images inside the heading.
    let mut visible = String::new();
    let mut rest = heading;
    while let Some(open) = rest.find('[') {
        let after = &rest[open..];
        match (after.find("]("), after.find(')')) {
            (Some(mid), Some(end)) if mid < end => {
                visible.push_str(rest[..open].trim_end_matches('!'));
                visible.push_str(&after[1..mid]);
                rest = &after[end + 1..];
            }
            _ => {
                visible.push_str(&rest[..=open]);
                rest = &after[1..];
            }
        }
    }
    visible.push_str(rest);
    visible
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors GitHub gives a Markdown text's ATX headings (`#` to `######`), code excluded;
/// a repeated slug gets `-1`, `-2`, … as on GitHub.
fn anchors(markdown: &str) -> HashSet<String> {
    // Headings are read from the fence-free text, but with code spans intact (their text
    // counts towards the slug).
    let masked = mask_code(markdown);
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = HashSet::new();
    for (masked_line, line) in masked.lines().zip(markdown.lines()) {
        let t = masked_line.trim_start();
        if masked_line.len() - t.len() > 3 {
            continue;
        }
        let hashes = t.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) {
            continue;
        }
        let after = &t[hashes..];
        if !(after.is_empty() || after.starts_with(' ') || after.starts_with('\t')) {
            continue;
        }
        let text = line.trim_start()[hashes..].trim();
        let text = text.trim_end_matches('#').trim_end();
        let base = slug(text);
        let n = seen.entry(base.clone()).or_insert(0);
        out.insert(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    out
}

fn is_external(target: &str) -> bool {
    let lower = target.to_ascii_lowercase();
    lower.starts_with("http://")
        || lower.starts_with("https://")
        || lower.starts_with("mailto:")
        || lower.contains("://")
}

/// `a/b/../c` → `a/c`, without touching the file system.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Reads (once) the anchors of a Markdown file on disk.
#[derive(Default)]
struct AnchorCache(HashMap<PathBuf, HashSet<String>>);

impl AnchorCache {
    fn of(&mut self, path: &Path) -> &HashSet<String> {
        self.0
            .entry(path.to_path_buf())
            .or_insert_with(|| anchors(&fs::read_to_string(path).unwrap_or_default()))
    }
}

/// The broken links of one Markdown text that lives (or would live) at `file`, each as
/// `file:line: target (why)`.
fn broken_links(file: &Path, text: &str, cache: &mut AnchorCache) -> Vec<String> {
    let own = anchors(text);
    let folder = file.parent().expect("a file has a folder");
    let shown = file.strip_prefix(root()).unwrap_or(file).display();
    let mut broken = Vec::new();
    for link in links(text) {
        let target = link.target.as_str();
        if target.is_empty() {
            broken.push(format!("{shown}:{}: empty link target", link.line));
            continue;
        }
        if is_external(target) {
            continue;
        }
        let (path_part, anchor) = match target.split_once('#') {
            Some((p, a)) => (p, Some(a)),
            None => (target, None),
        };
        let why = if path_part.is_empty() {
            // `#anchor` within this file.
            match anchor {
                Some(a) if !own.contains(a) => Some("no such heading in this file"),
                _ => None,
            }
        } else {
            let resolved = normalise(&folder.join(path_part));
            if !resolved.exists() {
                Some("no such file")
            } else {
                match anchor {
                    Some(a)
                        if !a.is_empty()
                            && resolved.extension().is_some_and(|e| e == "md")
                            && !cache.of(&resolved).contains(a) =>
                    {
                        Some("no such heading in that file")
                    }
                    _ => None,
                }
            }
        };
        if let Some(why) = why {
            broken.push(format!("{shown}:{}: {target} ({why})", link.line));
        }
    }
    broken
}

fn markdown_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            markdown_under(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_relative_link_in_the_readme_and_docs_resolves() {
    let mut files = vec![root().join("README.md")];
    markdown_under(&root().join("docs"), &mut files);
    assert!(
        files.len() > 2,
        "expected the manual's pages under docs/, found {files:?}"
    );
    let mut cache = AnchorCache::default();
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = read(file);
        checked += links(&text).len();
        broken.extend(broken_links(file, &text, &mut cache));
    }
    assert!(
        checked > 20,
        "only {checked} links found: is the parser broken?"
    );
    assert!(
        broken.is_empty(),
        "{} broken link(s) in README.md and docs/:\n  {}",
        broken.len(),
        broken.join("\n  ")
    );
}

#[test]
fn the_readme_stays_short() {
    let lines = read(&root().join("README.md")).lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines; keep it to {README_MAX_LINES} and move detail into docs/src/"
    );
}

#[test]
fn summary_lists_exactly_the_pages_under_docs_src() {
    let src = root().join("docs/src");
    let summary_path = src.join("SUMMARY.md");
    let summary = read(&summary_path);
    let listed: BTreeSet<PathBuf> = links(&summary)
        .into_iter()
        .filter(|l| !is_external(&l.target) && !l.target.starts_with('#'))
        .map(|l| normalise(&src.join(l.target.split('#').next().unwrap_or(""))))
        .collect();
    assert!(!listed.is_empty(), "docs/src/SUMMARY.md lists no pages");

    let missing: Vec<_> = listed.iter().filter(|p| !p.is_file()).collect();
    assert!(
        missing.is_empty(),
        "docs/src/SUMMARY.md lists pages that do not exist: {missing:?}"
    );

    let mut pages = Vec::new();
    markdown_under(&src, &mut pages);
    let unlisted: Vec<_> = pages
        .iter()
        .filter(|p| **p != summary_path && !listed.contains(*p))
        .map(|p| p.strip_prefix(&src).unwrap_or(p).display().to_string())
        .collect();
    assert!(
        unlisted.is_empty(),
        "pages under docs/src/ missing from SUMMARY.md (mdBook would not build them): {unlisted:?}"
    );

    let book = read(&root().join("docs/book.toml"));
    assert!(
        book.contains("[book]") && book.contains("src = \"src\""),
        "docs/book.toml should have a [book] table with src = \"src\""
    );
}

// The checker's own parts, on texts with known answers.

#[test]
fn link_extractor_finds_links_and_images_but_not_code() {
    let sample = "\
# Title

See [the guide](docs/guide.md#set-up) and ![a chart](img/chart.png \"Chart\").
A [link whose text
wraps](other.md) and [`code` in text](<with space.md>).
Not links: `[x](in-code.md)`, [no target] (space.md), \\[escaped](esc.md), [ref][1].
[![badge](badge.svg)](https://example.com/) and [top](#title).

```sh
echo [fenced](fenced.md)
```

~~~
[tilde](tilde.md)
~~~
";
    let got: Vec<(usize, String)> = links(sample)
        .into_iter()
        .map(|l| (l.line, l.target))
        .collect();
    let want: Vec<(usize, String)> = [
        (3, "docs/guide.md#set-up"),
        (3, "img/chart.png"),
        (4, "other.md"),
        (5, "with space.md"),
        (7, "https://example.com/"),
        (7, "badge.svg"),
        (7, "#title"),
    ]
    .into_iter()
    .map(|(n, t)| (n, t.to_string()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn a_known_broken_link_is_reported_and_good_ones_are_not() {
    // Checked as if it were a file at the repository root.
    let file = root().join("SAMPLE.md");
    let sample = "\
# Sample page

## `failup advise` — one story, the full advice

Good: [manifest](Cargo.toml), [tests](tests/), [readme](README.md#set-up-two-commands),
[here](#sample-page), [advise](#failup-advise--one-story-the-full-advice),
[web](https://example.com/missing.md), [mail](mailto:someone@example.com).

Broken: [gone](no/such/file.md), [bad anchor](#not-a-heading),
[bad anchor elsewhere](README.md#no-such-section).
";
    let broken = broken_links(&file, sample, &mut AnchorCache::default());
    assert_eq!(
        broken,
        vec![
            "SAMPLE.md:9: no/such/file.md (no such file)",
            "SAMPLE.md:9: #not-a-heading (no such heading in this file)",
            "SAMPLE.md:10: README.md#no-such-section (no such heading in that file)",
        ]
    );
}

#[test]
fn slugs_follow_githubs_rule() {
    assert_eq!(slug("Set-up: two commands"), "set-up-two-commands");
    assert_eq!(
        slug("`failup advise` — one story, the full advice"),
        "failup-advise--one-story-the-full-advice"
    );
    assert_eq!(
        slug("AMX engine (Intel Xeon 4th generation and later)"),
        "amx-engine-intel-xeon-4th-generation-and-later"
    );
    assert_eq!(slug("score_<id> and [a link](x.md)"), "score_id-and-a-link");

    let doc = "# Notes\n\n## Notes\n\n```\n# not a heading\n```\n\n#hashtag\n### Notes ###\n";
    let got: BTreeSet<String> = anchors(doc).into_iter().collect();
    let want: BTreeSet<String> = ["notes", "notes-1", "notes-2"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(got, want);
}
