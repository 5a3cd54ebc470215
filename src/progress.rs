//! The progress bar on stderr: shown only on an interactive terminal, never with `--quiet`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    bytes: Arc<AtomicU64>,
    rows: u64,
}

impl Progress {
    /// A bar by bytes of input when the size is known, else a spinner counting rows.
    pub fn new(quiet: bool, bytes: Arc<AtomicU64>, total_bytes: Option<u64>) -> Progress {
        let show = !quiet && std::io::stderr().is_terminal();
        let bar = show.then(|| {
            let bar = match total_bytes {
                Some(total) => ProgressBar::new(total).with_style(
                    ProgressStyle::with_template(
                        "{bar:30} {percent:>3}%  {msg}  {binary_bytes}/{binary_total_bytes}  ETA {eta}",
                    )
                    .expect("valid template"),
                ),
                None => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{spinner} {msg}  {binary_bytes} read  {elapsed}")
                        .expect("valid template"),
                ),
            };
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar
        });
        Progress {
            bar,
            bytes,
            rows: 0,
        }
    }

    /// The bar, for a message printed from another thread without tearing it.
    pub fn bar(&self) -> Option<ProgressBar> {
        self.bar.clone()
    }

    pub fn add_rows(&mut self, n: u64, elapsed_s: f64) {
        self.rows += n;
        if let Some(bar) = &self.bar {
            bar.set_position(self.bytes.load(Ordering::Relaxed));
            let rate = self.rows as f64 / elapsed_s.max(1e-9);
            bar.set_message(format!("{} rows, {rate:.0} rows/s", self.rows));
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
