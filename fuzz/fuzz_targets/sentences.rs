//! `sentences::split` on arbitrary text: it never panics (its markup, bullet and abbreviation
//! rules slice the text by hand), every piece is trimmed and non-empty, and no word is lost
//! or invented beyond what the markup rules turn into spaces and characters, and the
//! semicolons at which it splits.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let pieces = failup::sentences::split(text);
    for piece in &pieces {
        assert!(!piece.is_empty());
        assert_eq!(piece.trim(), piece, "{piece:?}");
    }
    // Without markup, bullets, invisible spaces or full-width stops (which end a sentence
    // with no space after, as CJK text writes them), the pieces hold the text's words in order,
    // but for the semicolons a split drops.
    let plain = !text.contains(['<', '&', '\u{2022}', '\u{2023}', '\u{25E6}', '\u{25AA}'])
        && !text.contains(['\u{2043}', '\u{200B}', '\u{2060}', '\u{FEFF}'])
        && !text.contains(['\u{3002}', '\u{FF01}', '\u{FF1F}', '\u{FF0E}']);
    if plain {
        let words = |t: &str| -> Vec<String> {
            t.split_whitespace()
                .map(|w| w.replace(';', ""))
                .filter(|w| !w.is_empty())
                .collect()
        };
        assert_eq!(words(&pieces.join(" ")), words(text));
    }
});
