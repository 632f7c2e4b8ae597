//! Progress of `create` on a terminal: the stage, and a bar with percent where the amount of
//! work is known. Nothing is drawn when stderr is not a terminal (pipelines, CI logs) or with
//! `--quiet`.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress display; [`Display::progress`] feeds it from the generator.
pub struct Display {
    bar: Option<ProgressBar>,
}

impl Display {
    /// A bar on stderr if `wanted` and stderr is a terminal; otherwise nothing.
    pub fn new(wanted: bool) -> Self {
        let bar = (wanted && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Display { bar }
    }

    /// The generator's callback: switches between a spinner (unknown amount of work) and a
    /// bar with percent.
    pub fn progress(&self, label: &str) -> generate::Progress {
        let Some(bar) = self.bar.clone() else {
            return generate::Progress::default();
        };
        let label = label.to_string();
        let last = Mutex::new(String::new());
        generate::Progress::new(move |stage, done, total| {
            let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
            let known = total > 0;
            let key = format!("{stage}{known}");
            if *last != key {
                let template = if known {
                    "{spinner} {msg} [{bar:30}] {percent:>3}%  {elapsed}"
                } else {
                    "{spinner} {msg}  {elapsed}"
                };
                if let Ok(style) = ProgressStyle::with_template(template) {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar.set_message(format!("{label}: {stage}"));
                *last = key;
            }
            if known {
                bar.set_length(total);
                bar.set_position(done.min(total));
            }
        })
    }

    /// Removes the bar before the summary is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
