//! Splitting a story into sentences, so that the one sentence that carries a long story's
//! verdict ("…and then they gave it to the guy who started in March") is scored on its own
//! instead of being averaged away by the preamble around it.
//!
//! The rules are deliberately plain, since stories come from forums and chat as often as from
//! careful writers: a sentence ends at `.`, `!`, `?` or `…` (with any closing quotes, brackets
//! or Markdown emphasis after it) followed by a space, at a `;` followed by a space, at a
//! full-width `。`, `！`, `？` or `．`, before a bullet (`•`) that follows a space, and at a line
//! break (`\n`, `\r\n`, a lone `\r`, or an HTML `<br>`, `<p>` or `<li>`, whose character
//! references such as `&#39;` are read as what they stand for). A
//! stop after a title or a Latin abbreviation (`Mr.`, `Dr.`, `e.g.`, `vs.`) ends nothing, nor
//! does one closing an initialism (`a.m.`, `U.S.`) when a lower-case word or a number follows. A
//! line break inside a sentence, as text wrapped at a fixed width has (an email's 72
//! columns), ends nothing either (see [`unwrapped_lines`]). Fragments
//! shorter than [`MIN_WORDS`] words ("Didn't happen.", "Anyway."; a Chinese or Japanese
//! character counts as a word) carry too little to be scored
//! alone and are joined to the sentence before them (the first one to the sentence after it).

/// Sentences shorter than this many words are joined to a neighbour.
pub const MIN_WORDS: usize = 3;

/// Text whose longest line is shorter than this is not taken for text wrapped at a width: its
/// lines are a chat's, each its own sentence.
pub const WRAPPED_LINE: usize = 40;

/// Words whose full stop ends no sentence: titles and Latin abbreviations, in lower case.
const ABBREVIATIONS: [&str; 13] = [
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "e.g", "i.e", "cf", "approx",
];

/// A piece of a line, and the `;` or bullet cut from its end, which it gets back when a
/// fragment is joined to it: a joined sentence is then the story's own words, as `--explain`
/// quotes it ("…to the new hire; again.", not "…to the new hire again.").
type Piece = (String, Option<char>);

/// The sentences of `text`, trimmed, in order; none for blank text.
pub fn split(text: &str) -> Vec<String> {
    let mut parts: Vec<Piece> = Vec::new();
    for line in unwrapped_lines(&without_markup(text)) {
        split_line(&line, &mut parts);
    }
    let mut out: Vec<Piece> = Vec::with_capacity(parts.len());
    for (part, cut) in parts {
        match out.last_mut() {
            Some((last, last_cut)) if words(&part) < MIN_WORDS => {
                join(last, *last_cut, &part);
                *last_cut = cut;
            }
            _ => out.push((part, cut)),
        }
    }
    if out.len() > 1 && words(&out[0].0) < MIN_WORDS {
        let (mut first, cut) = out.remove(0);
        join(&mut first, cut, &out[0].0);
        out[0].0 = first;
    }
    out.into_iter().map(|(sentence, _)| sentence).collect()
}

/// Appends `next` to `sentence`, with the `;` or bullet that stood between them.
fn join(sentence: &mut String, cut: Option<char>, next: &str) {
    match cut {
        Some(';') => sentence.push_str("; "),
        Some(bullet) => {
            sentence.push(' ');
            sentence.push(bullet);
            sentence.push(' ');
        }
        None => sentence.push(' '),
    }
    sentence.push_str(next);
}

/// Words, where Chinese and Japanese, written without spaces, count each character as one:
/// a Chinese sentence is one run of characters, and was joined to its neighbour as one word.
fn words(s: &str) -> usize {
    let ideographs = |w: &str| w.chars().filter(|&c| is_ideograph_or_kana(c)).count();
    s.split_whitespace().map(|w| ideographs(w).max(1)).sum()
}

/// Han characters and kana; Korean is left out, since it puts spaces between its words.
fn is_ideograph_or_kana(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30FF}' | '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}'
        | '\u{F900}'..='\u{FAFF}' | '\u{20000}'..='\u{3134F}')
}

/// The lines of `text`, each line wrapped mid-sentence joined to the next. Text wrapped at a
/// width breaks a line where the next word would not fit: a line that ends without a stop,
/// and would pass the longest line of the text with the next line's first word added, was
/// wrapped there, when that longest line is [`WRAPPED_LINE`] characters or more. A chat's
/// short lines, a list's items (`- …`) and paragraphs (a blank line between) stay apart.
fn unwrapped_lines(text: &str) -> Vec<String> {
    // `\r\n` is one break, as is a lone `\r` (old Mac files).
    let lines: Vec<&str> = text
        .split('\n')
        .flat_map(|l| l.strip_suffix('\r').unwrap_or(l).split('\r'))
        .map(str::trim)
        .collect();
    let width = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let wrapped = |line: &str, next: &str| {
        let Some(word) = next.split_whitespace().next() else {
            return false;
        };
        width >= WRAPPED_LINE
            && next.starts_with(char::is_alphanumeric)
            && !line.ends_with(|c: char| is_stop(c) || is_closer(c) || matches!(c, ';' | ':'))
            && line.chars().count() + 1 + word.chars().count() > width
    };
    let mut out: Vec<String> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        match out.last_mut() {
            Some(last) if i > 0 && !lines[i - 1].is_empty() && wrapped(lines[i - 1], line) => {
                last.push(' ');
                last.push_str(line);
            }
            _ => out.push(line.to_string()),
        }
    }
    out
}

/// HTML elements that stand on lines of their own, so their tags break the text: a
/// paragraph's `</p><p>` glued two sentences into one.
const BLOCK_ELEMENTS: [&str; 25] = [
    "br",
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
    "table",
    "blockquote",
    "pre",
    "hr",
    "section",
    "article",
    "td",
    "th",
    "thead",
    "tbody",
    "html",
    "body",
];

/// Elements that sit within a line (and the tags of chat exports: Teams' `<at>` mention,
/// `<emoji>` and `<systemEventMessage/>`): their tags go, their words stay.
const INLINE_ELEMENTS: [&str; 22] = [
    "span",
    "strong",
    "b",
    "i",
    "em",
    "u",
    "a",
    "font",
    "code",
    "small",
    "sub",
    "sup",
    "s",
    "strike",
    "del",
    "ins",
    "mark",
    "label",
    "img",
    "at",
    "emoji",
    "systemeventmessage",
];

/// Named HTML character references a web form's or chat tool's export may keep, and what
/// they stand for; numeric ones (`&#8217;`, `&#x27;`) are read by their number.
const ENTITIES: [(&str, &str); 14] = [
    ("&amp;", "&"),
    ("&quot;", "\""),
    ("&apos;", "'"),
    ("&lt;", "<"),
    ("&gt;", ">"),
    ("&nbsp;", " "),
    ("&rsquo;", "\u{2019}"),
    ("&lsquo;", "\u{2018}"),
    ("&rdquo;", "\u{201D}"),
    ("&ldquo;", "\u{201C}"),
    ("&mdash;", "\u{2014}"),
    ("&ndash;", "\u{2013}"),
    ("&hellip;", "\u{2026}"),
    ("&eacute;", "\u{E9}"),
];

/// `text` with HTML tags of [`BLOCK_ELEMENTS`] as line breaks, those of [`INLINE_ELEMENTS`]
/// left out, and character references as what they stand for: a message exported with its
/// markup (`<div style=…><span>…`) read as words of no story, and `didn&#x27;t` as four
/// words. A `<` that opens no such tag (`<@U01>`, `a < b`) is text.
fn without_markup(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['<', '&']) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(['<', '&']) {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        // A comment (`<!-- … -->`, as Outlook leaves them) is no text.
        let comment = rest.strip_prefix("<!--").and_then(|c| {
            let near = &c.as_bytes()[..c.len().min(4096)];
            near.windows(3).position(|w| w == b"-->")
        });
        if let Some(end) = comment {
            rest = &rest[4 + end + 3..];
            continue;
        }
        let (stands, taken) = match rest.as_bytes()[0] {
            b'<' => tag(rest).map(|(block, len)| (if block { "\n" } else { "" }.to_string(), len)),
            _ => character_reference(rest),
        }
        .unwrap_or_else(|| (rest[..1].to_string(), 1));
        out.push_str(&stands);
        rest = &rest[taken..];
    }
    out.push_str(rest);
    out.into()
}

/// The HTML tag `rest` opens with, if it is one of a known element: whether it breaks the
/// line, and its length up to its `>`.
fn tag(rest: &str) -> Option<(bool, usize)> {
    let inner = rest[1..].strip_prefix('/').unwrap_or(&rest[1..]);
    let name_len = inner
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(inner.len());
    let after = inner[name_len..].chars().next()?;
    if !(after == '>' || after == '/' || after.is_ascii_whitespace()) {
        return None;
    }
    let name = inner[..name_len].to_ascii_lowercase();
    let block = BLOCK_ELEMENTS.contains(&name.as_str());
    if !block && !INLINE_ELEMENTS.contains(&name.as_str()) {
        return None;
    }
    // A tag ends at its `>`, before any other `<` and within a line's reach, and what it
    // holds past its name is attributes (`class="x"`) or nothing: `<a year, and then >6`
    // is words.
    let end = rest[1..].find(['>', '<', '\n'])? + 1;
    // `inner` ends where `rest` does, so this is where the name ends in `rest`.
    let name_end = rest.len() - inner.len() + name_len;
    let attributes = rest[name_end..end].trim();
    let attributes = attributes.strip_suffix('/').unwrap_or(attributes).trim();
    let plain = attributes.is_empty() || attributes.contains('=');
    (rest.as_bytes()[end] == b'>' && end < 2048 && plain).then_some((block, end + 1))
}

/// The character reference `rest` opens with (`&amp;`, `&#8217;`, `&#x2019;`): what it stands
/// for and its length.
fn character_reference(rest: &str) -> Option<(String, usize)> {
    if let Some((name, stands)) = ENTITIES.iter().find(|(e, _)| rest.starts_with(e)) {
        return Some((stands.to_string(), name.len()));
    }
    let body = rest.strip_prefix("&#")?;
    // Within the longest number a reference holds: a text of `&#1` and no `;` was searched
    // to its end at each `&`.
    let end = body
        .bytes()
        .take(9)
        .position(|b| b == b';')
        .filter(|&e| e > 0)?;
    let code = match body.strip_prefix(['x', 'X']) {
        Some(hex) => u32::from_str_radix(&hex[..end - 1], 16).ok()?,
        None => body[..end].parse().ok()?,
    };
    let c = char::from_u32(code).filter(|c| !c.is_control() || c.is_whitespace())?;
    Some((c.to_string(), end + 3))
}

/// Characters that end a sentence when a space follows.
fn is_stop(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '\u{2026}') || is_full_width_stop(c)
}

/// Full-width stops, as CJK text writes them, end a sentence with no space after.
fn is_full_width_stop(c: char) -> bool {
    matches!(c, '\u{3002}' | '\u{FF01}' | '\u{FF1F}' | '\u{FF0E}')
}

/// A space after a stop: whitespace, or an invisible mark a web page may put there.
fn is_space(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{200B}' | '\u{2060}' | '\u{FEFF}')
}

/// Whether the full stop at `at` in `chars` follows a word of [`ABBREVIATIONS`], or closes
/// an initialism (`a.m.`, `U.S.`) that the next word, in lower case or a number, goes on
/// from: "a 7 a.m. alarm" is one sentence, and "I moved to the U.S. Then …" two.
fn after_abbreviation(chars: &[(usize, char)], at: usize) -> bool {
    let start = chars[..at]
        .iter()
        .rposition(|&(_, c)| !(c.is_alphabetic() || c == '.'))
        .map_or(0, |p| p + 1);
    let word: String = chars[start..at].iter().map(|&(_, c)| c).collect();
    if ABBREVIATIONS.contains(&word.to_lowercase().as_str()) {
        return true;
    }
    let letters: Vec<&str> = word.split('.').collect();
    let initialism = letters.len() >= 2 && letters.iter().all(|l| l.chars().count() == 1);
    let next = chars[at + 1..]
        .iter()
        .map(|&(_, c)| c)
        .find(|&c| !is_space(c) && !is_closer(c));
    initialism && next.is_some_and(|c| c.is_lowercase() || c.is_ascii_digit())
}

/// Splits one line at sentence ends, pushing the non-empty pieces.
fn split_line(line: &str, parts: &mut Vec<Piece>) {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i].1;
        // A bullet after a space starts an item of a list written on one line.
        if is_bullet(c) && (i == 0 || is_space(chars[i - 1].1)) {
            push_trimmed(&line[start..chars[i].0], Some(c), parts);
            start = chars[i].0 + c.len_utf8();
            i += 1;
            continue;
        }
        let mut end = i + 1;
        if is_stop(c) {
            while end < chars.len() && is_closer(chars[end].1) {
                end += 1;
            }
        } else if c != ';' {
            i += 1;
            continue;
        }
        let spaced = end < chars.len() && is_space(chars[end].1);
        let ends = match c {
            '.' => spaced && !after_abbreviation(&chars, i),
            _ if is_full_width_stop(c) => end < chars.len(),
            _ => spaced,
        };
        if ends {
            let cut = if c == ';' { chars[i].0 } else { chars[end].0 };
            push_trimmed(&line[start..cut], (c == ';').then_some(c), parts);
            start = chars[end].0;
        }
        i = end;
    }
    push_trimmed(&line[start..], None, parts);
}

/// Bullets that start a list's items.
fn is_bullet(c: char) -> bool {
    matches!(
        c,
        '\u{2022}' | '\u{2023}' | '\u{25E6}' | '\u{25AA}' | '\u{2043}'
    )
}

/// Quotes, brackets and Markdown emphasis that may close a sentence after its full stop.
fn is_closer(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | ')' | ']' | '\u{201d}' | '\u{2019}' | '\u{bb}' | '*' | '_'
    )
}

fn push_trimmed(s: &str, cut: Option<char>, parts: &mut Vec<Piece>) {
    let s = s.trim_matches(is_space);
    if !s.is_empty() {
        parts.push((s.to_string(), cut));
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
    fn an_initialism_the_sentence_goes_on_from_ends_nothing() {
        assert_eq!(
            split("I set a 7 a.m. alarm every day. Then the U.S. office took the project."),
            [
                "I set a 7 a.m. alarm every day.",
                "Then the U.S. office took the project."
            ]
        );
        // A capital after it may start a sentence, and does here.
        assert_eq!(
            split("Last year I moved to the U.S. Then my visa ran out before the promotion."),
            [
                "Last year I moved to the U.S.",
                "Then my visa ran out before the promotion."
            ]
        );
        // A number after it goes on from it too.
        assert_eq!(
            split("We finished at 5 p.m. 2 hours later they rang."),
            ["We finished at 5 p.m. 2 hours later they rang."]
        );
    }

    #[test]
    fn short_fragments_join_a_neighbour() {
        assert_eq!(
            split("Didn't happen. The manager picked Jessie instead of me. Anyway."),
            ["Didn't happen. The manager picked Jessie instead of me. Anyway."]
        );
        assert_eq!(split("Lost it."), ["Lost it."]);
        // A fragment cut off at `;` or a bullet is joined with it, so the sentence is the
        // story's own words.
        let hire = "They gave the Henderson account to the new hire";
        assert_eq!(
            split(&format!("{hire}; again.")),
            [format!("{hire}; again.")]
        );
        assert_eq!(
            split(&format!("Again; {hire}.")),
            [format!("Again; {hire}.")]
        );
        assert_eq!(
            split(&format!("{hire} \u{2022} again \u{2022} sad")),
            [format!("{hire} \u{2022} again \u{2022} sad")]
        );
        assert_eq!(
            split(&format!("{hire}; we all knew it would happen.")),
            [hire.to_string(), "we all knew it would happen.".into()]
        );
    }

    /// Chinese and Japanese put no spaces between words: a sentence of them is many words,
    /// kept apart at its full-width stop, while a fragment of two characters is still joined.
    #[test]
    fn sentences_without_spaces_count_their_characters() {
        assert_eq!(
            split("我的创业公司失败了，我们没有钱了。投资人撤资，团队解散。"),
            [
                "我的创业公司失败了，我们没有钱了。",
                "投资人撤资，团队解散。"
            ]
        );
        assert_eq!(
            split("昇進を逃しました。新人が選ばれた。"),
            ["昇進を逃しました。", "新人が選ばれた。"]
        );
        assert_eq!(
            split("They gave it away. 残念。"),
            ["They gave it away. 残念。"]
        );
    }

    /// Text wrapped at a fixed width (an email's 72 columns) is read as the sentences it
    /// holds, whatever its line ends; a chat's short lines stay apart however they start.
    #[test]
    fn lines_wrapped_mid_sentence_are_joined() {
        let one = "My manager took the regional lead role I had been promised and gave it \
                   to a colleague who joined in March. I found out from the newsletter.";
        let wrapped = "My manager took the regional lead role I had been promised and gave it\n\
                       to a colleague who joined in March. I found out from the newsletter.";
        for ends in ["\n", "\r\n", "\r"] {
            assert_eq!(split(&wrapped.replace('\n', ends)), split(one), "{ends:?}");
        }
        assert_eq!(split(one).len(), 2);
        // A wrapped line may go on with a capital: the break falls where the word did not fit.
        let capital = "At the review in March my manager told me that the new team lead\n\
                       I had trained would take over the account from me next quarter.";
        assert_eq!(split(capital).len(), 1);
        // Not across a paragraph, nor onto a line that starts a name or a list.
        let apart = "My manager took the regional lead role I had been promised\n\n\
                     and I heard nothing more about it for weeks\n\
                     Jessie from the Leeds office got it in the end";
        assert_eq!(split(apart).len(), 3);
        assert_eq!(
            split("got passed over again\nthey picked the new guy"),
            ["got passed over again", "they picked the new guy"]
        );
    }

    /// An ellipsis, a stop inside Markdown emphasis, a full-width stop and a stop followed by
    /// an invisible space each end a sentence; a title's or an abbreviation's stop does not.
    #[test]
    fn other_stops_end_sentences_and_abbreviations_do_not() {
        let two = [
            "I waited for the answer for weeks\u{2026}",
            "They hired someone else.",
        ];
        assert_eq!(
            split("I waited for the answer for weeks\u{2026} They hired someone else."),
            two
        );
        assert_eq!(
            split("I led the **whole pitch.** We lost it to a rival agency."),
            [
                "I led the **whole pitch.**",
                "We lost it to a rival agency."
            ]
        );
        assert_eq!(
            split("I led the whole pitch.\u{200B}We lost it to a rival agency."),
            ["I led the whole pitch.", "We lost it to a rival agency."]
        );
        assert_eq!(
            split("I led the whole pitch\u{3002}We lost it to a rival agency\u{3002}"),
            [
                "I led the whole pitch\u{3002}",
                "We lost it to a rival agency\u{3002}"
            ]
        );
        assert_eq!(
            split("My manager Mr. Jones gave the lead role, e.g. the one I wanted, to Dr. Patel."),
            ["My manager Mr. Jones gave the lead role, e.g. the one I wanted, to Dr. Patel."]
        );
    }

    /// A web form's HTML is read as the text it shows: `<p>`, `<br>` and `<li>` break lines,
    /// and character references are what they stand for. A list on one line is its items.
    #[test]
    fn html_and_bullets_are_read_as_the_text_they_show() {
        let plain = [
            "My manager didn't tell me & I heard it from HR.",
            "They gave the project to the new hire.",
        ];
        assert_eq!(
            split(
                "<p>My manager didn&#x27;t tell me &amp; I heard it from HR.</p><P>They gave \
                   the project to the new hire.</p>"
            ),
            plain
        );
        assert_eq!(
            split(
                "My manager didn't tell me & I heard it from HR.<br />They gave the project \
                   to the new hire."
            ),
            plain
        );
        assert_eq!(
            split(
                "Worked every weekend for the launch \u{2022} Trained the two new hires \
                   \u{2022} Lost the lead role to one of them"
            ),
            [
                "Worked every weekend for the launch",
                "Trained the two new hires",
                "Lost the lead role to one of them"
            ]
        );
        // Text that only looks like markup stays as written.
        assert_eq!(
            split("We bid <50k & lost to R&D Ltd."),
            ["We bid <50k & lost to R&D Ltd."]
        );
        assert_eq!(
            split("If a < b and <@U01> says so, <b is not a tag."),
            ["If a < b and <@U01> says so, <b is not a tag."]
        );
        // Nor is `<` before a word and `>` later: words, not attributes, lie between.
        let text = "The new hire had been here <a year, and I had >6 years on it.";
        assert_eq!(split(text), [text]);
        assert_eq!(
            split("if (a<b && c>d) we lose."),
            ["if (a<b && c>d) we lose."]
        );
    }

    /// A chat or mail export's markup (Teams keeps `<div>`, `<span style=…>` and `<at>`;
    /// Outlook `&rsquo;`) is read as the text it shows, as a web form's is: it had left a
    /// story reading like no prototype, and `</div>` in its evidence.
    #[test]
    fn a_chat_exports_markup_is_read_as_its_text() {
        let html = "<div class=\"msg\" style=\"font-size:14px\"><span>My manager didn&rsquo;t \
                    pick me</span> &mdash; <strong>again</strong>.</div><div>She gave the lead \
                    role to <at id=\"0\">Sam</at>, who joined in March&#8230;</div>\
                    <systemEventMessage/>";
        assert_eq!(
            split(html),
            [
                "My manager didn\u{2019}t pick me \u{2014} again.",
                "She gave the lead role to Sam, who joined in March\u{2026}"
            ]
        );
        assert_eq!(split("<div><span></span></div>"), Vec::<String>::new());
        // Table cells are cells, and an Outlook comment is no text.
        assert_eq!(
            split("<!-- [if mso] --><table><tr><th>Name</th><th>Role</th></tr></table>"),
            ["Name Role"]
        );
    }

    #[test]
    fn blank_text_has_no_sentences() {
        assert!(split("  \n\t ").is_empty());
        assert!(split("").is_empty());
    }
}
