//! The JSON report: the [`Summary`] itself, pretty-printed. Its schema is documented in
//! docs/report-schema.md and versioned by `schema_version`.

use crate::report::Summary;

pub fn render(summary: &Summary) -> String {
    let mut s = serde_json::to_string_pretty(summary).expect("a summary always serialises");
    s.push('\n');
    s
}
