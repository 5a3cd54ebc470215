//! Splitting a story into sentences, so that the one sentence that carries a long story's
//! verdict ("…and then they gave it to the guy who started in March") is scored on its own
//! instead of being averaged away by the preamble around it.
//!
//! The rules are deliberately plain, since stories come from forums and chat as often as from
//! careful writers: a sentence ends at `.`, `!` or `?` (with any closing quotes or brackets
//! after it) followed by whitespace, at a `;` followed by whitespace, and at a line break.
//! Fragments shorter than [`MIN_WORDS`] words ("Didn't happen.", "Anyway.") carry too little to
//! be scored alone and are joined to the sentence before them (the first one to the sentence
//! after it).

/// Sentences shorter than this many words are joined to a neighbour.
pub const MIN_WORDS: usize = 3;

/// The sentences of `text`, trimmed, in order; none for blank text.
pub fn split(text: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    for line in text.lines() {
        split_line(line, &mut parts);
    }
    let mut out: Vec<String> = Vec::with_capacity(parts.len());
    for part in parts {
        match out.last_mut() {
            Some(last) if words(&part) < MIN_WORDS => {
                last.push(' ');
                last.push_str(&part);
            }
            _ => out.push(part),
        }
    }
    if out.len() > 1 && words(&out[0]) < MIN_WORDS {
        let first = out.remove(0);
        out[0] = format!("{first} {}", out[0]);
    }
    out
}

fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

/// Splits one line at sentence ends, pushing the non-empty pieces.
fn split_line(line: &str, parts: &mut Vec<String>) {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i].1;
        let mut end = i + 1;
        if matches!(c, '.' | '!' | '?') {
            while end < chars.len() && is_closer(chars[end].1) {
                end += 1;
            }
        } else if c != ';' {
            i += 1;
            continue;
        }
        if end < chars.len() && chars[end].1.is_whitespace() {
            let cut = if c == ';' { chars[i].0 } else { chars[end].0 };
            push_trimmed(&line[start..cut], parts);
            start = chars[end].0;
        }
        i = end;
    }
    push_trimmed(&line[start..], parts);
}

/// Quotes and brackets that may close a sentence after its full stop.
fn is_closer(c: char) -> bool {
    matches!(c, '"' | '\'' | ')' | ']' | '\u{201d}' | '\u{2019}')
}

fn push_trimmed(s: &str, parts: &mut Vec<String>) {
    let s = s.trim();
    if !s.is_empty() {
        parts.push(s.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_stops_semicolons_and_line_breaks() {
        assert_eq!(
            split("I led the pitch for months. We lost it to a rival! Why did it go so wrong?"),
            [
                "I led the pitch for months.",
                "We lost it to a rival!",
                "Why did it go so wrong?"
            ]
        );
        assert_eq!(
            split("first line has words\nsecond line has words; third part has words"),
            [
                "first line has words",
                "second line has words",
                "third part has words"
            ]
        );
    }

    #[test]
    fn closing_quotes_stay_with_their_sentence() {
        assert_eq!(
            split("He said \"you are next in line.\" Then he hired someone else."),
            [
                "He said \"you are next in line.\"",
                "Then he hired someone else."
            ]
        );
        assert_eq!(
            split("She called it \u{201c}a business call.\u{201d} I believe her now."),
            [
                "She called it \u{201c}a business call.\u{201d}",
                "I believe her now."
            ]
        );
    }

    #[test]
    fn stops_inside_numbers_and_names_do_not_split() {
        assert_eq!(
            split("We bid 2.5 million on the tender for example.com and lost it."),
            ["We bid 2.5 million on the tender for example.com and lost it."]
        );
    }

    #[test]
    fn short_fragments_join_a_neighbour() {
        assert_eq!(
            split("Didn't happen. The manager picked Jessie instead of me. Anyway."),
            ["Didn't happen. The manager picked Jessie instead of me. Anyway."]
        );
        assert_eq!(split("Lost it."), ["Lost it."]);
    }

    #[test]
    fn blank_text_has_no_sentences() {
        assert!(split("  \n\t ").is_empty());
        assert!(split("").is_empty());
    }
}
