//! Build progress on stderr: a redrawn status line on a terminal, plain lines otherwise.

use std::io::{IsTerminal, Write};
use std::time::Instant;

#[derive(Debug)]
pub struct Progress {
    tty: bool,
    quiet: bool,
    started: Instant,
    line_open: bool,
}

impl Progress {
    pub fn stderr() -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            quiet: false,
            started: Instant::now(),
            line_open: false,
        }
    }

    pub fn quiet() -> Progress {
        Progress {
            quiet: true,
            ..Progress::stderr()
        }
    }

    /// Reports that step `n` of `total` of `image` starts (or was cached).
    pub fn step(&mut self, image: &str, n: usize, total: usize, what: &str, cached: bool) {
        if self.quiet {
            return;
        }
        let mut err = std::io::stderr().lock();
        let state = if cached { " (cached)" } else { "" };
        if self.tty {
            let width = 24;
            let filled = (n * width).checked_div(total).unwrap_or(width).min(width);
            let bar: String = "#".repeat(filled) + &"-".repeat(width - filled);
            let mut text = format!(
                "\r\x1b[2K[{bar}] {image} {n}/{total} {what}{state} {:.1}s",
                self.started.elapsed().as_secs_f64()
            );
            text.truncate(200);
            let _ = write!(err, "{text}");
            self.line_open = true;
        } else {
            let _ = writeln!(err, "{image}: step {n}/{total}: {what}{state}");
        }
        let _ = err.flush();
    }

    /// A message on its own line (a RUN step's output follows, for example).
    pub fn message(&mut self, text: &str) {
        if self.quiet {
            return;
        }
        self.end_line();
        eprintln!("{text}");
    }

    /// Ends the status line so that later output starts on a fresh line.
    pub fn end_line(&mut self) {
        if self.line_open {
            eprintln!();
            self.line_open = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.end_line();
    }
}
