//! `failup report`: read a classify output back and write an aggregate report.

use crate::cli::ReportArgs;
use failup::error::{Error, Result};
use failup::input::Source;
use failup::report::partial::ReportInput;
use failup::report::reader::{open_source, ClassifiedReader};
use failup::report::{self, Format, Summary, SummaryBuilder, SummaryOptions, TaxonomyInfo};
use failup::taxonomy::Taxonomy;
use std::io::Read;

pub fn run(args: ReportArgs) -> Result<()> {
    let source = Source::from_arg(&args.input);
    check_arguments(&args, &source)?;
    report::source_date_epoch()?;
    let (taxonomy, taxonomy_info) = report::load_taxonomy(args.taxonomy.as_deref())?;
    let format = args
        .format
        .map(Format::from)
        .or_else(|| Format::from_path(&args.output))
        .unwrap_or(Format::Text);
    if source == Source::Stdin {
        super::prompt_if_stdin_is_a_terminal("classify's rows or summary, the header row first");
    }
    let summary = match ReportInput::sniff(open_source(&source)?, &source.name())? {
        ReportInput::Rows(_) if args.min_group_size.is_some() && args.group_by.is_none() => {
            return Err(Error::Usage(
                "--min-group-size flags small groups in the table --group-by COLUMN makes; \
                 give --group-by too, or leave --min-group-size out"
                    .into(),
            ));
        }
        ReportInput::Rows(rows) => summary_of_rows(&args, rows, &source, &taxonomy, taxonomy_info)?,
        ReportInput::Summary(summary) => {
            refuse_changes_to_a_summary(&args, summary.builder.options(), &source.name())?;
            refuse_another_model_for_a_summary(&args, &summary.model, &source.name())?;
            let mut summary = summary.finish(&taxonomy, &taxonomy_info)?;
            if let Some(top) = args.top {
                summary.keep_top(top);
            }
            summary
        }
    };
    super::warn_of_look_alike_groups(&summary);
    report::write_report(
        &summary,
        ("-o", &args.output),
        format,
        args.color.into(),
        Some(&source),
    )
}

/// Refuses an output that would overwrite or add to what the report reads, or that is named
/// for a table without `--format`.
fn check_arguments(args: &ReportArgs, source: &Source) -> Result<()> {
    // `failup report rows.csv >> rows.csv` would add the report to the rows it summarises.
    failup::sink::check_output("-o", &args.output, Some(source))?;
    let reads = [("--taxonomy", args.taxonomy.as_ref())];
    super::check_not_read(&[("-o", &args.output)], &reads, args.model.as_deref())?;
    if args.format.is_none() {
        super::refuse_a_report_under_a_table_name("-o", &args.output, "--format")?;
    }
    Ok(())
}

/// The summary of a classify output's `rows`.
fn summary_of_rows(
    args: &ReportArgs,
    rows: Box<dyn Read + Send>,
    source: &Source,
    taxonomy: &Taxonomy,
    taxonomy_info: TaxonomyInfo,
) -> Result<Summary> {
    // The model is not loaded, only named, so a folder that is not there is no error; but a
    // header saying "unknown" should not come as a surprise.
    if let Some(dir) = args.model.as_deref().filter(|d| !d.is_dir()) {
        eprintln!(
            "warning: model folder {}: no such folder, so the report names the model 'unknown'",
            dir.display()
        );
    }
    let model = report::model_name(args.model.as_deref());
    let mut reader = ClassifiedReader::from_reader(
        rows,
        source.name(),
        taxonomy,
        args.text_column.as_deref(),
        args.group_by.as_deref(),
    )?;
    let mut builder = SummaryBuilder::new(
        taxonomy,
        SummaryOptions {
            group_by: args.group_by.clone(),
            text_column: reader.text_column().map(str::to_string),
            top: args.top.unwrap_or(report::stats::DEFAULT_TOP),
            min_group_size: args
                .min_group_size
                .unwrap_or(report::stats::DEFAULT_MIN_GROUP_SIZE),
        },
    );
    add_rows(&mut reader, &mut builder, &source.name())?;
    warn_of_odd_rows(&reader, &source.name());
    let header = report::header(
        model,
        None,
        taxonomy_info,
        report::input_display_name(&args.input),
    );
    Ok(builder.finish(header))
}

/// A summary names the model its rows were read with; a `--model` typed for another one would
/// be passed over without a word. One from `FAILUP_MODEL`, set for every command, is not
/// refused: the summary's own model is the one the report names.
fn refuse_another_model_for_a_summary(args: &ReportArgs, made: &str, name: &str) -> Result<()> {
    let Some(dir) = args
        .model
        .as_deref()
        .filter(|_| crate::cli::typed("--model"))
    else {
        return Ok(());
    };
    let given = report::model_name(Some(dir));
    if given == made {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "{name} is a summary of rows read with the model {made}, which its report names, and \
         --model {} is {}; drop --model, or report the rows (`failup report ROWS.csv --model \
         …`)",
        dir.display(),
        match given.as_str() {
            "unknown" => "not a model folder".to_string(),
            _ => format!("the model {given}"),
        }
    )))
}

/// Adds every row to the report, warning of rows that repeat an id.
fn add_rows(reader: &mut ClassifiedReader, builder: &mut SummaryBuilder, name: &str) -> Result<()> {
    let mut repeated = super::RepeatedIds::default();
    while let Some(row) = reader.next_row()? {
        // Empty ids are classify's to warn of; they are not one story told twice.
        if !row.id.is_empty() {
            repeated.see(&row.id, reader.row_line());
        }
        builder.add(row);
    }
    if let Some(first) = repeated.first() {
        eprintln!(
            "warning: {} of {} {} an id seen earlier ({first}), and each is counted; if \
             outputs were joined by hand, `failup merge` puts a sharded run's parts together \
             and refuses overlaps",
            match repeated.count {
                1 => "1 row".to_string(),
                n => format!("{n} rows"),
            },
            name,
            if repeated.count == 1 {
                "repeats"
            } else {
                "repeat"
            },
        );
    }
    Ok(())
}

/// Warns of what the rows read suggest about the file: bytes that are not UTF-8, a last row
/// cut short, or one shard's part where the whole input was probably meant.
fn warn_of_odd_rows(reader: &ClassifiedReader, name: &str) {
    if let (bad @ 1.., first) = reader.rows_not_utf8() {
        let at = first.map_or(String::new(), |line| format!(" (the first on line {line})"));
        eprintln!(
            "warning: {bad} {} of {} {} bytes that are not UTF-8{at}, shown as U+FFFD: \
             classify writes UTF-8, so the file was probably saved again in a legacy encoding \
             such as Windows-1252; save it as UTF-8 (in Excel, \"CSV UTF-8\"), or report \
             classify's own output",
            if bad == 1 { "row" } else { "rows" },
            name,
            if bad == 1 { "holds" } else { "hold" }
        );
    }
    if let (bad @ 1.., first) = reader.rows_with_other_advice() {
        eprintln!(
            "warning: {name}:{}: {bad} {} advice that this taxonomy does not give {}, so \
             they were probably classified with another --taxonomy whose scenarios have \
             these ids; this report gives this taxonomy's advice: pass the one they were \
             classified with",
            first.unwrap_or(1),
            if bad == 1 { "row holds" } else { "rows hold" },
            if bad == 1 {
                "its scenario"
            } else {
                "their scenarios"
            },
        );
    }
    if let Some(line) = reader.last_row_unended() {
        eprintln!(
            "warning: {}:{line}: the last row has no line break after it, though classify ends \
             every row with one: if the file was cut short there, the row's last value is cut \
             too and counted as it is; copy the file again or classify the input again (a file \
             saved again by a tool that drops the final line break is whole)",
            name
        );
    }
    if reader.read_a_shard_part() {
        eprintln!(
            "warning: {} is one shard's part (its rows carry their input row numbers), so the \
             report covers that shard alone; for the whole input, put the parts together first \
             with `failup merge --rows PART… -o classified.csv`",
            name
        );
    }
}

/// A summary is rendered as it was made: the flags that would change it are refused, and
/// those that repeat what it was made with (a script that gives them every time) are not. A
/// smaller `--top` only shows fewer of the stories it keeps.
fn refuse_changes_to_a_summary(args: &ReportArgs, made: &SummaryOptions, name: &str) -> Result<()> {
    let differs =
        |given: Option<&String>, made: Option<&String>| given.is_some_and(|g| Some(g) != made);
    let fixed = [
        (
            "--group-by",
            differs(args.group_by.as_ref(), made.group_by.as_ref()),
        ),
        (
            "--text-column",
            differs(args.text_column.as_ref(), made.text_column.as_ref()),
        ),
        ("--top", args.top.is_some_and(|t| t > made.top)),
        (
            "--min-group-size",
            args.min_group_size
                .is_some_and(|m| m != made.min_group_size),
        ),
    ];
    match fixed.iter().find(|(_, given)| *given) {
        Some((flag, _)) => Err(Error::Usage(format!(
            "{name} is a summary, which keeps the grouping, text column, top stories and \
             small-group line it was made with, so {flag} cannot change them{}; drop it, or \
             report the rows (`failup report ROWS.csv {flag} …`)",
            match *flag {
                "--top" => format!(" (it keeps {}: --top may only show fewer)", made.top),
                _ => String::new(),
            }
        ))),
        None => Ok(()),
    }
}
