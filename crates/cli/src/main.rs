//! `kiln`: the command line. Arguments and output formatting only; the work happens in
//! the component crates.

mod client;
mod clock;
mod commands;
mod home;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::clock::duration_arg;
use crate::commands::events::EventsArgs;
use crate::commands::logs::LogsArgs;
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
    /// Run the control plane: serve the API on HOME/kiln.sock and keep instances converged
    Daemon {
        /// The address instances listen on
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// The ports handed to instances, FIRST-LAST
        #[arg(long, default_value = "20000-29999", value_parser = kiln_daemon::parse_range)]
        ports: (u16, u16),
        /// This deployment's environment name, given to instances
        #[arg(long, default_value = "default")]
        environment: String,
    },
    /// Run the data plane: serve the routes the daemon pushes (it starts this itself)
    Proxy {
        /// Worker threads
        #[arg(long, default_value_t = 2)]
        workers: usize,
    },
    /// The per-instance shim the daemon runs (internal)
    #[command(name = "__shim", hide = true)]
    Shim { dir: PathBuf },
    /// Deploy the services of kiln.toml and wait until they are ready
    Apply {
        /// The spec file
        #[arg(short = 'f', long = "file", default_value = "kiln.toml")]
        file: PathBuf,
        /// Print the plan and change nothing
        #[arg(long)]
        dry_run: bool,
        /// Return once the plan is accepted instead of waiting for it to be carried out
        #[arg(long)]
        detach: bool,
        /// How long to wait for the services to converge
        #[arg(long, default_value = "5m", value_parser = duration_arg)]
        timeout: Duration,
    },
    /// Stop a service's instances and remove it from the desired state
    Destroy {
        service: String,
        /// Return once the request is accepted instead of waiting for the instances to stop
        #[arg(long)]
        detach: bool,
        /// How long to wait for the instances to stop
        #[arg(long, default_value = "5m", value_parser = duration_arg)]
        timeout: Duration,
    },
    /// List the instances, of one service or all
    Ps {
        service: Option<String>,
        #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Show the daemon and the state of each service
    Status {
        #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Show what the daemon did: applies, starts, health changes, exits
    Events {
        #[arg(long)]
        service: Option<String>,
        #[arg(long)]
        instance: Option<String>,
        /// Only events this recent (30s, 10m, 1h30m)
        #[arg(long, value_parser = duration_arg)]
        since: Option<Duration>,
        /// Keep printing events as they happen
        #[arg(short = 'f', long)]
        follow: bool,
        /// text, or json (one event per line)
        #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Compare the instances with the desired state; exit status 1 when they differ
    Drift {
        #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Show or steer a service's rollout (started by an apply that changes a service
    /// with a strategy)
    Rollout {
        #[command(subcommand)]
        action: RolloutAction,
    },
    /// Build a small app in three versions, canary v2 under load, watch v3 rolled back
    /// (a private daemon in a temporary directory; needs root and runc)
    Demo {
        /// The cleanup guard of a running demo (internal)
        #[arg(long, hide = true, value_name = "DIR")]
        guard: Option<PathBuf>,
    },
    /// Show a service's or an instance's logs, read from disk (works without the daemon)
    Logs {
        /// A service name (all its instances, past ones too) or an instance id
        target: String,
        /// Keep printing lines as they are written
        #[arg(short = 'f', long)]
        follow: bool,
        /// Only lines this recent (30s, 10m, 1h30m)
        #[arg(long, value_parser = duration_arg)]
        since: Option<Duration>,
        /// Only lines containing this text
        #[arg(long, value_name = "TEXT")]
        grep: Option<String>,
        /// text, or json (the stored lines)
        #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
        /// Only the last N lines (before following)
        #[arg(long, value_name = "N")]
        tail: Option<usize>,
    },
}

#[derive(Debug, Subcommand)]
enum RolloutAction {
    /// Phase, step, traffic split, analysis and what it waits for
    Status {
        service: String,
        #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Go to the next step now (ends a manual pause or the rest of a timed one)
    Promote { service: String },
    /// Move traffic back to the stable version, then remove the new instances
    Abort { service: String },
    /// Stop the clock: no step advances until `resume`
    Pause { service: String },
    /// Carry on after `pause`
    Resume { service: String },
    /// Return to the previous version the same way (traffic first, confirmed)
    Undo { service: String },
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
        Command::Daemon {
            host,
            ports,
            environment,
        } => commands::daemon::daemon(&home, host, ports, environment),
        Command::Proxy { workers } => commands::daemon::proxy(&home, workers),
        // The shim owns the process and its stdout: its exit code is returned as is.
        Command::Shim { dir } => return commands::daemon::shim(&dir),
        Command::Apply {
            file,
            dry_run,
            detach,
            timeout,
        } => commands::apply::apply(&home, &file, dry_run, detach, timeout),
        Command::Destroy {
            service,
            detach,
            timeout,
        } => commands::apply::destroy(&home, &service, detach, timeout),
        Command::Ps { service, output } => commands::status::ps(&home, service.as_deref(), output),
        Command::Status { output } => commands::status::status(&home, output),
        Command::Events {
            service,
            instance,
            since,
            follow,
            output,
        } => commands::events::events(
            &home,
            EventsArgs {
                service,
                instance,
                since,
                follow,
                output,
            },
        ),
        Command::Drift { output } => commands::events::drift(&home, output),
        Command::Rollout { action } => match action {
            RolloutAction::Status { service, output } => {
                commands::rollout::status(&home, &service, output)
            }
            RolloutAction::Promote { service } => {
                commands::rollout::command(&home, &service, "promote")
            }
            RolloutAction::Abort { service } => {
                commands::rollout::command(&home, &service, "abort")
            }
            RolloutAction::Pause { service } => {
                commands::rollout::command(&home, &service, "pause")
            }
            RolloutAction::Resume { service } => {
                commands::rollout::command(&home, &service, "resume")
            }
            RolloutAction::Undo { service } => commands::rollout::command(&home, &service, "undo"),
        },
        Command::Demo { guard } => commands::demo::demo(guard),
        Command::Logs {
            target,
            follow,
            since,
            grep,
            output,
            tail,
        } => commands::logs::logs(
            &home,
            LogsArgs {
                target,
                follow,
                since,
                grep,
                output,
                tail,
            },
        ),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            output::print_error(&e);
            ExitCode::FAILURE
        }
    }
}
