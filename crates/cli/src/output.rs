//! Output formats and error printing.

use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    // Also accepted as `table`, for the commands that print tables.
    #[value(alias = "table")]
    Text,
    Json,
}

/// Prints `error: …` and each cause that adds something the message above did not say.
pub fn print_error(e: &anyhow::Error) {
    let mut err = std::io::stderr().lock();
    let mut said = e.to_string();
    let _ = writeln!(err, "error: {said}");
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if said.contains(&text) {
            continue;
        }
        let _ = writeln!(err, "  caused by: {text}");
        said.push_str(&text);
    }
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Human-readable byte counts.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
