//! `kiln`: the command line. Arguments and output formatting only; the work happens in
//! the component crates.

mod commands;
mod home;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::output::OutputFormat;

#[derive(Debug, Parser)]
#[command(
    name = "kiln",
    version,
    about = "Immutable infrastructure for Linux servers"
)]
struct Cli {
    /// Where kiln keeps its store and state [default: /var/lib/kiln as root, else the
    /// XDG data dir]
    #[arg(long, global = true, env = "KILN_HOME", value_name = "DIR")]
    home: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build the images of kiln.toml into the store
    Build {
        /// The spec file
        #[arg(short = 'f', long = "file", default_value = "kiln.toml")]
        file: PathBuf,
        /// Images to build (default: all), with the images they copy from
        images: Vec<String>,
        /// The tag [default: the git short commit, -dirty when modified; latest outside git]
        #[arg(long)]
        tag: Option<String>,
        /// Do every step's work even when it is cached
        #[arg(long)]
        no_cache: bool,
        /// Build twice into fresh stores and report whether the digests are equal
        #[arg(long)]
        verify_repro: bool,
    },
    /// Validate kiln.toml without building
    Check {
        #[arg(short = 'f', long = "file", default_value = "kiln.toml")]
        file: PathBuf,
    },
    /// List the images in the store
    Images {
        #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Show an image's config and layers
    Inspect {
        /// NAME[:TAG] or a digest
        reference: String,
        #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Write an image out as an OCI layout, OCI archive or docker archive
    Export {
        /// NAME[:TAG] or a digest
        reference: String,
        /// oci-dir, oci-archive or docker-archive
        #[arg(long)]
        format: String,
        /// The directory (oci-dir) or file to write
        #[arg(long)]
        dest: PathBuf,
    },
    /// Import images from an OCI layout, OCI archive or docker archive
    Import { path: PathBuf },
    /// Remove image tags, and the blobs no tag needs any more
    Rmi {
        #[arg(required = true)]
        references: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let home = cli.home.unwrap_or_else(home::default_home);
    let result = match cli.command {
        Command::Build {
            file,
            images,
            tag,
            no_cache,
            verify_repro,
        } => commands::build(&home, &file, &images, tag, no_cache, verify_repro),
        Command::Check { file } => commands::check(&file),
        Command::Images { output } => commands::images(&home, output),
        Command::Inspect { reference, output } => commands::inspect(&home, &reference, output),
        Command::Export {
            reference,
            format,
            dest,
        } => commands::export(&home, &reference, &format, &dest),
        Command::Import { path } => commands::import(&home, &path),
        Command::Rmi { references } => commands::rmi(&home, &references),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            output::print_error(&e);
            ExitCode::FAILURE
        }
    }
}
