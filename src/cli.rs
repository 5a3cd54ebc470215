//! Command-line interface: one struct per subcommand; doc comments become `--help`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use failup::embed::Precision;
use failup::input::{Columns, Dialect, KeepColumns};
use failup::pipeline::{EngineOptions, CHUNK_SIZE};

/// Declares the CLI's copy of a library enum, variant for variant (the library knows nothing
/// of clap), and the conversion into it. Doc comments on the variants become `--help`.
macro_rules! value_enum {
    ($(#[$meta:meta])* $name:ident => $lib:ty { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl From<$name> for $lib {
            fn from(value: $name) -> $lib {
                match value {
                    $($name::$variant => <$lib>::$variant),+
                }
            }
        }
    };
}

value_enum! {
    /// `--backend`: the inference engine.
    Backend => failup::embed::Backend {
        /// The AMX engine for bf16, and for fp32 where the CPU has AMX; else rten.
        Auto,
        /// rten, a pure-Rust ONNX runtime running model.onnx (always available).
        Rten,
        /// failup's own BERT encoder with its matrix products on the CPU's AMX tile unit: fp32
        /// (exact) or bf16 (Intel Xeon 4th generation or later, Linux); bf16 also runs on AVX-512
        /// BF16 dot products where there is no AMX (AMD Zen 4 or later).
        Amx,
        /// rust-bert on libtorch 2.4.0 (only in a build with `--features rust-bert`).
        RustBert,
        /// A hashed bag of words instead of the model, for failup's own tests.
        #[value(name = "test-hashed", hide = true)]
        TestHashed,
    }
}

value_enum! {
    /// `--precision`: which weights run, and how.
    PrecisionArg => Precision {
        /// fp32 weights: embeddings at parity with the reference (cosine >= 0.9999).
        Fp32,
        /// int8 weights with per-channel scales, activations smoothed and quantized per token:
        /// faster, cosine to the reference >= 0.99.
        Int8,
        /// fp32 weights multiplied in bf16 on the AMX engine: fast, cosine to the reference
        /// >= 0.9999 (CPUs with AMX, or with AVX-512 BF16 as AMD Zen 4 and later).
        Bf16,
    }
}

value_enum! {
    /// `--long-text`: what to do with a story longer than the model's window.
    LongText => failup::chunk::LongText {
        /// Read each story whole, its first window only (its first 255 tokens and a closing
        /// `[SEP]`).
        Truncate,
        /// Read sentence by sentence (`embed`: the whole story), any piece over the window in
        /// overlapping windows averaged by their tokens.
        Chunk,
    }
}

value_enum! {
    /// `--encoding`: the input's character encoding.
    InputEncoding => failup::input::InputEncoding {
        /// UTF-8, with or without a byte-order mark.
        #[value(name = "utf-8", alias = "utf8")]
        Utf8,
        /// ISO-8859-1, read as its superset windows-1252 (as web browsers do).
        #[value(name = "latin1", alias = "iso-8859-1")]
        Latin1,
        #[value(name = "windows-1252", alias = "cp1252")]
        Windows1252,
    }
}

value_enum! {
    /// `classify --format`: how classified rows are written.
    Format => failup::output::Format {
        Csv,
        Jsonl,
    }
}

value_enum! {
    /// `report --format`, `classify --report-format`: a report's format.
    SummaryFormat => failup::report::Format {
        /// An aligned table with share bars, for the terminal.
        Text,
        /// GitHub-flavoured Markdown.
        Markdown,
        /// JSON with a documented schema (docs/report-schema.md).
        Json,
        /// One self-contained HTML page with inline CSS and SVG charts.
        Html,
    }
}

value_enum! {
    /// `--color`: whether the text report uses colour.
    ColorChoice => failup::report::ColorChoice {
        /// Colour when writing to a terminal and NO_COLOR is not set.
        Auto,
        /// Colour even when not writing to a terminal (but never when NO_COLOR is set).
        Always,
        /// No colour.
        Never,
    }
}

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  a quality gate you asked for failed (eval --min-macro-f1)
  2  usage, input, model or I/O error (the message names the file, line, column or flag)
  130  interrupted with Ctrl-C (classify and embed keep their complete rows: rerun with
       --resume; eval, train and calibrate leave no partial profile or output; bench
       prints the whole passes done)

Environment:
  Each flag's help names the variable that sets its default (FAILUP_MODEL, FAILUP_TAXONOMY
  and so on). FAILUP_CACHE_DIR, which no flag sets, is where prototype embeddings are kept
  between runs (default ~/.cache/failup, or $XDG_CACHE_HOME/failup; `off` turns it off).

Examples:
  failup classify data/sample_stories.csv -o classified.csv
  cat stories.csv | failup classify - --format jsonl
  failup advise \"They gave the big client to the new guy after my nine years.\"
  failup eval data/calibration.csv --label-column label --min-macro-f1 0.75";

/// Sort career-setback stories into the scenarios of "How to Embrace the Idea of Failing
/// Upward" with a local sentence-embedding model (all-MiniLM-L6-v2), and give the advice
/// that fits. Runs offline; no Python, no network.
#[derive(Debug, Parser)]
#[command(name = "failup", version, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Classify every story in a CSV file and write one output row per input row, in order.
    #[command(after_help = CLASSIFY_HELP)]
    Classify(ClassifyArgs),
    /// Classify one story given as an argument (or on stdin with `-`) and print its advice.
    #[command(after_help = ADVISE_HELP)]
    Advise(AdviseArgs),
    /// List the scenarios with their descriptions and advice.
    Categories(CategoriesArgs),
    /// Write each story's sentence embedding as JSON Lines: {"id":…,"embedding":[…]}.
    #[command(after_help = EMBED_HELP)]
    Embed(EmbedArgs),
    /// Measure throughput: the whole classify path on a file (or a built-in corpus), timed.
    #[command(after_help = BENCH_HELP)]
    Bench(BenchArgs),
    /// Score the classifier on a labelled CSV: accuracy, macro-F1, per-class metrics, confusion.
    #[command(after_help = EVAL_HELP)]
    Eval(EvalArgs),
    /// Summarise a `classify` output: shares with confidence intervals, confidence, stories to
    /// check, groups and each scenario's advice, as text, Markdown, JSON or an HTML page.
    #[command(after_help = REPORT_HELP)]
    Report(ReportArgs),
    /// Fit a few-shot profile on your own labelled stories (CSV: text,label), once, for
    /// `classify --profile`.
    #[command(after_help = TRAIN_HELP)]
    Train(TrainArgs),
    /// Fit the confidence temperature and the `other` rule on labelled stories and write them
    /// to a profile.
    #[command(after_help = CALIBRATE_HELP)]
    Calibrate(CalibrateArgs),
    /// Put the outputs of a sharded run back together: its rows (`--rows`), in input order,
    /// exactly as one unsharded run writes them, or its partial summaries (`--summary-out`),
    /// into the summary of the whole input.
    Merge(MergeArgs),
    /// Model housekeeping: `models prepare --backend rust-bert` converts the weights for
    /// rust-bert ahead of the first run.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Print a completion script for bash, zsh, fish, powershell or elvish to standard output.
    #[command(after_help = COMPLETIONS_HELP)]
    Completions(CompletionsArgs),
    /// Print failup's manual page (roff) to standard output: one page with a section for every
    /// subcommand.
    #[command(after_help = MAN_HELP)]
    Man,
}

const CLASSIFY_HELP: &str = "\
Examples:
  failup classify data/sample_stories.csv -o classified.csv
  failup classify stories.csv -o out.csv --report report.html --group-by team
  failup classify stories.csv --explain -o classified.csv
  failup classify big.csv.gz -o out.csv --resume    (after Ctrl-C: goes on)";

const ADVISE_HELP: &str = "\
Examples:
  failup advise \"They gave the big client to the new guy after my nine years.\"
  failup advise --explain - < story.txt";

const EMBED_HELP: &str = "\
Example:
  failup embed data/sample_stories.csv -o embeddings.jsonl";

const BENCH_HELP: &str = "\
Examples:
  failup bench                                   (a built-in corpus)
  failup bench stories.csv --threads 2 --repeat 3 --format json";

const EVAL_HELP: &str = "\
Examples:
  failup eval data/calibration.csv
  failup eval labelled.csv --cv 5 --examples-from-self    (few-shot, by CV)
  failup eval labelled.csv --profile profile.json --errors 20";

const REPORT_HELP: &str = "\
Examples:
  failup report classified.csv --group-by team
  failup report classified.csv -o report.html    (format from the extension)
  failup report summary.json --format markdown";

const TRAIN_HELP: &str = "\
Examples:
  failup train labelled.csv -o profile.json
  failup classify stories.csv --profile profile.json -o classified.csv";

const CALIBRATE_HELP: &str = "\
Examples:
  failup calibrate data/calibration.csv labelled.csv -o profile.json
  failup classify stories.csv --profile profile.json -o classified.csv";

const COMPLETIONS_HELP: &str = "\
Install (the script is made from this failup, so regenerate it after an upgrade):
  bash        failup completions bash > ~/.local/share/bash-completion/completions/failup
  zsh         failup completions zsh > ~/.zfunc/_failup
              with `fpath+=~/.zfunc; autoload -Uz compinit; compinit` in ~/.zshrc
  fish        failup completions fish > ~/.config/fish/completions/failup.fish
  powershell  failup completions powershell >> $PROFILE
  elvish      failup completions elvish >> ~/.config/elvish/rc.elv
A new shell then completes subcommands, flags and the values of flags such as --format.

Try it in the current bash without installing:  source <(failup completions bash)";

const MAN_HELP: &str = "\
The page has failup's options, a list of its subcommands, then a section per subcommand
(synopsis, description, every flag with its default and environment variable), the exit
codes and examples.

Read it without installing:
  failup man > failup.1 && man ./failup.1
Install it for your user (found by `man failup` when ~/.local/bin is on PATH):
  mkdir -p ~/.local/share/man/man1 && failup man > ~/.local/share/man/man1/failup.1";

/// `failup completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write the script for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Make what a backend needs beyond the model folder and check that it loads. rust-bert:
    /// converts model.onnx's weights into the cache folder ($FAILUP_CACHE_DIR/rust-bert/) and
    /// prints the file's path (a first rust-bert run does the same on its own). rten: nothing.
    Prepare(PrepareArgs),
}

#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// The backend to prepare for (only rust-bert needs anything prepared).
    #[arg(long, value_enum, env = "FAILUP_BACKEND", default_value_t = Backend::Auto)]
    pub backend: Backend,

    /// Model folder (laid out like models/all-MiniLM-L6-v2). Default: the bundled model.
    #[arg(long, env = "FAILUP_MODEL", value_name = "DIR")]
    pub model: Option<PathBuf>,

    /// Convert again even when the cache already holds the converted weights.
    #[arg(long)]
    pub force: bool,
}

/// Options shared by every command that runs the model.
/// Few-shot examples and fitted profiles, for the commands that classify.
#[derive(Debug, Args, Clone, Default)]
pub struct FewShotArgs {
    /// Your own labelled stories (CSV with columns text,label; labels are scenario ids): a
    /// small softmax-regression head, with a learned attention over each story's tokens, is
    /// fitted on them and the prototypes at start-up (seconds for hundreds of examples; see
    /// docs/src/few-shot.md). For large runs fit once with `failup train` and use --profile.
    #[arg(long, value_name = "FILE")]
    pub examples: Option<PathBuf>,

    /// A profile written by `failup train` or `failup calibrate` (few-shot head, calibrated
    /// temperature and `other` rule). Refused when it was fitted for another model or taxonomy.
    #[arg(long, env = "FAILUP_PROFILE", value_name = "FILE")]
    pub profile: Option<PathBuf>,
}

/// `failup train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Labelled CSV (columns text,label; labels are scenario ids).
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,

    /// The profile to write (JSON).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,

    /// Column holding the label (in any case, `Label` too, when only one column is named so).
    #[arg(long, default_value = "label", value_name = "NAME")]
    pub label_column: String,

    /// No summary on stderr (warnings still show).
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub columns: ColumnArgs,

    #[command(flatten)]
    pub model: ModelArgs,
}

/// `failup calibrate`.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Labelled CSV files (columns text,label; labels are scenario ids), fitted on together;
    /// not the stories you evaluate on.
    #[arg(value_name = "INPUT", required = true, num_args = 1..)]
    pub inputs: Vec<PathBuf>,

    /// The profile to write (JSON); it keeps the head of --profile/--examples, if any.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,

    /// Column holding the label (in any case, `Label` too, when only one column is named so).
    #[arg(long, default_value = "label", value_name = "NAME")]
    pub label_column: String,

    /// No summary on stderr (warnings still show; the taxonomy snippet still goes to stdout).
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub columns: ColumnArgs,

    #[command(flatten)]
    pub fewshot: FewShotArgs,

    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Args, Clone)]
pub struct ModelArgs {
    /// Model folder (laid out like models/all-MiniLM-L6-v2). Default: the bundled model.
    #[arg(long, env = "FAILUP_MODEL", value_name = "DIR")]
    pub model: Option<PathBuf>,

    /// Inference engine. auto: amx for bf16, and for fp32 on a CPU with AMX; rten otherwise
    /// and for int8. rten: the built-in ONNX runtime. amx: failup's own encoder on the AMX tile
    /// unit (Intel Xeon 4th generation or later), or for bf16 on AVX-512 BF16 (AMD Zen 4). rust-bert: libtorch, only in a build with `--features rust-bert` (docs/src/engines.md).
    /// All give the same embeddings to within cosine 0.9999.
    #[arg(long, value_enum, env = "FAILUP_BACKEND", default_value_t = Backend::Auto)]
    pub backend: Backend,

    /// Taxonomy TOML file replacing the built-in scenarios (see docs/src/taxonomy.md for the format).
    #[arg(long, env = "FAILUP_TAXONOMY", value_name = "FILE")]
    pub taxonomy: Option<PathBuf>,

    /// Worker threads for tokenization and inference; 0 means one per CPU core (at most
    /// 1024: more threads than cores only add overhead).
    #[arg(long, allow_negative_numbers = true, env = "FAILUP_THREADS", default_value_t = 0, value_name = "N",
          value_parser = count::<1024>)]
    pub threads: usize,

    /// Stories per inference batch (stories are sorted by length before batching). Default:
    /// 2 with rten and amx, 8 with rust-bert, the fastest measured (docs/src/performance.md);
    /// small batches also keep memory low.
    #[arg(long, allow_negative_numbers = true, env = "FAILUP_BATCH_SIZE", value_name = "N", value_parser = at_least::<1>)]
    pub batch_size: Option<u64>,

    /// Which weights run. int8: the quantized model, the default wherever it can run (rten,
    /// with a model folder that has model.int8.onnx, as the bundled one does): the same
    /// zero-shot macro-F1 as fp32 on real stories by cross-validation, about twice rten's fp32
    /// speed, 1 verdict in 70 different from fp32's. fp32: exact, embeddings at parity with the
    /// reference implementation; the default of `embed`, of a few-shot head (--examples,
    /// `train`, `eval --cv`: the head loses 2 points in int8), of --backend amx and rust-bert,
    /// and of a folder without int8 weights. Where a command takes --profile (classify,
    /// advise, eval, calibrate), the profile runs at the precision it was fitted at, and
    /// another given here is warned of. bf16: the AMX
    /// engine's fast mode (CPUs with AMX, or AVX-512 BF16 as AMD Zen 4), within cosine 0.9999
    /// of exact. A story's numbers never depend on the stories batched beside it. See
    /// docs/src/performance.md.
    #[arg(long, value_enum, env = "FAILUP_PRECISION")]
    pub precision: Option<PrecisionArg>,

    /// How stories are read. `chunk`: sentence by sentence (a long post's verdict often sits in
    /// one sentence), any sentence over the model's 256-token window in overlapping windows
    /// (`failup embed` with chunk reads each story whole, in such windows). `truncate`: each
    /// story whole, cut at
    /// the first window, as the reference reads it; classify then reads no sentence alone,
    /// which costs about 4 points of macro-F1 on short stories too (the synthetic dev set:
    /// 0.802 against 0.844). Default: chunk; for `embed`, truncate, so its vectors match the
    /// reference's. Where a command takes --profile (classify, advise, eval, calibrate), the
    /// profile's value, recorded when it was fitted, is the default.
    #[arg(long, value_enum, env = "FAILUP_LONG_TEXT")]
    pub long_text: Option<LongText>,
}

impl ModelArgs {
    pub fn engine_options(&self) -> EngineOptions {
        EngineOptions {
            model: self.model.clone(),
            taxonomy: self.taxonomy.clone(),
            backend: self.backend.into(),
            threads: self.threads,
            batch_size: self.batch_size.map(|n| n as usize),
            long_text: self.long_text.unwrap_or(LongText::Chunk).into(),
            precision: self.precision.map(Into::into),
        }
    }
}

/// How the input CSV's columns are found.
#[derive(Debug, Args, Clone)]
pub struct ColumnArgs {
    /// Column holding the story text. Default: `text`, or `story` if there is no `text`; a
    /// header in another case (`Text`) is found too, when only one column is named so.
    #[arg(long, value_name = "NAME")]
    pub text_column: Option<String>,

    /// Column holding the story id. Default: `id` if present (also `ID` or `Id`, when only one
    /// column is named so), else the 1-based row number.
    #[arg(long, value_name = "NAME")]
    pub id_column: Option<String>,

    /// Field delimiter: `,` `;` `|` or `tab`. Default: sniffed from the header line (the most
    /// frequent of these outside quotes; comma if none), checked against the next rows where
    /// the header holds two of them.
    #[arg(long, value_parser = parse_delimiter, value_name = "CHAR")]
    pub delimiter: Option<u8>,

    /// Input encoding. UTF-8 (with or without BOM) is the default; invalid bytes are replaced
    /// (classify flags the row `invalid_utf8`). In labelled stories (the INPUT of eval, train and
    /// calibrate, which this flag reads too) they are an error naming the row instead, since a
    /// fit would learn from garbled text and a score would count it; an --examples file is
    /// always read as UTF-8. Use latin1 or windows-1252 for legacy exports.
    #[arg(long, value_enum, default_value_t = InputEncoding::Utf8, value_name = "NAME",
          ignore_case = true)]
    pub encoding: InputEncoding,
}

impl ColumnArgs {
    pub fn dialect(&self) -> Dialect {
        Dialect {
            delimiter: self.delimiter,
            encoding: self.encoding.into(),
        }
    }
}

/// A number from 0 to 1 (NaN is refused: a gate compared with NaN would always pass).
fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!(
            "`{s}` is not a number from 0 to 1 (macro-F1 is a fraction, e.g. 0.8)"
        )),
    }
}

fn parse_delimiter(s: &str) -> Result<u8, String> {
    match s {
        "," | "comma" => Ok(b','),
        ";" | "semicolon" => Ok(b';'),
        "\t" | "\\t" | "tab" => Ok(b'\t'),
        "|" | "pipe" => Ok(b'|'),
        other => Err(format!(
            "'{other}' is not a supported delimiter; use one of , ; | tab"
        )),
    }
}

#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// Input CSV with a header row, plain or gzip-compressed; `-` reads standard input.
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,

    /// Output file; `-` (the default) writes standard output. A file is written to a
    /// temporary name and renamed when complete, so it is never left half-written.
    #[arg(short, long, default_value = "-", value_name = "FILE")]
    pub output: PathBuf,

    /// Output format. Default: jsonl when FILE ends in .jsonl or .ndjson, else csv; a FILE named
    /// for something else (.json, .tsv, a report's .html or .md) is refused unless this is given.
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    #[command(flatten)]
    pub columns: ColumnArgs,

    /// Input columns to copy into the output, comma-separated (e.g. team,year); a column whose
    /// name holds a comma is found from its pieces (an error where the pieces name columns too).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "COLS",
        conflicts_with = "keep_all"
    )]
    pub keep_columns: Vec<String>,

    /// Copy every input column other than the id column (the text included) into the output.
    #[arg(long)]
    pub keep_all: bool,

    /// Treat a malformed row (more or fewer fields than the header, a quote that never closes or
    /// text after a closing one, a repeated header row) as an error (exit 2) instead of keeping
    /// it flagged `status=malformed`, with a warning.
    #[arg(long)]
    pub strict: bool,

    /// Prefix cells from the input that start with = + - or @ with a ' so spreadsheet programs
    /// show them as text instead of running them as formulas (see docs/src/classify.md).
    #[arg(long)]
    pub excel_safe: bool,

    /// Rows read, length-sorted and checkpointed at a time (fewer once they hold 4 MiB of
    /// text). Larger chunks pad less; smaller ones keep less in memory and lose less work to
    /// an interruption.
    #[arg(long, allow_negative_numbers = true, env = "FAILUP_CHUNK_SIZE", default_value_t = CHUNK_SIZE as u64, value_name = "N",
          value_parser = at_least::<1>)]
    pub chunk_size: u64,

    /// Process one shard of the input: `I/N` takes the data rows whose 0-based index is I
    /// modulo N, so N runs over the same file share it, each row in exactly one. `auto/N` (or
    /// `auto`, with N from SLURM_ARRAY_TASK_COUNT) reads I from SLURM_ARRAY_TASK_ID or
    /// Kubernetes' JOB_COMPLETION_INDEX. Each output row then starts with its row number in
    /// the whole input (`row`), and `-o PART` gets a record beside it, `PART.shard`, by which
    /// `failup merge --rows` checks the parts before putting them back together
    /// (docs/src/scale-out.md).
    #[arg(long, value_name = "I/N", allow_hyphen_values = true)]
    pub shard: Option<String>,

    /// Continue an interrupted run: keep the complete rows of OUTPUT's partial file and
    /// classify only the rest. Needs -o FILE and the same input and settings.
    #[arg(long, requires = "output")]
    pub resume: bool,

    /// No progress bar and no summary on stderr.
    #[arg(short, long)]
    pub quiet: bool,

    /// Also write an aggregate report of this run to FILE (as `failup report` would; its
    /// format follows --report-format or the extension: .html, .md, .json, .txt).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Format of the --report file. Default: from its extension, else text; a table's name
    /// (.csv, .tsv, .jsonl) is refused unless this is given.
    #[arg(long, value_enum, requires = "report", value_name = "FORMAT")]
    pub report_format: Option<SummaryFormat>,

    /// Also write this run's partial summary to FILE: the exact state of its report, which
    /// `failup merge` combines with the other shards' (`--shard`) and `failup report` renders
    /// as the report of the whole input (docs/src/scale-out.md). It may replace an earlier
    /// summary, never another file; name it .json (a table's name is refused).
    #[arg(long, value_name = "FILE")]
    pub summary_out: Option<PathBuf>,

    /// Input column to break the --report (or --summary-out) down by (e.g. team, year,
    /// region).
    #[arg(long, value_name = "COLUMN")]
    pub group_by: Option<String>,

    /// Add the nearest prototype or example (its id and similarity), the story's relevance
    /// (how much it reads like the prototypes at all: below the taxonomy's min_relevance it is
    /// `other`) and its evidence (the sentence that reads most like its scenario) to every row,
    /// to see why a story landed where it did. A report of the rows quotes the evidence under
    /// each story it lists.
    #[arg(long)]
    pub explain: bool,

    #[command(flatten)]
    pub fewshot: FewShotArgs,

    #[command(flatten)]
    pub model: ModelArgs,
}

impl ClassifyArgs {
    /// `--format`, or the one `-o`'s extension names.
    pub fn rows_format(&self) -> Format {
        let by_name = self
            .output
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("ndjson"));
        self.format
            .unwrap_or(if by_name { Format::Jsonl } else { Format::Csv })
    }

    pub fn columns(&self) -> Columns {
        Columns {
            text: self.columns.text_column.clone(),
            id: self.columns.id_column.clone(),
            label: None,
            group: self.group_by.clone(),
            keep: if self.keep_all {
                KeepColumns::All
            } else if self.keep_columns.is_empty() {
                KeepColumns::None
            } else {
                KeepColumns::Named(self.keep_columns.clone())
            },
            fixed_names: false,
        }
    }
}

#[derive(Debug, Args)]
pub struct AdviseArgs {
    /// The story, best in quotes; unquoted words are joined with single spaces. `-` or
    /// nothing reads it from standard input.
    #[arg(value_name = "TEXT", num_args = 0..)]
    pub text: Vec<String>,

    /// Also print the nearest prototype or example and its similarity, the story's relevance
    /// (below the taxonomy's min_relevance it is `other`) and, for a story of several
    /// sentences, the one that reads most like its scenario.
    #[arg(long)]
    pub explain: bool,

    #[command(flatten)]
    pub fewshot: FewShotArgs,

    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Args)]
pub struct CategoriesArgs {
    /// Taxonomy TOML file replacing the built-in scenarios.
    #[arg(long, env = "FAILUP_TAXONOMY", value_name = "FILE")]
    pub taxonomy: Option<PathBuf>,

    /// Also list each scenario's prototype stories, numbered as `classify --explain` names the
    /// nearest one (`passed_over#3`).
    #[arg(long)]
    pub prototypes: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  for i in 0 1 2 3; do failup classify big.csv --shard $i/4 -o part-$i.csv & done; wait\n  failup merge --rows part-*.csv -o classified.csv"
)]
pub struct MergeArgs {
    /// The parts are rows (CSV or JSON Lines from `classify --shard`, or JSON Lines from
    /// `embed --shard`), merged into one row file. Without it, the parts are partial
    /// summaries (`classify --summary-out`), merged into one summary for `failup report`.
    /// Either way every shard must be given exactly once, and parts of different runs, or with
    /// different columns, are refused. Row parts are checked against the `PART.shard` record
    /// each sharded run leaves beside its part: keep it with the part.
    #[arg(long)]
    pub rows: bool,

    /// The parts, in any order.
    #[arg(value_name = "PART", required = true)]
    pub parts: Vec<PathBuf>,

    /// Where to write the merged rows or summary (written to a temporary name and renamed
    /// when complete).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,

    /// No line on stderr saying what was merged (errors are still told).
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Input CSV with a header row, plain or gzip-compressed; `-` reads standard input.
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,

    /// Process one shard of the input: `I/N` takes the data rows whose 0-based index is I
    /// modulo N, so N runs over the same file share it, each row in exactly one. `auto/N` (or
    /// `auto`, with N from SLURM_ARRAY_TASK_COUNT) reads I from SLURM_ARRAY_TASK_ID or
    /// Kubernetes' JOB_COMPLETION_INDEX. Each output line then also holds its row number in
    /// the whole input (`row`), and `-o PART` gets a record beside it, `PART.shard`, by which
    /// `failup merge --rows` checks the parts before putting them back together
    /// (docs/src/scale-out.md).
    #[arg(long, value_name = "I/N", allow_hyphen_values = true)]
    pub shard: Option<String>,

    /// Output file; `-` (the default) writes standard output.
    #[arg(short, long, default_value = "-", value_name = "FILE")]
    pub output: PathBuf,

    /// Continue an interrupted run: keep the complete lines of OUTPUT's partial file and embed
    /// only the rest. Needs -o FILE and the same input and settings.
    #[arg(long)]
    pub resume: bool,

    /// Rows read, length-sorted and checkpointed at a time (fewer once they hold 4 MiB of
    /// text). Larger chunks pad less; smaller ones keep less in memory and lose less work to
    /// an interruption.
    #[arg(long, allow_negative_numbers = true, env = "FAILUP_CHUNK_SIZE", default_value_t = CHUNK_SIZE as u64, value_name = "N",
          value_parser = at_least::<1>)]
    pub chunk_size: u64,

    #[command(flatten)]
    pub columns: ColumnArgs,

    /// No progress bar on stderr.
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Labelled CSV; labels must be scenario ids (see `failup categories`).
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,

    /// Column holding the gold label (in any case, `Label` too, when only one column is named
    /// so).
    #[arg(long, default_value = "label", value_name = "NAME")]
    pub label_column: String,

    #[command(flatten)]
    pub columns: ColumnArgs,

    /// Output format: a readable table, or one JSON object with the keys n, mode, accuracy,
    /// macro_f1, per_class, confusion, ece, reliability and errors (docs/src/commands.md).
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,

    /// Exit with code 1 when macro-F1 falls below this value, from 0 to 1 (a gate for CI
    /// pipelines).
    #[arg(long, allow_negative_numbers = true, value_name = "X", value_parser = parse_fraction)]
    pub min_macro_f1: Option<f64>,

    /// No progress bar on stderr.
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub fewshot: FewShotArgs,

    /// Stratified K-fold cross-validation of the few-shot method on INPUT itself: each fold
    /// is scored by a head fitted on the prototypes and the other folds (never on itself).
    #[arg(long, allow_negative_numbers = true, value_name = "K", value_parser = at_least::<2>)]
    pub cv: Option<u64>,

    /// Accepted for clarity with --cv (the examples come from INPUT itself).
    #[arg(long, requires = "cv")]
    pub examples_from_self: bool,

    /// Seed for the --cv fold assignment.
    #[arg(long, allow_negative_numbers = true, default_value_t = 42, value_name = "N", requires = "cv",
          value_parser = at_least::<0>)]
    pub seed: u64,

    /// List the N most confident mistakes with their text.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0, value_name = "N",
          value_parser = count::<{ usize::MAX }>)]
    pub errors: usize,

    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A `failup classify` output, CSV or JSON Lines (detected), or a summary from `failup
    /// merge` or `classify --summary-out` (whose grouping and text column it keeps); `-` reads
    /// standard input. Stories are quoted when it carries their text (`classify
    /// --keep-columns text`).
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,

    /// Output file; `-` (the default) writes standard output. A file is written to a
    /// temporary name and renamed when complete.
    #[arg(short, long, default_value = "-", value_name = "FILE")]
    pub output: PathBuf,

    /// Report format. Default: from the output file's extension (.html, .md, .json, .txt),
    /// else text; a table's name (.csv, .tsv, .jsonl) is refused unless this is given.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<SummaryFormat>,

    /// Break the shares down by this passed-through input column (e.g. team, year, region).
    #[arg(long, value_name = "COLUMN")]
    pub group_by: Option<String>,

    /// Column holding the story text. Default: `text`, or `story` if there is no `text`.
    #[arg(long, value_name = "NAME")]
    pub text_column: Option<String>,

    /// Representative and least certain stories shown per scenario. Default: 3; 0 leaves the
    /// stories out, for a report without any story's words. A summary (`--summary-out`) keeps
    /// the 3 it was made with.
    #[arg(long, allow_negative_numbers = true, value_name = "N", value_parser = count::<{ usize::MAX }>)]
    pub top: Option<usize>,

    /// Groups with fewer classified stories than this are flagged as small. Default: 20. A
    /// summary (`--summary-out`) keeps the line it was made with.
    #[arg(long, allow_negative_numbers = true, value_name = "N", value_parser = at_least::<0>)]
    pub min_group_size: Option<u64>,

    /// Colour in the text format: auto (only on a terminal), always or never. NO_COLOR set
    /// to anything non-empty turns colour off in every case.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Taxonomy TOML the stories were classified with (titles, descriptions and advice come
    /// from it). Default: the built-in scenarios.
    #[arg(long, env = "FAILUP_TAXONOMY", value_name = "FILE")]
    pub taxonomy: Option<PathBuf>,

    /// Model folder named in the report's header (it is not loaded). Default: the bundled
    /// model.
    #[arg(long, env = "FAILUP_MODEL", value_name = "DIR")]
    pub model: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Input CSV; default: a built-in corpus of 1,000 generated stories of realistic length.
    #[arg(value_name = "INPUT")]
    pub input: Option<PathBuf>,

    /// Timed passes over the input (after one warm-up); the figures are median, min and max.
    #[arg(long, allow_negative_numbers = true, default_value_t = 3, value_name = "R",
          value_parser = at_least::<1>)]
    pub repeat: u64,

    /// Output format: readable text, or JSON for machines.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,

    #[command(flatten)]
    pub columns: ColumnArgs,

    #[command(flatten)]
    pub model: ModelArgs,
}

/// Parses the command line, or exits with clap's message. A bad value that came from a
/// `FAILUP_*` variable, not from the command line, is said to come from there: clap names
/// only the flag, which the user never typed.
pub fn parse() -> Cli {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    use clap::CommandFactory;
    let e = match Cli::try_parse() {
        Ok(cli) => return cli,
        Err(e) => e,
    };
    // clap's own exit ignores a failed write, so `--help > /dev/full` ended 0. A reader that
    // stopped early (`| head`) took what it wanted, as for every other output.
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        use std::io::Write;
        let written = e.print().and_then(|()| std::io::stdout().flush());
        match written {
            Err(why) if why.kind() != std::io::ErrorKind::BrokenPipe => {
                eprintln!("failup: error: <stdout>: {why}");
                std::process::exit(2);
            }
            _ => std::process::exit(0),
        }
    }
    let bad_value = matches!(
        e.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    );
    let flag = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(shown)) if bad_value => shown.split(' ').next().unwrap_or(""),
        _ => e.exit(),
    };
    let typed = typed(flag);
    let long = flag.trim_start_matches("--");
    let mut commands = vec![Cli::command()];
    let mut var = None;
    while let (Some(c), None) = (commands.pop(), &var) {
        var = c
            .get_arguments()
            .find(|a| a.get_long() == Some(long))
            .and_then(|a| a.get_env())
            .map(|v| v.to_owned());
        commands.extend(c.get_subcommands().cloned());
    }
    let from_env = var.and_then(|var| Some((std::env::var_os(&var)?, var)));
    match (typed, from_env) {
        (false, Some((value, var))) => {
            let _ = e.print();
            eprintln!(
                "note: {flag} was not given; its value came from the environment, {}={value:?}. \
                 Unset it or fix it, or give {flag} on the command line.",
                var.to_string_lossy()
            );
            std::process::exit(e.exit_code());
        }
        _ => e.exit(),
    }
}

/// Whether `flag` (`--profile`) is on the command line, as `--flag VALUE` or `--flag=VALUE`;
/// where it is not, its value may have come from its `FAILUP_*` variable.
pub fn typed(flag: &str) -> bool {
    std::env::args_os().any(|a| {
        let a = a.to_string_lossy();
        a == flag || a.starts_with(&format!("{flag}="))
    })
}

/// A whole number of at least `MIN`, refused in words: clap's range check names u64's
/// maximum ("1 is not in 2..18446744073709551615").
fn at_least<const MIN: u64>(s: &str) -> Result<u64, String> {
    let n: u64 = s
        .trim()
        .parse()
        .map_err(|e: std::num::ParseIntError| match e.kind() {
            std::num::IntErrorKind::PosOverflow => format!("`{s}` is too large a number"),
            _ if MIN == 0 => format!("`{s}` is not a whole number (0 or more)"),
            _ => format!("`{s}` is not a whole number of at least {MIN}"),
        })?;
    match n >= MIN {
        true => Ok(n),
        false => Err(format!("it must be at least {MIN}")),
    }
}

/// A count (`--top`, `--errors`, `--threads`), refused in words: the standard parser says
/// "invalid digit found in string" to `-1`.
fn count<const MAX: usize>(s: &str) -> Result<usize, String> {
    let n =
        usize::try_from(at_least::<0>(s)?).map_err(|_| format!("`{s}` is too large a number"))?;
    match n <= MAX {
        true => Ok(n),
        false => Err(format!("it must be at most {MAX}")),
    }
}
