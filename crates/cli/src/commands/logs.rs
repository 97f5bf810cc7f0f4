//! `kiln logs`: instance logs read straight from `HOME/logs`, so they work while the
//! daemon is down.

mod follow;
mod read;
mod target;

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use self::follow::Tail;
use self::read::{Entry, Filter};
use self::target::Target;
use crate::clock::ms_ago;
use crate::output::OutputFormat;

const FOLLOW_POLL: Duration = Duration::from_millis(250);

#[derive(Debug)]
pub struct LogsArgs {
    pub target: String,
    pub follow: bool,
    pub since: Option<Duration>,
    pub grep: Option<String>,
    pub output: OutputFormat,
    pub tail: Option<usize>,
}

pub fn logs(home: &Path, args: LogsArgs) -> anyhow::Result<ExitCode> {
    match run(home, args) {
        Err(e) if is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        other => other,
    }
}

fn run(home: &Path, args: LogsArgs) -> anyhow::Result<ExitCode> {
    let target = Target::resolve(&home.join("logs"), &args.target)?;
    let filter = Filter {
        since_ms: args.since.map(ms_ago),
        grep: args.grep,
    };
    let mut tails = BTreeMap::new();
    let mut entries = read::select(read_all(&target, &mut tails)?, &filter);
    if let Some(n) = args.tail {
        entries.drain(..entries.len().saturating_sub(n));
    }
    let mut out = std::io::stdout().lock();
    read::print(&mut out, &entries, args.output)?;
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        std::thread::sleep(FOLLOW_POLL);
        for current in target.current_files()? {
            tails
                .entry(current.clone())
                .or_insert_with(|| Tail::new(current));
        }
        let mut new = Vec::new();
        for (path, tail) in &mut tails {
            new.extend(read::parse(read_tail(path, tail)?));
        }
        read::print(&mut out, &read::select(new, &filter), args.output)?;
    }
}

/// Every stored line of the target: each instance's rotated files, oldest first, then
/// its current file, which is left open in `tails` to follow.
fn read_all(target: &Target, tails: &mut BTreeMap<PathBuf, Tail>) -> anyhow::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for current in target.current_files()? {
        for rotated in kiln_runtime::log_files(&current) {
            if rotated == current {
                continue;
            }
            match std::fs::read(&rotated) {
                Ok(bytes) => entries.extend(read::parse(String::from_utf8_lossy(&bytes).lines())),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot read {}", rotated.display()));
                }
            }
        }
        let mut tail = Tail::new(current.clone());
        entries.extend(read::parse(read_tail(&current, &mut tail)?));
        tails.insert(current, tail);
    }
    Ok(entries)
}

fn read_tail(path: &Path, tail: &mut Tail) -> anyhow::Result<Vec<String>> {
    tail.read_new()
        .with_context(|| format!("cannot read {}", path.display()))
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use read::tests::stored;

    #[test]
    fn a_service_merges_all_its_instances_rotated_files_included() {
        let dir = tempfile::tempdir().unwrap();
        let web = dir.path().join("logs/web");
        std::fs::create_dir_all(&web).unwrap();
        let write = |name: &str, lines: &[String]| {
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            std::fs::write(web.join(name), text).unwrap();
        };
        write(
            "web-aaaa.log.1",
            &[stored(
                "2026-11-26T14:00:00.000Z",
                "web-aaaa",
                "stdout",
                "a0",
            )],
        );
        write(
            "web-aaaa.log",
            &[stored(
                "2026-11-26T14:00:02.000Z",
                "web-aaaa",
                "stdout",
                "a2",
            )],
        );
        // An instance already gone, with only a rotated file left.
        write(
            "web-bbbb.log.1",
            &[stored(
                "2026-11-26T14:00:01.000Z",
                "web-bbbb",
                "stderr",
                "b1",
            )],
        );

        let target = Target::resolve(&dir.path().join("logs"), "web").unwrap();
        let mut tails = BTreeMap::new();
        let entries = read::select(read_all(&target, &mut tails).unwrap(), &Filter::default());
        let lines: Vec<_> = entries.iter().map(|e| e.line.line.as_str()).collect();
        assert_eq!(lines, ["a0", "b1", "a2"]);

        // Following picks up what is appended to the current files only.
        assert_eq!(tails.len(), 2);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(web.join("web-aaaa.log"))
            .unwrap();
        std::io::Write::write_all(
            &mut f,
            format!(
                "{}\n",
                stored("2026-11-26T14:00:03.000Z", "web-aaaa", "stdout", "a3")
            )
            .as_bytes(),
        )
        .unwrap();
        let new: Vec<_> = tails
            .iter_mut()
            .flat_map(|(p, t)| read_tail(p, t).unwrap())
            .collect();
        assert_eq!(read::parse(new)[0].line.line, "a3");
    }
}
