//! `failup report` on arbitrary bytes read as a classified file (CSV or JSON lines): reading
//! never panics, and a file it accepts renders in every format, its JSON being valid JSON.
//!
//! Bit 0 of the first byte groups by a `team` column; the rest is the file.
#![no_main]

use std::io::Cursor;
use std::sync::OnceLock;

use failup::report::reader::ClassifiedReader;
use failup::report::{self, Format, SummaryBuilder, SummaryOptions, TaxonomyInfo};
use failup::taxonomy::Taxonomy;
use libfuzzer_sys::fuzz_target;

fn taxonomy() -> &'static (Taxonomy, TaxonomyInfo) {
    static BUILT_IN: OnceLock<(Taxonomy, TaxonomyInfo)> = OnceLock::new();
    BUILT_IN.get_or_init(|| report::load_taxonomy(None).expect("the built-in taxonomy loads"))
}

fuzz_target!(|input: &[u8]| {
    let Some((&first, data)) = input.split_first() else {
        return;
    };
    let (taxonomy, info) = taxonomy();
    let group_by = (first & 1 != 0).then_some("team");
    let source = Box::new(Cursor::new(data.to_vec()));
    let Ok(mut reader) =
        ClassifiedReader::from_reader(source, "f.csv".into(), taxonomy, None, group_by)
    else {
        return;
    };
    let mut builder = SummaryBuilder::new(
        taxonomy,
        SummaryOptions {
            group_by: group_by.map(str::to_string),
            text_column: reader.text_column().map(str::to_string),
            top: 3,
            min_group_size: 2,
        },
    );
    loop {
        match reader.next_row() {
            Ok(Some(row)) => builder.add(row),
            Ok(None) => break,
            Err(_) => return,
        }
    }
    let header = report::header("model".into(), None, info.clone(), "f.csv".into());
    let summary = builder.finish(header);
    let json = report::render(&summary, Format::Json, false, None).expect("JSON always renders");
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&json) {
        panic!("the JSON report does not parse ({e}):\n{json}");
    }
    for format in [Format::Text, Format::Markdown, Format::Html] {
        report::render(&summary, format, false, None).expect("a summary renders");
    }
    // The narrowest terminal the text report wraps to.
    report::render(&summary, Format::Text, false, Some(1)).expect("a summary renders");
});
