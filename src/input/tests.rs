use std::io::{self, Read};

use crate::error::Result;
use crate::shard::Shard;

use super::{
    decode::reads_as_utf8,
    header::{missing_column, rejoin_split_names, tabs_by_name},
    is_blank, printable, sniff_delimiter, Columns, Dialect, InputEncoding, KeepColumns, RowIssue,
    Source, StoryReader, MAX_TEXT_BYTES, PRINTABLE_CHARS,
};

#[test]
fn blank_means_nothing_to_read() {
    for blank in [
        "",
        " \t\n",
        "\0",
        "\u{200B}\u{FEFF}",
        "\x01\x02\u{00A0}",
        "\u{00AD}",
    ] {
        assert!(is_blank(blank), "{blank:?}");
    }
    for text in ["Laid off.", "\u{200B}x", "\0 \u{1F62D}", "?"] {
        assert!(!is_blank(text), "{text:?}");
    }
}

fn reader(csv: &str, columns: &Columns) -> Result<StoryReader> {
    reader_bytes(csv.as_bytes().to_vec(), columns, Dialect::default())
}

fn reader_named(name: &str, bytes: &[u8], columns: &Columns) -> Result<StoryReader> {
    let bytes = Box::new(io::Cursor::new(bytes.to_vec()));
    StoryReader::from_reader(bytes, name.into(), None, columns, Dialect::default())
}

fn reader_bytes(bytes: Vec<u8>, columns: &Columns, dialect: Dialect) -> Result<StoryReader> {
    StoryReader::from_reader(
        Box::new(io::Cursor::new(bytes)),
        "t.csv".into(),
        None,
        columns,
        dialect,
    )
}

/// The error `source`, named `name`, is refused with, read with the default columns.
fn refusal(source: Box<dyn Read + Send>, name: &str) -> String {
    StoryReader::from_reader(
        source,
        name.into(),
        None,
        &Columns::default(),
        Dialect::default(),
    )
    .err()
    .unwrap()
    .to_string()
}

#[test]
fn reads_rows_with_defaults() {
    let mut r = reader("id,text\na,hello\nb,\"two\nlines\"\n", &Columns::default()).unwrap();
    let stories = r.next_chunk(10).unwrap();
    assert_eq!(stories.len(), 2);
    assert_eq!(
        (stories[0].id.as_str(), stories[0].text.as_str()),
        ("a", "hello")
    );
    assert_eq!(stories[1].text, "two\nlines");
    assert_eq!((stories[1].row, stories[1].line), (2, 3));
    assert!(r.next_chunk(10).unwrap().is_empty());
}

#[test]
fn falls_back_to_story_column_and_row_numbers() {
    let mut r = reader("team,story\nx,one\ny,two\n", &Columns::default()).unwrap();
    let s = r.next_chunk(10).unwrap();
    assert_eq!((s[1].id.as_str(), s[1].text.as_str()), ("2", "two"));
}

#[test]
fn a_header_read_as_one_column_suggests_its_delimiter() {
    let headers = ["id,team,text".to_string()];
    let e = missing_column("f", 1, &headers, "text", "Choose one with --text-column").to_string();
    assert!(
        e.contains("looks separated by ',': give --delimiter ','"),
        "{e}"
    );
    let e = missing_column("f", 1, &["id\ttext".into()], "text", "x").to_string();
    assert!(e.contains("give --delimiter tab"), "{e}");
    let e = missing_column("f", 1, &["id".into(), "x".into()], "text", "x").to_string();
    assert!(!e.contains("--delimiter"), "{e}");
}

#[test]
fn missing_text_column_lists_columns_and_suggests() {
    let cols = Columns {
        text: Some("stroy".into()),
        ..Columns::default()
    };
    let e = reader("id,story\n1,x\n", &cols).err().unwrap().to_string();
    assert!(e.contains("no column named 'stroy'"), "{e}");
    assert!(
        e.contains("columns: id, story") && e.contains("did you mean 'story'"),
        "{e}"
    );
    // Half the letters of a short name is no slip: `year` is not told `team`.
    let headers = ["id".into(), "team".into(), "text".into()];
    let e = missing_column("f.csv", 1, &headers, "year", "").to_string();
    assert!(!e.contains("did you mean"), "{e}");
    let e = missing_column("f.csv", 1, &headers, "taem", "").to_string();
    assert!(e.contains("did you mean 'team'"), "{e}");
    // A name that holds the one wanted whole is suggested, unless that is a short one.
    let e = reader("id,Story_Text\n1,x\n", &Columns::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("did you mean 'Story_Text'"), "{e}");
    let headers = ["paid".into(), "text".into()];
    let e = missing_column("f.csv", 1, &headers, "id", "").to_string();
    assert!(!e.contains("did you mean"), "{e}");
    // A name with a line break is suggested as it is typed, and so it is found.
    let e = reader(
        "id,\"my\nstory\"\n1,x\n",
        &Columns {
            text: Some("mystory".into()),
            ..Columns::default()
        },
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("did you mean 'my story'?"), "{e}");
    let typed = Columns {
        text: Some("my story".into()),
        ..Columns::default()
    };
    assert!(reader("id,\"my\nstory\"\n1,x\n", &typed).is_ok());
    let e = missing_column("f.csv", 1, &["id".into(), "text".into()], "", "").to_string();
    assert!(e.starts_with("an empty column name was given"), "{e}");
    assert!(e.contains("the columns are: id, text"), "{e}");
}

#[test]
fn ragged_and_non_utf8_rows_are_kept_and_flagged() {
    let mut bytes = b"id,text\n1,fine\n2,too,many\n3,caf".to_vec();
    bytes.extend_from_slice(&[0xE9, b'\n']);
    let mut r = reader_bytes(bytes, &Columns::default(), Dialect::default()).unwrap();
    let s = r.next_chunk(10).unwrap();
    assert_eq!(s.len(), 3);
    assert!(s[0].issues.is_empty());
    assert_eq!(s[1].issues, [RowIssue::Malformed]);
    assert_eq!(s[1].fields, 3);
    assert_eq!(s[2].issues, [RowIssue::InvalidUtf8 { column: 1 }]);
    assert_eq!(s[2].text, "caf\u{FFFD}");
    // The first column read that holds such bytes is named, whichever was read first.
    let bytes = b"id,text,team\n1,caf\xE9,sa\xFCles\n2,fine,\xFC\n".to_vec();
    let columns = Columns {
        keep: KeepColumns::All,
        ..Columns::default()
    };
    let mut r = reader_bytes(bytes, &columns, Dialect::default()).unwrap();
    let s = r.next_chunk(10).unwrap();
    let headers = r.headers();
    assert_eq!(
        s[0].invalid_utf8_place(headers).unwrap(),
        "in column 'text'"
    );
    assert_eq!(
        s[1].invalid_utf8_place(headers).unwrap(),
        "in column 'team'"
    );
    // A NUL is no more text than an invalid byte (UTF-16 or binary data pasted into the
    // file): shown as U+FFFD and flagged, in the id and kept columns as in the story.
    let bytes = b"id,text,team\n1\0,passed\0 over,a\n2,fine,b\0\n".to_vec();
    let mut r = reader_bytes(bytes, &columns, Dialect::default()).unwrap();
    let s = r.next_chunk(10).unwrap();
    assert_eq!(
        (s[0].id.as_str(), s[0].text.as_str()),
        ("1\u{FFFD}", "passed\u{FFFD} over")
    );
    assert_eq!(s[0].issues, [RowIssue::InvalidUtf8 { column: 0 }]);
    assert_eq!(s[1].kept.last().unwrap(), "b\u{FFFD}");
    assert_eq!(s[1].issues, [RowIssue::InvalidUtf8 { column: 2 }]);
}

#[test]
fn text_after_a_closing_quote_flags_its_row_with_the_quote_s_place() {
    // Row 1 reopens a quote on line 4, so rows 2 and 3 vanish into it; row 2 of the second
    // file glues "cd" to "ab". Doubled quotes, and quotes inside unquoted cells, are fine.
    let bytes = b"id,text\n1,\"oops\n2,plain\n3,\"more\n4,fine\n".to_vec();
    let mut r = reader_bytes(bytes, &Columns::default(), Dialect::default()).unwrap();
    let s = r.next_chunk(10).unwrap();
    assert_eq!(s.len(), 2);
    let stray = RowIssue::StrayQuote { line: 4, column: 3 };
    assert_eq!((s[0].issues.as_slice(), s[0].line), ([stray].as_slice(), 2));
    assert_eq!(s[0].text, "oops\n2,plain\n3,more");
    assert!(s[0].is_malformed() && s[1].issues.is_empty());
    let quote = s[0].cell_problem().unwrap();
    assert!(
        quote.starts_with("the quote at line 4, column 3 closes"),
        "{quote}"
    );

    let bytes = "id,text\r\n1,\"a \"\"b\"\"\"\r\n\"9\"x,\"ab\"cd\r\n3,5'11\" tall\r\n4,\"é\" x\r\n"
        .as_bytes()
        .to_vec();
    let mut r = reader_bytes(bytes, &Columns::default(), Dialect::default()).unwrap();
    let s = r.next_chunk(10).unwrap();
    let issues: Vec<&[RowIssue]> = s.iter().map(|s| s.issues.as_slice()).collect();
    assert_eq!(
        issues,
        [
            &[][..],
            &[RowIssue::StrayQuote { line: 3, column: 3 }],
            &[],
            &[RowIssue::StrayQuote { line: 5, column: 5 }],
        ]
    );
    assert_eq!((s[1].id.as_str(), s[1].text.as_str()), ("9x", "abcd"));
}

/// Spaces after a closing quote are trimmed away, so they leave the row as it was meant.
#[test]
fn spaces_after_a_closing_quote_are_not_stray_text() {
    let csv = "\"id\" ,\"text\"\t\n1 , \"a story\"  \n2,\"b\"  \"c\"\n";
    let mut r = reader(csv, &Columns::default()).unwrap();
    let s = r.next_chunk(10).unwrap();
    assert_eq!(s[0].id, "1 ");
    assert!(s[0].issues.is_empty(), "{:?}", s[0].issues);
    assert_eq!(s[1].issues, [RowIssue::StrayQuote { line: 3, column: 5 }]);
}

/// A header whose quotes went wrong would name its columns wrongly (`"id"x` is `idx`, and
/// every id a row number) or swallow the file: it is refused, naming the quote.
#[test]
fn a_header_with_broken_quotes_is_refused() {
    let err = |csv: &str| reader(csv, &Columns::default()).err().unwrap().to_string();
    let stray = err("\"id\"x,text\n1,a story\n");
    assert!(
        stray.contains("t.csv:1") && stray.contains("quote at line 1, column 4"),
        "{stray}"
    );
    let unclosed = err("\n\"id,text\n1,a story\n");
    assert!(
        unclosed.contains("t.csv:2") && unclosed.contains("never closes"),
        "{unclosed}"
    );
    // The same behind a UTF-8 byte-order mark, which the parser drops, at the same columns.
    let stray = err("\u{FEFF}\"id\"x,text\n1,a story\n");
    assert!(
        stray.contains("t.csv:1") && stray.contains("quote at line 1, column 4"),
        "{stray}"
    );
    let unclosed = err("\u{FEFF}\"id,text\n4,a story\n");
    assert!(
        unclosed.contains("t.csv:1") && unclosed.contains("never closes"),
        "{unclosed}"
    );
    // A later row's open quote, read ahead with the header, is that row's own problem.
    let mut r = reader("id,text\n1,\"a story\n", &Columns::default()).unwrap();
    assert_eq!(
        r.next_chunk(10).unwrap()[0].issues,
        [RowIssue::UnclosedQuote { last_line: 2 }]
    );
}

/// A quote that never closes is told with the lines it took in, so the rows lost into it
/// are counted, whatever the line ends; one on the last line took none.
#[test]
fn an_unclosed_quote_says_which_lines_it_took_in() {
    let said = |csv: &str| {
        let mut r = reader(csv, &Columns::default()).unwrap();
        let chunk = r.next_chunk(10).unwrap();
        chunk.last().unwrap().unclosed_quote().unwrap()
    };
    let lf = said("id,text\n1,a\n2,\"open\n3,b\n\n4,c\n");
    assert!(
        lf.contains("so lines 4\u{2013}6 (3 lines, to the end of the file)"),
        "{lf}"
    );
    let crlf = said("id,text\r\n1,\"open\r\n2,b\r\n3,c");
    assert!(crlf.contains("so lines 3\u{2013}4 (2 lines,"), "{crlf}");
    let last = said("id,text\n1,a\n2,\"open\n");
    assert!(
        last.contains("never closes before the file ends;"),
        "{last}"
    );
}

/// A binary file whose first line holds no NUL is told as one by its control characters;
/// a header cell with a line break or a tab in it (spreadsheets allow both) is not.
#[test]
fn control_characters_in_the_header_tell_a_binary_file() {
    let bytes = b"\x08\x08\x12\x07pytorch\x1a\x052.4.0:\xe5\n\x01\x02".to_vec();
    let e = reader_bytes(bytes, &Columns::default(), Dialect::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("t.csv:1") && e.contains("as a binary file does"),
        "{e}"
    );
    let csv = "id,\"Story\n(free text)\",\"team\tname\"\n1,a story,x\n";
    let columns = Columns {
        text: Some("Story\n(free text)".into()),
        ..Columns::default()
    };
    let mut r = reader(csv, &columns).unwrap();
    assert_eq!(r.next_chunk(10).unwrap()[0].text, "a story");
}

/// The label column is found in another case, as the text and id columns are; two
/// look-alikes are refused, not chosen between.
#[test]
fn the_label_column_is_found_in_another_case() {
    let columns = Columns {
        label: Some("label".into()),
        ..Columns::default()
    };
    let mut r = reader("ID,Label,Text\n1,other,a story\n", &columns).unwrap();
    assert_eq!(r.next_chunk(10).unwrap()[0].label.as_deref(), Some("other"));
    let e = reader("id,Label,LABEL,text\n1,a,b,c\n", &columns)
        .err()
        .unwrap();
    assert!(e.to_string().contains("--label-column"), "{e}");
    let e = reader("id,gold,text\n1,a,c\n", &columns).err().unwrap();
    assert!(e.to_string().contains("no column named 'label'"), "{e}");
}

/// `--label-column text` names the column the stories are read from by default: it is
/// refused, as `--text-column label` is, where each row's story was taken for its label.
#[test]
fn the_label_column_cannot_be_the_story_column() {
    let columns = Columns {
        label: Some("Text".into()),
        ..Columns::default()
    };
    let e = reader("id,label,text\n1,other,a story\n", &columns)
        .err()
        .unwrap();
    assert!(
        e.to_string()
            .contains("the label column and the story text are both column 'text'"),
        "{e}"
    );
    let columns = Columns {
        text: Some("label".into()),
        ..columns
    };
    assert!(reader("id,label,text\n1,a story,other\n", &columns).is_ok());
}

/// Invisible marks around a header name (a second byte-order mark, a zero-width space)
/// and a byte-order mark opening a data line are not part of the names and ids.
#[test]
fn invisible_marks_around_names_and_ids_are_dropped() {
    for mark in ["\u{FEFF}", "\u{200B}", "\u{2060}"] {
        let csv = format!("\u{FEFF}{mark}id,text{mark}\nA7,a story\n{mark}B9,another\n");
        let mut r = reader(&csv, &Columns::default()).unwrap();
        assert_eq!(r.id_column(), Some("id"), "{mark:?}");
        let s = r.next_chunk(10).unwrap();
        assert_eq!(s[0].id, "A7");
        assert_eq!(
            (s[0].text.as_str(), s[1].text.as_str()),
            ("a story", "another")
        );
        let second = if mark == "\u{FEFF}" {
            "B9".to_string()
        } else {
            format!("{mark}B9")
        };
        assert_eq!(s[1].id, second, "{mark:?}");
    }
}

#[test]
fn a_quote_that_never_closes_flags_the_row_that_ran_to_the_end() {
    let bytes = b"id;text\n1;\"a; \"\"b\"\"\"\n2;5'11\" tall\n3;\"never closed\n4;lost\n".to_vec();
    let dialect = Dialect {
        delimiter: Some(b';'),
        ..Dialect::default()
    };
    let mut r = reader_bytes(bytes, &Columns::default(), dialect).unwrap();
    let s = r.next_chunk(10).unwrap();
    assert_eq!(s.len(), 3);
    assert!(s[0].issues.is_empty() && s[1].issues.is_empty());
    assert_eq!(s[0].text, "a; \"b\"");
    assert_eq!(s[2].issues, [RowIssue::UnclosedQuote { last_line: 5 }]);
    assert_eq!(s[2].text, "never closed\n4;lost\n");
    let said = s[2].unclosed_quote().unwrap();
    assert!(
        said.contains("never closes, so line 5, the last, was read into this row"),
        "{said}"
    );

    // Closed on the last byte, with no final line break: nothing to flag.
    let bytes = b"id;text\n1;\"two\nlines\"".to_vec();
    let mut r = reader_bytes(bytes, &Columns::default(), dialect).unwrap();
    assert!(r.next_chunk(10).unwrap()[0].issues.is_empty());
}

/// A header met again, spaced, quoted or behind a byte-order mark, is flagged and has no
/// text to read; a row that only shares some of its cells is a story.
#[test]
fn a_repeated_header_is_flagged() {
    let csv = "id,text\n1,story\n\u{FEFF}\"id\", text \nid,texts\ntext,id\nID,Text\n";
    let mut r = reader(csv, &Columns::default()).unwrap();
    let s = r.next_chunk(10).unwrap();
    let flagged: Vec<bool> = s
        .iter()
        .map(|s| s.issues == [RowIssue::RepeatedHeader])
        .collect();
    assert_eq!(flagged, [false, true, false, false, true]);
    assert!(s[1].is_malformed());
    assert_eq!((s[1].text.as_str(), s[1].text_to_read()), (" text ", ""));
    assert_eq!(s[2].text_to_read(), "texts");
    assert!(s[1]
        .cell_problem()
        .unwrap()
        .starts_with("repeats the header row"));
}

/// The extra header rows of a survey export (Qualtrics: the questions' words under their
/// ids, then import ids; SurveyMonkey: the answers' types) are flagged, as a repeated header
/// is; the same cells further down, or a first row that names a column or two, are stories.
#[test]
fn a_survey_exports_extra_header_rows_are_flagged() {
    let columns = |text: &str| Columns {
        text: Some(text.into()),
        ..Columns::default()
    };
    let qualtrics = "StartDate,EndDate,Progress,ResponseId,Q2\n\
        Start Date,End Date,Progress,Response ID,Please describe a time you were passed over.\n\
        \"{\"\"ImportId\"\":\"\"startDate\"\"}\",x,y,z,\"{\"\"ImportId\"\":\"\"QID2_TEXT\"\"}\"\n\
        2024-03-01,2024-03-01,100,R_1,They gave my project to the new hire.\n\
        Start Date,End Date,Progress,Response ID,A later row that names the columns.\n";
    let mut r = reader(qualtrics, &columns("Q2")).unwrap();
    let s = r.next_chunk(10).unwrap();
    let flagged: Vec<bool> = s
        .iter()
        .map(|s| s.issues == [RowIssue::SurveyHeader])
        .collect();
    assert_eq!(flagged, [true, true, false, false]);
    assert_eq!(s[0].text_to_read(), "");
    assert!(s[0].is_malformed());
    assert!(s[1]
        .cell_problem()
        .unwrap()
        .starts_with("reads as a survey export's"));
    // A wide survey (its questions outnumber the metadata) and a trimmed export alike.
    let questions: Vec<String> = (1..=20).map(|i| format!("Q{i}")).collect();
    let wide = format!(
        "StartDate,EndDate,{}\nStart Date,End Date,{}\n",
        questions.join(","),
        questions
            .iter()
            .map(|q| format!("What of {q}?"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut r = reader(&wide, &columns("Q20")).unwrap();
    assert_eq!(
        r.next_chunk(10).unwrap()[0].issues,
        [RowIssue::SurveyHeader]
    );
    let monkey = "Respondent ID,Department,Story\n,Response,Open-Ended Response\n\
                  1,Sales,They gave my project to the new hire.\n";
    let mut r = reader(monkey, &columns("Story")).unwrap();
    let s = r.next_chunk(10).unwrap();
    assert_eq!(s[0].issues, [RowIssue::SurveyHeader]);
    assert!(s[1].issues.is_empty());
    // A story whose row happens to repeat a column name or two is a story.
    let csv = "id,team,progress,text\n1,Team,Progress,We lost the pitch.\n";
    let mut r = reader(csv, &Columns::default()).unwrap();
    assert!(r.next_chunk(10).unwrap()[0].issues.is_empty());
    // So is a first answer that ticks boxes holding their options' names, and a column of
    // answer types beside the stories.
    let ticked = "id,Layoff,Demotion,Passed over,text\n\
                  1,Layoff,Demotion,Passed over,I was laid off and then demoted.\n";
    let mut r = reader(ticked, &Columns::default()).unwrap();
    assert!(r.next_chunk(10).unwrap()[0].issues.is_empty());
    let typed = "id,kind,text\n1,Open-Ended Response,They gave my role away.\n";
    let mut r = reader(typed, &Columns::default()).unwrap();
    assert!(r.next_chunk(10).unwrap()[0].issues.is_empty());
}

/// `--resume` skips the rows already written: what follows has its own line numbers and
/// quote problems, not a skipped row's, and the skipped rows' line breaks are not held.
#[test]
fn skipped_rows_leave_nothing_behind() {
    let mut csv = String::from("id,text\n1,\"ab\"cd\n");
    for i in 2..=5000 {
        csv.push_str(&format!("{i},\"story\n{i}\"\n"));
    }
    csv.push_str("last,plain\n");
    let mut r = reader(&csv, &Columns::default()).unwrap();
    assert_eq!(r.skip(5000).unwrap(), 5000);
    assert!(r.breaks.lock().unwrap().pending.len() < 10);
    let rest = r.next_chunk(10).unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!((rest[0].row, rest[0].line), (5001, 2 + 2 * 4999 + 1));
    assert!(rest[0].issues.is_empty(), "{:?}", rest[0].issues);
}

/// Random CSV-ish bytes (quotes, delimiters, line breaks of both kinds, a byte-order mark,
/// bytes that are not UTF-8), fed whole or a byte at a time: reading never panics, every
/// record the CSV parser sees becomes exactly one story, in order, and the last is flagged
/// for an open quote exactly when the parser read to the end of the input inside quotes.
#[test]
fn random_bytes_never_panic_and_every_record_is_a_story() {
    const PIECES: [&[u8]; 14] = [
        b"a",
        b"text",
        b" ",
        b",",
        b";",
        b"\t",
        b"\"",
        b"\"\"",
        b"\n",
        b"\r\n",
        b"\r",
        b"\xEF\xBB\xBF",
        b"\xFF",
        b"\xC3\xA9",
    ];
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for case in 0..3000 {
        let mut bytes = b"id,text\n".to_vec();
        for _ in 0..next() % 60 {
            bytes.extend_from_slice(PIECES[(next() % PIECES.len() as u64) as usize]);
        }
        let records = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(&bytes[..])
            .byte_records()
            .count();
        // The oracle for an open quote: a line added at the end is swallowed by it.
        let mut marked = bytes.clone();
        marked.extend_from_slice(b"\nMARK,x\n");
        let last_first_field = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(&marked[..])
            .byte_records()
            .last()
            .map(|r| r.unwrap().get(0).unwrap_or_default().to_vec());
        let ends_in_quotes = last_first_field.as_deref() != Some(b"MARK".as_slice());
        let trickle = case % 2 == 1;
        let source: Box<dyn Read + Send> = if trickle {
            Box::new(Trickle(io::Cursor::new(bytes.clone())))
        } else {
            Box::new(io::Cursor::new(bytes.clone()))
        };
        let dialect = Dialect {
            delimiter: Some(b','),
            ..Dialect::default()
        };
        let mut r =
            StoryReader::from_reader(source, "t.csv".into(), None, &Columns::default(), dialect)
                .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(&bytes)));
        let mut stories = Vec::new();
        loop {
            let chunk = r.next_chunk(7).unwrap();
            if chunk.is_empty() {
                break;
            }
            stories.extend(chunk);
        }
        let context = String::from_utf8_lossy(&bytes);
        assert_eq!(stories.len(), records, "{context:?}");
        for (i, story) in stories.iter().enumerate() {
            assert_eq!(story.row, i as u64 + 1, "{context:?}");
            let open = story.unclosed_quote().is_some();
            assert_eq!(
                open,
                ends_in_quotes && i + 1 == stories.len(),
                "{context:?}"
            );
        }
    }
}

/// Hands out one byte per read, as a slow pipe may.
fn gzipped(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    io::Write::write_all(&mut gz, bytes).unwrap();
    gz.finish().unwrap()
}

#[test]
fn gzip_input_reads_as_its_text_and_damage_is_named() {
    let csv = "id;text\n1;\"one; two\"\n2;three\n";
    let mut plain = reader(csv, &Columns::default()).unwrap();
    let mut packed = trickled(gzipped(csv.as_bytes()));
    let (a, b) = (
        plain.next_chunk(10).unwrap(),
        packed.next_chunk(10).unwrap(),
    );
    assert_eq!(b.len(), 2);
    assert_eq!(b[0].text, "one; two");
    assert_eq!(
        a.iter()
            .map(|s| (&s.id, &s.text, s.line))
            .collect::<Vec<_>>(),
        b.iter()
            .map(|s| (&s.id, &s.text, s.line))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        plain.digest(),
        packed.digest(),
        "resume sees the same records"
    );

    let long: String = (0..2000).map(|i| format!("{i};story {i}\n")).collect();
    let mut cut = gzipped(format!("id;text\n{long}").as_bytes());
    cut.truncate(cut.len() / 2);
    let mut r = reader_bytes(cut, &Columns::default(), Dialect::default()).unwrap();
    let e = r
        .next_chunk(5000)
        .expect_err("a cut gzip file fails")
        .to_string();
    assert!(
        e.contains("t.csv") && e.contains("gzip data is cut short"),
        "{e}"
    );

    // Compressed twice: named as that, not as a binary file's NUL bytes.
    let twice = gzipped(&gzipped(csv.as_bytes()));
    let e = reader_bytes(twice, &Columns::default(), Dialect::default())
        .err()
        .expect("a file compressed twice is refused")
        .to_string();
    assert!(
        e.contains("t.csv") && e.contains("gzip-compressed twice"),
        "{e}"
    );

    // Several members, then zero padding, as `gzip` reads them; other bytes are damage.
    let mut padded = gzipped(b"id;text\n1;a\n");
    padded.extend(gzipped(b"2;b\n"));
    padded.extend([0u8; 700]);
    let mut r = trickled(padded.clone());
    let texts: Vec<String> = r
        .next_chunk(10)
        .unwrap()
        .into_iter()
        .map(|s| s.text)
        .collect();
    assert_eq!(texts, ["a", "b"]);
    padded.extend(b"junk");
    let mut r = reader_bytes(padded, &Columns::default(), Dialect::default()).unwrap();
    let e = r
        .next_chunk(10)
        .expect_err("junk after the padding")
        .to_string();
    assert!(e.contains("neither gzip data nor zero padding"), "{e}");
}

#[test]
fn a_zip_archive_is_refused_with_what_to_do() {
    let e = reader("PK\x03\x04rest", &Columns::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("ZIP archive") && e.contains("CSV UTF-8"), "{e}");
    // A header that merely starts with PK is a header.
    let mut r = reader("PK,text\n1,x\n", &Columns::default()).unwrap();
    assert_eq!(r.next_chunk(10).unwrap()[0].text, "x");
}

#[test]
fn utf32_is_named_as_such_with_or_without_a_byte_order_mark() {
    let le: Vec<u8> = "id,text\n1,x\n"
        .bytes()
        .flat_map(|b| [b, 0, 0, 0])
        .collect();
    let be: Vec<u8> = "id,text\n1,x\n"
        .bytes()
        .flat_map(|b| [0, 0, 0, b])
        .collect();
    let bom_le = [&[0xFF, 0xFE, 0, 0][..], &le].concat();
    let bom_be = [&[0, 0, 0xFE, 0xFF][..], &be].concat();
    for (bytes, order, bom) in [
        (le, "UTF-32LE", false),
        (be, "UTF-32BE", false),
        (bom_le, "UTF-32LE", true),
        (bom_be, "UTF-32BE", true),
    ] {
        let latin1 = Dialect {
            delimiter: None,
            encoding: InputEncoding::Latin1,
        };
        // With a mark, told so whatever --encoding says.
        if bom {
            let e = reader_bytes(bytes.clone(), &Columns::default(), latin1)
                .err()
                .expect("UTF-32 is refused")
                .to_string();
            assert!(e.contains(&format!("byte-order mark of {order}")), "{e}");
        }
        let e = reader_bytes(bytes, &Columns::default(), Dialect::default())
            .err()
            .expect("UTF-32 is refused")
            .to_string();
        let told = match bom {
            true => format!("opens with the byte-order mark of {order}"),
            false => format!("looks like {order}"),
        };
        assert!(
            e.contains(&told) && e.contains(&format!("iconv -f {order} -t UTF-8")),
            "{e}"
        );
    }
}

#[test]
fn utf16_without_a_byte_order_mark_is_named_with_how_to_convert_it() {
    let utf16: String = "id,text\n1,x\n".chars().flat_map(|c| [c, '\0']).collect();
    let e = reader(&utf16, &Columns::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("looks like UTF-16LE") && e.contains("iconv -f UTF-16LE"),
        "{e}"
    );
    let utf16be: String = "id,text\n1,x\n".chars().flat_map(|c| ['\0', c]).collect();
    let e = reader(&utf16be, &Columns::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("iconv -f UTF-16BE"), "{e}");
    // Told from the file's first bytes: a quoted header cell starts with NUL in LE too.
    let quoted: String = "\"id\",\"text\"\n"
        .chars()
        .flat_map(|c| [c, '\0'])
        .collect();
    let e = reader(&quoted, &Columns::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("iconv -f UTF-16LE"), "{e}");
    // A header in another script has few NULs, on one side still.
    let cjk: Vec<u8> = "编号,故事,团队\n1,我被解雇了,销售\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let e = reader_bytes(cjk, &Columns::default(), Dialect::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("iconv -f UTF-16LE"), "{e}");
}

/// Found by fuzzing: the NULs were counted over all that the first reads brought, so a
/// file read whole and the same file trickling in were told apart.
#[test]
fn nul_bytes_are_judged_on_the_first_line_however_the_input_arrives() {
    let bytes = b"id,l\0id,team,text\na0,nort\0\0\0\0\0\0\0\x04ave the new".to_vec();
    let whole = reader_bytes(bytes.clone(), &Columns::default(), Dialect::default());
    let whole = whole.err().unwrap().to_string();
    assert!(
        whole.contains("a NUL byte"),
        "one NUL is a stray byte: {whole}"
    );
    let e = refusal(Box::new(Trickle(io::Cursor::new(bytes))), "t.csv");
    assert_eq!(e.replace("t.csv", "f"), whole.replace("t.csv", "f"));
}

#[test]
fn a_binary_file_is_not_taken_for_utf16() {
    let binary = "\u{7}\0\0\0id\0\0\u{1}\0\0,text\0\0\0\u{3}\n1,x\n";
    let e = reader(binary, &Columns::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("binary file") && !e.contains("UTF-16"), "{e}");
    // One NUL alone is a stray byte, not half of a UTF-16 code unit.
    let e = reader("id,te\0xt\n1,a\n", &Columns::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("holds a NUL byte") && !e.contains("UTF-16"),
        "{e}"
    );
}

/// NULs with no line break (/dev/zero, a sparse file) are refused from the first 64 KiB:
/// the header was parsed first, and a line with no end was read for ever.
#[test]
fn an_endless_line_of_nuls_is_refused_from_its_start() {
    let e = refusal(Box::new(io::repeat(0)), "zero");
    assert!(e.contains("zero:1: the header holds NUL bytes"), "{e}");
}

#[test]
fn other_compressed_formats_are_named_with_how_to_open_them() {
    let heads: [(&[u8], &str); 3] = [
        (b"BZh91AY&SY\x01\x02", "bzip2 -dc"),
        (b"\xFD7zXZ\x00\x00\x04", "xz -dc"),
        (b"\x28\xB5\x2F\xFD\x24\x00", "zstd -dc"),
    ];
    for (head, tool) in heads {
        let e = reader_bytes(head.to_vec(), &Columns::default(), Dialect::default())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(tool) && e.contains("compressed"), "{e}");
    }
    // A header that merely starts like one is a header.
    let mut r = reader("BZh9,text\n1,x\n", &Columns::default()).unwrap();
    assert_eq!(r.next_chunk(10).unwrap()[0].text, "x");
}

#[test]
fn an_excel_sep_line_sets_the_delimiter_and_lines_count_from_it() {
    for head in [
        "sep=;\n",
        "sep=;\r\n",
        "\u{FEFF}sep=;\n",
        "SEP=;\n",
        "\"sep=;\"\n",
    ] {
        let csv = format!("{head}id;text\n1;a, b\n2;\"c\nd\"\n3;e\n");
        let mut r = reader(&csv, &Columns::default()).unwrap();
        let s = r.next_chunk(10).unwrap();
        let got: Vec<_> = s.iter().map(|s| (s.text.as_str(), s.line)).collect();
        assert_eq!(got, [("a, b", 3), ("c\nd", 4), ("e", 6)], "{head:?}");
    }
    let e = reader("sep=;\nid;body\n", &Columns::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("t.csv:2"), "the header is on line 2: {e}");
    // Only the exact form counts: a column named sep=x is a header.
    let mut r = reader("sep=x,text\n1,y\n", &Columns::default()).unwrap();
    assert_eq!(r.next_chunk(10).unwrap()[0].text, "y");
    // A delimiter failup does not read is refused where it is declared, not taken.
    let e = reader("sep=x\nid,text\n1,a\n", &Columns::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("t.csv:1") && e.contains("sep=x"), "{e}");
}

#[test]
fn blank_lines_outside_quotes_are_told_but_not_those_ending_the_file() {
    let csv = "id,text\n1,a\n\n2,b\r\n\r\n3,\"x\n\ny\"\n\n\n";
    for mut r in whole_and_trickled(csv) {
        let stories = r.next_chunk(10).unwrap();
        let lines: Vec<_> = stories.iter().map(|s| s.line).collect();
        assert_eq!(lines, [2, 4, 6]);
        assert_eq!(r.take_blank_lines(), [3, 5]);
        assert!(r.take_blank_lines().is_empty(), "each is told once");
    }
    let mut r = reader("sep=;\ntext\nA\n\nB\n", &Columns::default()).unwrap();
    assert_eq!(r.next_chunk(10).unwrap().len(), 2);
    assert_eq!(r.take_blank_lines(), [4]);
    // Blank lines before the header, the file's first among them, or after a `sep=` line.
    for (csv, blank, line) in [
        ("\n\nid,text\n1,a\n", vec![1, 2], 4),
        ("\r\nid,text\r\n1,a\r\n", vec![1], 3),
        ("sep=,\n\nid,text\n1,a\n", vec![2], 4),
    ] {
        for mut r in whole_and_trickled(csv) {
            assert_eq!(r.next_chunk(10).unwrap()[0].line, line, "{csv:?}");
            assert_eq!(r.take_blank_lines(), blank, "{csv:?}");
        }
    }
    // Each shard reads every line; the first one tells the blank lines for all.
    for (index, told) in [(0, vec![3, 5]), (1, vec![]), (2, vec![])] {
        let mut r = reader("text\nA\n\nB\n\nC\nD\n", &Columns::default()).unwrap();
        r.set_shard(Shard { index, count: 3 });
        assert!(r.next_chunk(10).unwrap().len() <= 2);
        assert_eq!(r.take_blank_lines(), told, "shard {index}");
    }
}

struct Trickle(io::Cursor<Vec<u8>>);

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let end = buf.len().min(1);
        self.0.read(&mut buf[..end])
    }
}

/// Readers of `csv` given all at once and a byte at a time.
fn whole_and_trickled(csv: &str) -> [StoryReader; 2] {
    [
        reader(csv, &Columns::default()).unwrap(),
        trickled(csv.as_bytes().to_vec()),
    ]
}

fn trickled(bytes: Vec<u8>) -> StoryReader {
    let source = Box::new(Trickle(io::Cursor::new(bytes)));
    StoryReader::from_reader(
        source,
        "t.csv".into(),
        None,
        &Columns::default(),
        Dialect::default(),
    )
    .unwrap()
}

#[test]
fn byte_order_marks_and_delimiters_are_seen_when_bytes_come_one_at_a_time() {
    let mut bytes = vec![0xFF, 0xFE];
    for unit in "id\ttext\r\n1\tcaf\u{e9}\r\n".encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    let mut r = trickled(bytes);
    assert_eq!(r.next_chunk(10).unwrap()[0].text, "caf\u{e9}");

    // A UTF-8 byte-order mark and a sniffed delimiter, a byte at a time, too.
    let bytes = b"\xEF\xBB\xBFid;text\n1;fine\n".to_vec();
    let mut r = trickled(bytes);
    assert_eq!(r.headers()[0], "id");
    assert_eq!(r.next_chunk(10).unwrap()[0].text, "fine");
    // A header of two candidates, whose rows decide: the same, a byte at a time.
    let bytes =
        b"id;text;Who, when, why\n1;They gave it away, again;x\n2;\"Lost, gone\";y\n".to_vec();
    let mut r = trickled(bytes);
    assert_eq!(r.headers().len(), 3);
    assert_eq!(r.next_chunk(10).unwrap()[1].text, "Lost, gone");
}

/// A header of escape codes, or one that swallowed the data, is named in a message without
/// reaching the terminal as it is or flooding it.
#[test]
fn missing_column_messages_show_names_escaped_and_few() {
    let e = reader("id,\u{1b}[31mRED\n1,a\n", &Columns::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("control characters") && !e.contains('\u{1b}'),
        "{e}"
    );
    let e = reader("id,\u{2067}RED\n1,a\n", &Columns::default())
        .err()
        .unwrap();
    assert!(e.to_string().contains("\\u{2067}RED"), "{e}");
    let wide: String = (0..100).map(|i| format!("c{i},")).collect::<String>() + &"h".repeat(5000);
    let e = reader(&format!("{wide}\n1\n"), &Columns::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("c29, and 71 more") && e.len() < 1000, "{e}");
}

#[test]
fn printable_escapes_what_would_change_the_terminal_or_the_log() {
    assert_eq!(printable("plain id-7 café"), "plain id-7 café");
    assert_eq!(
        printable("\u{1b}[31mred\nnext\u{202e}txt"),
        "\\u{1b}[31mred\\u{a}next\\u{202e}txt"
    );
    // A label that looks like `other` but is not: the difference is made visible. An
    // emoji's joiner stays.
    assert_eq!(printable("\u{200b}other\u{ad}"), "\\u{200b}other\\u{ad}");
    assert_eq!(printable("👩\u{200d}💻"), "👩\u{200d}💻");
    // A file's name is escaped the same way, and never shortened.
    let deep = format!("{}/g\u{1b}[31m.csv", "d".repeat(150));
    let name = Source::File(deep.clone().into()).name();
    assert_eq!(name, deep.replace('\u{1b}', "\\u{1b}"));
    // An id that swallowed a file is shortened, on a character boundary.
    let long = "é".repeat(PRINTABLE_CHARS) + "\n" + &"x".repeat(5000);
    let shown = printable(&long);
    assert_eq!(
        shown,
        "é".repeat(PRINTABLE_CHARS) + "… (5101 characters in all)"
    );
    assert_eq!(
        printable(&"é".repeat(PRINTABLE_CHARS)),
        "é".repeat(PRINTABLE_CHARS)
    );
}

#[test]
fn utf8_is_told_from_windows_1252_by_its_non_ascii_bytes() {
    assert!(reads_as_utf8("id,text\n1,café\n".as_bytes()));
    // Cut inside the last character, as a 64 KiB head may be.
    assert!(reads_as_utf8(b"1,caf\xC3\xA9 na\xC3"));
    assert!(!reads_as_utf8(b"id,text\n1,caf\xE9\n"), "windows-1252");
    assert!(
        !reads_as_utf8(b"id,text\n1,plain\n"),
        "ASCII reads alike either way"
    );
    assert!(!reads_as_utf8(b"1,plain \xC3"), "only a cut lead byte");
}

#[test]
fn broken_utf16_flags_its_row_and_no_other() {
    // A lone surrogate in row 1's text and half a code unit at the end of row 2's: the
    // decoder used to replace both with U+FFFD and the rows passed as clean.
    let mut bytes: Vec<u8> = "\u{FEFF}id,text\n1,before"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    bytes.extend_from_slice(&0xDC00u16.to_le_bytes());
    for unit in "after\n2,fine\n3,odd".encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    bytes.push(b'!');
    let mut r = reader_bytes(bytes, &Columns::default(), Dialect::default()).unwrap();
    let s = r.next_chunk(10).unwrap();
    let seen: Vec<_> = s.iter().map(|s| (s.text.as_str(), &s.issues[..])).collect();
    assert_eq!(
        seen,
        [
            (
                "before\u{FFFD}after",
                &[RowIssue::InvalidUtf8 { column: 1 }][..]
            ),
            ("fine", &[][..]),
            ("odd\u{FFFD}", &[RowIssue::InvalidUtf8 { column: 1 }][..]),
        ]
    );
}

#[test]
fn latin1_is_decoded_when_asked() {
    let bytes = b"id,text\n1,caf\xE9 cr\xE8me\n".to_vec();
    let dialect = Dialect {
        encoding: InputEncoding::Latin1,
        ..Dialect::default()
    };
    let mut r = reader_bytes(bytes, &Columns::default(), dialect).unwrap();
    let s = r.next_chunk(10).unwrap();
    assert_eq!(s[0].text, "café crème");
    assert!(s[0].issues.is_empty());
    // A byte-order mark says the file is UTF-8 or UTF-16 whatever `--encoding` says; read
    // as Latin-1 it became part of the id column's name, and the ids row numbers.
    let utf16: Vec<u8> = "\u{FEFF}id,text\nA9,café\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    for bytes in [b"\xEF\xBB\xBFid,text\nA9,caf\xC3\xA9\n".to_vec(), utf16] {
        let mut r = reader_bytes(bytes, &Columns::default(), dialect).unwrap();
        assert_eq!(r.headers(), ["id", "text"]);
        let s = r.next_chunk(10).unwrap();
        assert_eq!((s[0].id.as_str(), s[0].text.as_str()), ("A9", "café"));
    }
}

/// However many rows a chunk may take, it stops once its stories hold 4 MiB of text
/// (the story that crosses it is kept whole), so long posts do not fill memory.
#[test]
fn a_chunk_of_long_stories_stops_at_its_text_budget() {
    let story = "x".repeat(MAX_TEXT_BYTES);
    let csv: String = (0..6).fold("id,text\n".into(), |csv, i| csv + &format!("{i},{story}\n"));
    let mut r = reader(&csv, &Columns::default()).unwrap();
    let sizes: Vec<usize> = std::iter::from_fn(|| {
        let chunk = r.next_chunk(1024).unwrap();
        (!chunk.is_empty()).then_some(chunk.len())
    })
    .collect();
    assert_eq!(sizes, [4, 2]);
    let mut r = reader(&csv, &Columns::default()).unwrap();
    assert_eq!(
        r.next_chunk(3).unwrap().len(),
        3,
        "the row limit still holds"
    );
}

#[test]
fn delimiters_are_sniffed_from_the_header() {
    assert_eq!(sniff_delimiter(b"id;text\n1;a,b,c\n"), b';');
    assert_eq!(sniff_delimiter(b"id\ttext\n"), b'\t');
    assert_eq!(sniff_delimiter(b"id|text|team\n"), b'|');
    assert_eq!(sniff_delimiter(b"id,text\n"), b',');
    assert_eq!(sniff_delimiter(b"text\n"), b',');
    assert_eq!(sniff_delimiter(b"\"a;b\",text\n"), b',');
    // A survey question for a column name: its commas tie with the tabs, and the rows
    // after it, split by tabs alone into as many fields, decide.
    let survey = b"id\ttext\tTell us, in a word, how\n1\tI was passed over, again\tbadly\n";
    assert_eq!(sniff_delimiter(survey), b'\t');
    let excel = b"ID;Dept;Describe a time you were overlooked, or sidelined\n\
                  1;Sales;My manager gave the role to my junior, who I had trained.\n\
                  2;HR;\"We lost the pitch; months of work, gone.\"\n";
    assert_eq!(sniff_delimiter(excel), b';');
    let Err(e) = reader_bytes(excel.to_vec(), &Columns::default(), Dialect::default()) else {
        panic!("the header has no text column");
    };
    assert!(
        e.to_string().contains(
            "(columns: 'ID', 'Dept', 'Describe a time you were overlooked, or sidelined')"
        ),
        "{e}"
    );
    // Records, not lines: a story's line breaks inside its quotes are inside its record.
    let lines = b"ID;Dept;Describe a time you were overlooked, or sidelined\n\
                  1;Sales;\"My manager gave the account to a new rep.\n\
                  I had carried it for six years, and nobody asked.\nLater, I found out why.\"\n\
                  2;HR;\"We lost the pitch, and then the client.\"\n";
    assert_eq!(sniff_delimiter(lines), b';');
    // Rows one field short (a trailing empty cell dropped) still split alike by `;`.
    let short = b"id;team;text;rating, 1-5\n1;sales;I was passed over, again\n\
                  2;ops;They gave it, to him, again\n3;hr;Lost the pitch\n";
    assert_eq!(sniff_delimiter(short), b';');
    let one_comma_each = b"id;team;text;rating, 1-5\n1;sales;Passed over, again\n\
                           2;ops;My pitch lost, badly\n3;it;Laid off, then rehired\n";
    assert_eq!(sniff_delimiter(one_comma_each), b';');
    // One record to go by, which the header's choice cannot split as its header.
    let one = b"id;What happened, in short, at work\n1;\"I was passed over, again.\"\n";
    assert_eq!(sniff_delimiter(one), b';');
    let quoted = b"id;What happened, in short, at work\n1;\"Passed over, again.\"\n2;\"Lost.\"\n";
    assert_eq!(sniff_delimiter(quoted), b';');
    // With no row after it, or only one cut where the peek ended, the header's count holds.
    assert_eq!(sniff_delimiter(b"ID;Describe, or sidelined\n1;Sal"), b',');
    assert_eq!(tabs_by_name("answers.TSV", survey), Some(b'\t'));
    assert_eq!(tabs_by_name("answers.tsv.gz", survey), Some(b'\t'));
    assert_eq!(tabs_by_name("answers.csv", survey), None);
    assert_eq!(tabs_by_name("answers.tsv", b"id,text\n"), None);
    let mut r = reader_named("answers.tsv", survey, &Columns::default()).unwrap();
    assert_eq!(
        r.next_chunk(10).unwrap()[0].text,
        "I was passed over, again"
    );
    let mut r = reader("id;text\n1;hello, world\n", &Columns::default()).unwrap();
    assert_eq!(r.next_chunk(10).unwrap()[0].text, "hello, world");
}

/// A header cell with a line break in it (Excel's Alt+Enter) or doubled spaces is found by
/// the name as one would type it; two columns alike that way are not chosen between.
#[test]
fn a_column_is_found_by_its_name_with_its_spaces_as_typed() {
    let columns = |text: &str| Columns {
        text: Some(text.into()),
        ..Columns::default()
    };
    let csv = "id,\"Your story\n(please be specific)\"\n1,They gave my role away.\n";
    let mut r = reader(csv, &columns("Your story (please be specific)")).unwrap();
    assert_eq!(r.next_chunk(1).unwrap()[0].text, "They gave my role away.");
    let csv = "id,Your  story,\"Your\nstory\"\n1,a,b\n";
    let e = reader(csv, &columns("Your story"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no column named 'Your story'"), "{e}");
}

#[test]
fn duplicate_header_names_are_an_error() {
    let e = reader("id,text,text\n1,a,b\n", &Columns::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("t.csv:1")
            && e.contains("names this column more than once: 'text' (columns 2, 3)"),
        "{e}"
    );
    // A Jira export repeats several: all are named at once.
    let jira = "Key,Labels,Labels,Description,Watchers,Labels,Watchers\nA-1,x,y,z,u,v,w\n";
    let e = reader(jira, &Columns::default()).err().unwrap().to_string();
    assert!(
        e.contains(
            "names 2 columns more than once: 'Labels' (columns 2, 3, 6), 'Watchers' \
                    (columns 5, 7)"
        ),
        "{e}"
    );
    // The name suggested is one no column has yet.
    let e = reader("id,text,text_2,text\n1,a,b,c\n", &Columns::default())
        .err()
        .unwrap();
    assert!(e.to_string().contains("(for example text_3)"), "{e}");
}

#[test]
fn a_kept_column_named_with_a_comma_is_found_from_its_pieces() {
    let headers = ["id", "text", "team", "team, region", "year"].map(String::from);
    let names = ["team", " region", "year"].map(String::from);
    assert_eq!(
        rejoin_split_names(&names, &headers).unwrap(),
        ["team, region", "year"]
    );
    let both = ["team", "team", " region"].map(String::from);
    assert_eq!(
        rejoin_split_names(&both, &headers).unwrap(),
        ["team", "team, region"]
    );
    let unknown = ["team", "nope"].map(String::from);
    assert_eq!(rejoin_split_names(&unknown, &headers).unwrap(), unknown);
    // Each piece a column too: either reading could be meant.
    let headers = ["id", "text", "team,name", "team", "name"].map(String::from);
    let either = ["team", "name"].map(String::from);
    let e = rejoin_split_names(&either, &headers)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("could mean the column 'team,name' or the columns 'team' and 'name'"),
        "{e}"
    );
}

#[test]
fn giant_text_is_cut_and_flagged() {
    let big = "é".repeat(MAX_TEXT_BYTES); // two bytes each: twice the cap
    let mut r = reader(&format!("id,text\n1,{big}\n2,ok\n"), &Columns::default()).unwrap();
    let s = r.next_chunk(10).unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].issues, [RowIssue::TooLong]);
    assert!(s[0].text.len() <= MAX_TEXT_BYTES);
    assert!(s[0].text.chars().all(|c| c == 'é'));
    assert!(s[1].issues.is_empty());
}

/// A cell past the cap is dropped as it is read, not held whole and cut afterwards: the
/// id, which is never cut, shows it. Quotes, delimiters and line breaks past the cap
/// still count, so the rows after it and their line numbers are the same.
#[test]
fn a_giant_cell_is_capped_as_it_is_read() {
    let big = "é".repeat(3 * MAX_TEXT_BYTES);
    let quoted = format!("{big}\n\"\"{big},\n{big}");
    let csv = format!("id,text\n{big},short\n2,\"{quoted}\"\n3,\"never\n{big}\n4,closed\n");
    for bytes in [csv.clone().into_bytes(), gzipped(csv.as_bytes())] {
        let mut r = reader_bytes(bytes, &Columns::default(), Dialect::default()).unwrap();
        let s = r.next_chunk(10).unwrap();
        assert_eq!(s.len(), 3);
        assert!(s[0].id.len() <= MAX_TEXT_BYTES && s[0].id.chars().all(|c| c == 'é'));
        // The id is cut too: warned, its status left as it is.
        assert_eq!(s[0].issues, [RowIssue::CellCut { column: 0 }]);
        let headers = r.headers().to_vec();
        let said = s[0].cut_cells(&headers).unwrap();
        assert_eq!(said, "column 'id' held more than 1 MiB and was cut there");
        assert_eq!(s[1].cut_cells(&headers), None);
        assert_eq!((s[1].id.as_str(), s[1].line), ("2", 3));
        assert_eq!(s[1].issues, [RowIssue::TooLong]);
        assert!(s[1].text.len() <= MAX_TEXT_BYTES && s[1].text.chars().all(|c| c == 'é'));
        assert_eq!((s[2].id.as_str(), s[2].line), ("3", 6));
        assert!(
            matches!(
                s[2].issues[..],
                [RowIssue::UnclosedQuote { .. }, RowIssue::TooLong]
            ),
            "{:?}",
            s[2].issues
        );
        assert!(s[2].text.starts_with("never\né"));
    }
}

/// Doubled quotes count as the one quote they stand for: a story under 1 MiB is read
/// whole, and one over it is cut at exactly 1 MiB of its text, as before the cap.
#[test]
fn the_cap_cuts_a_story_where_its_text_reaches_1_mib() {
    let text = "say \"hi\" ".repeat(MAX_TEXT_BYTES / 10 - 1);
    let long = "say \"hi\" ".repeat(MAX_TEXT_BYTES / 5);
    let csv = |t: &str| format!("id,text\n1,\"{}\"\n", t.replace('"', "\"\""));
    let mut r = reader(&csv(&text), &Columns::default()).unwrap();
    let s = r.next_chunk(10).unwrap();
    assert!(s[0].issues.is_empty());
    assert_eq!(s[0].text, text);
    let mut r = reader(&csv(&long), &Columns::default()).unwrap();
    let s = r.next_chunk(10).unwrap();
    assert_eq!(s[0].issues, [RowIssue::TooLong]);
    assert_eq!(s[0].text, long[..MAX_TEXT_BYTES]);
}

/// Spreadsheets export empty trailing columns (`id,text,,`): each is named for its place,
/// not refused as one name twice, and can be kept.
#[test]
fn columns_with_empty_header_cells_are_named_for_their_place() {
    let columns = Columns {
        keep: KeepColumns::All,
        ..Columns::default()
    };
    // A name the file already uses is not taken again.
    let r = reader("id,text,,column_3\n", &columns).unwrap();
    assert_eq!(r.headers(), ["id", "text", "column_3_", "column_3"]);
    let mut r = reader("id,,text,,\n1,a,x,,b\n", &columns).unwrap();
    assert_eq!(
        r.headers(),
        ["id", "column_2", "text", "column_4", "column_5"]
    );
    let s = r.next_chunk(10).unwrap();
    assert_eq!(s[0].text, "x");
    assert_eq!(s[0].kept, ["a", "x", "", "b"]);
}

#[test]
fn keeps_named_and_all_columns() {
    let csv = "id,team,text,year\n1,a,x,2024\n";
    let all = Columns {
        keep: KeepColumns::All,
        ..Columns::default()
    };
    let mut r = reader(csv, &all).unwrap();
    assert_eq!(r.kept_names(), ["team", "text", "year"]);
    assert_eq!(r.next_chunk(1).unwrap()[0].kept, ["a", "x", "2024"]);
    let named = Columns {
        keep: KeepColumns::Named(vec!["year".into()]),
        ..Columns::default()
    };
    assert_eq!(reader(csv, &named).unwrap().kept_names(), ["year"]);
}

#[test]
fn line_numbers_hold_with_crlf() {
    let mut r = reader("id,text\r\na,x\r\nb,y\r\nc,\r\n", &Columns::default()).unwrap();
    let lines: Vec<u64> = r.next_chunk(10).unwrap().iter().map(|s| s.line).collect();
    assert_eq!(lines, [2, 3, 4]);
    let mut r = reader(
        "id,text\r\na,\"two\r\nlines\"\r\nb,y\r\n\r\nc,z\n\nd,w",
        &Columns::default(),
    )
    .unwrap();
    let lines: Vec<u64> = r.next_chunk(10).unwrap().iter().map(|s| s.line).collect();
    assert_eq!(lines, [2, 4, 6, 8]);
}

/// Spreadsheets capitalise headers: `ID` and `Text` are the default columns when no other
/// column is named so in any case; an exact name wins over one in another case, and two
/// look-alikes are refused, not chosen between.
#[test]
fn default_columns_are_found_in_any_case_when_only_one_matches() {
    let mut r = reader("ID,Text\nX9,a story\n", &Columns::default()).unwrap();
    let story = &r.next_chunk(10).unwrap()[0];
    assert_eq!((story.id.as_str(), story.text.as_str()), ("X9", "a story"));
    let mut r = reader("Id,ID,id,STORY\nA,B,C,told\n", &Columns::default()).unwrap();
    let story = &r.next_chunk(10).unwrap()[0];
    assert_eq!((story.id.as_str(), story.text.as_str()), ("C", "told"));
    // Exact names first: `story` over a `Text` that may be a title.
    let mut r = reader("Text,story\ntitle,told\n", &Columns::default()).unwrap();
    assert_eq!(r.next_chunk(10).unwrap()[0].text, "told");
    for (csv, flag) in [
        ("Id,ID,text\nA,B,told\n", "--id-column"),
        ("Text,TEXT\na,b\n", "--text-column"),
    ] {
        let e = reader(csv, &Columns::default()).err().unwrap().to_string();
        assert!(e.contains("differ only in case") && e.contains(flag), "{e}");
    }
}

#[test]
fn line_numbers_and_blank_lines_hold_with_old_mac_endings() {
    // A `\r` alone ends a line, as the csv crate and text editors take it; read a byte
    // at a time too, so a `\r` at the end of one read and a `\n` at the start of the next
    // still count once.
    let csv = "id;text\ra;x\rb;\"two\rlines\"\r\rc;z\r\nd;w\r";
    for mut r in whole_and_trickled(csv) {
        let stories = r.next_chunk(10).unwrap();
        let lines: Vec<u64> = stories.iter().map(|s| s.line).collect();
        assert_eq!(lines, [2, 3, 6, 7]);
        assert_eq!(stories[1].text, "two\rlines");
        assert_eq!(r.take_blank_lines(), [5]);
    }
    // The header line alone decides the delimiter, and a `sep=` line ends at its `\r`.
    let mut r = reader("sep=|\rid|text\r1|a, b, c; d\r", &Columns::default()).unwrap();
    assert_eq!(r.headers(), ["id", "text"]);
    let story = &r.next_chunk(10).unwrap()[0];
    assert_eq!((story.line, story.text.as_str()), (3, "a, b, c; d"));
    let r = reader("id;text\r1;a, b, c, d, e\r", &Columns::default()).unwrap();
    assert_eq!(r.headers(), ["id", "text"]);
}

#[test]
fn empty_file_is_an_error() {
    assert!(reader("", &Columns::default()).is_err());
}

#[test]
fn utf8_bom_is_ignored() {
    let r = reader("\u{FEFF}id,text\n1,x\n", &Columns::default()).unwrap();
    assert_eq!(r.headers()[0], "id");
}
