//! Command-line flags (clap definitions only; no logic). The flags are the
//! ones dbt users already type.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "dbt-compatible analytics engineering: extract, stage, build, test, document",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// The project directory (holds dbt_project.yml); default: the current directory.
    #[arg(long, global = true, env = "DBT_PROJECT_DIR")]
    pub project_dir: Option<PathBuf>,
    /// Directory with profiles.yml (also SLUICE_PROFILES_DIR / DBT_PROFILES_DIR).
    #[arg(long, global = true)]
    pub profiles_dir: Option<PathBuf>,
    /// Target in the profile (default: the profile's `target:`).
    #[arg(short = 't', long, global = true)]
    pub target: Option<String>,
    /// Profile name (default: `profile:` in dbt_project.yml).
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Vars as YAML or JSON, e.g. '{bucket_minutes: 15}'.
    #[arg(long, global = true)]
    pub vars: Option<String>,
    /// Only errors and data on stdout.
    #[arg(short = 'q', long, global = true)]
    pub quiet: bool,
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Disable colour (also NO_COLOR).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Treat warnings as errors.
    #[arg(long, global = true)]
    pub warn_error: bool,
    /// Write artifacts and compiled SQL here instead of the project's
    /// `target-path` (also DBT_TARGET_PATH).
    #[arg(long, global = true, env = "DBT_TARGET_PATH")]
    pub target_path: Option<PathBuf>,
    #[command(flatten)]
    pub dbt_only: DbtOnlyFlags,
}

/// dbt's flags that have no effect in sluice (its parser is always complete
/// and fast, it sends no usage data, …), accepted so that scripts written
/// for dbt run unchanged.
#[derive(Debug, Args, Clone, Default)]
pub struct DbtOnlyFlags {
    #[arg(long, global = true, hide = true)]
    partial_parse: bool,
    #[arg(long, global = true, hide = true)]
    no_partial_parse: bool,
    #[arg(long, global = true, hide = true)]
    version_check: bool,
    #[arg(long, global = true, hide = true)]
    no_version_check: bool,
    #[arg(long, global = true, hide = true)]
    send_anonymous_usage_stats: bool,
    #[arg(long, global = true, hide = true)]
    no_send_anonymous_usage_stats: bool,
    #[arg(long, global = true, hide = true)]
    use_colors: bool,
    #[arg(long, global = true, hide = true)]
    no_use_colors: bool,
    #[arg(long, global = true, hide = true)]
    write_json: bool,
    #[arg(long, global = true, hide = true)]
    no_write_json: bool,
    #[arg(long, global = true, hide = true)]
    cache_selected_only: bool,
    #[arg(long, global = true, hide = true)]
    no_cache_selected_only: bool,
    #[arg(long, global = true, hide = true)]
    populate_cache: bool,
    #[arg(long, global = true, hide = true)]
    no_populate_cache: bool,
    #[arg(long, global = true, hide = true)]
    introspect: bool,
    #[arg(long, global = true, hide = true)]
    no_introspect: bool,
    #[arg(long, global = true, hide = true)]
    static_parser: bool,
    #[arg(long, global = true, hide = true)]
    no_static_parser: bool,
    #[arg(long, global = true, hide = true)]
    use_experimental_parser: bool,
    #[arg(long, global = true, hide = true)]
    print: bool,
    #[arg(long, global = true, hide = true)]
    no_print: bool,
    #[arg(short = 'd', long, global = true, hide = true)]
    debug: bool,
    #[arg(long, global = true, hide = true)]
    log_level: Option<String>,
    #[arg(long, global = true, hide = true)]
    log_level_file: Option<String>,
    #[arg(long, global = true, hide = true)]
    log_format_file: Option<String>,
    #[arg(long, global = true, hide = true)]
    log_path: Option<PathBuf>,
    #[arg(long, global = true, hide = true)]
    printer_width: Option<usize>,
    #[arg(long, global = true, hide = true)]
    warn_error_options: Option<String>,
    #[arg(short = 'r', long, global = true, hide = true)]
    record_timing_info: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args, Clone, Default)]
pub struct SelectArgs {
    /// Nodes to include (dbt selection syntax: `+model`, `tag:x`, `path:…`, …).
    #[arg(short = 's', long = "select", alias = "models", num_args = 1.., action = clap::ArgAction::Append)]
    pub select: Vec<String>,
    /// Nodes to exclude.
    #[arg(long, num_args = 1.., action = clap::ArgAction::Append)]
    pub exclude: Vec<String>,
    /// A named selection from selectors.yml (instead of --select/--exclude).
    #[arg(long)]
    pub selector: Option<String>,
    /// A previous run's target directory, for `state:` selectors.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Only these resource types (model, seed, snapshot, test, unit_test,
    /// source, exposure, analysis).
    #[arg(long = "resource-type", alias = "resource-types", num_args = 1.., action = clap::ArgAction::Append)]
    pub resource_type: Vec<String>,
    /// Leave these resource types out (`build --exclude-resource-type unit_test`).
    #[arg(long = "exclude-resource-type", num_args = 1.., action = clap::ArgAction::Append)]
    pub exclude_resource_type: Vec<String>,
    /// How tests follow the nodes they test: eager (default), cautious,
    /// buildable or empty.
    #[arg(long, env = "DBT_INDIRECT_SELECTION", value_parser = ["eager", "cautious", "buildable", "empty"])]
    pub indirect_selection: Option<String>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct RunArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Worker threads (default: the target's `threads`).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Rebuild incremental models and seeds from scratch.
    #[arg(long)]
    pub full_refresh: bool,
    /// Stop at the first failure.
    #[arg(short = 'x', long)]
    pub fail_fast: bool,
    /// Resolve unselected parents that are missing here to their relations in `--state`.
    #[arg(long, requires = "state")]
    pub defer: bool,
    /// Build with no data: every ref() and source() reads zero rows, so the
    /// SQL and the schemas are checked against the warehouse cheaply.
    #[arg(long)]
    pub empty: bool,
    /// Microbatch models: build the batches from this time on (UTC,
    /// `2024-09-01` or `2024-09-01 12:00:00`) instead of `begin` / the
    /// lookback.
    #[arg(long, value_name = "TIME")]
    pub event_time_start: Option<String>,
    /// Microbatch models: build the batches up to this time (UTC) instead
    /// of now.
    #[arg(long, value_name = "TIME")]
    pub event_time_end: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new project from the template.
    Init {
        /// Directory to create.
        dir: PathBuf,
    },
    /// Show the resolved profile and target, and test the connection.
    Debug,
    /// Install the packages packages.yml lists into dbt_packages/.
    Deps,
    /// Load and render the project; write target/manifest.json.
    Parse,
    /// Render SQL into target/compiled/.
    Compile {
        #[command(flatten)]
        select: SelectArgs,
        /// Render one SQL statement and print it.
        #[arg(long)]
        inline: Option<String>,
    },
    /// List resources.
    #[command(alias = "list")]
    Ls {
        #[command(flatten)]
        select: SelectArgs,
        #[arg(long, short = 'o', value_enum, default_value_t = LsOutput::Selector)]
        output: LsOutput,
    },
    /// Load CSV seeds.
    Seed(RunArgs),
    /// Build models.
    Run(RunArgs),
    /// Build snapshots (type-2 history tables).
    Snapshot(RunArgs),
    /// Run data and unit tests.
    Test(RunArgs),
    /// Seeds, snapshots, models and their tests in DAG order.
    Build(RunArgs),
    /// Preview the rows a node (or an inline query) returns.
    Show {
        #[command(flatten)]
        select: SelectArgs,
        /// Preview this SQL instead (Jinja allowed).
        #[arg(long)]
        inline: Option<String>,
        /// At most this many rows.
        #[arg(long, default_value_t = 5)]
        limit: usize,
        #[arg(long, short = 'o', value_enum, default_value_t = ShowOutput::Text)]
        output: ShowOutput,
    },
    /// Call a macro against the warehouse.
    RunOperation {
        /// The macro (`name` or `package.name`).
        #[arg(value_name = "MACRO")]
        name: String,
        /// Its keyword arguments, a YAML or JSON mapping.
        #[arg(long)]
        args: Option<String>,
    },
    /// Delete the clean-targets.
    Clean,
    /// Re-run the nodes that failed or were skipped in the last run_results.json.
    Retry(RunArgs),
    /// Source freshness: `sluice source freshness`.
    Source {
        #[command(subcommand)]
        command: SourceCommand,
    },
    /// Extract selected sources from their APIs into the lake.
    Extract(ExtractArgs),
    /// Stage complete lake runs into the warehouse's raw tables.
    Stage(ExtractArgs),
    /// The lineage docs site.
    Docs {
        #[command(subcommand)]
        command: DocsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum SourceCommand {
    /// Check `loaded_at_field` against `warn_after`/`error_after`; write target/sources.json.
    Freshness {
        #[command(flatten)]
        select: SelectArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum DocsCommand {
    /// Write target/catalog.json, target/lineage.json and the site target/index.html.
    Generate {
        /// Do not query the warehouse for column types.
        #[arg(long)]
        empty_catalog: bool,
    },
    /// Serve target/ over HTTP.
    Serve {
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
}

#[derive(Debug, Args, Clone, Default)]
pub struct ExtractArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Print what would be requested (extract) or staged (stage); change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// extract: ignore the high-water mark; stage: rebuild the raw tables from every run.
    #[arg(long)]
    pub full_refresh: bool,
    /// Save every live API response into this directory (replayable with `replay:`).
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LsOutput {
    /// `package.path.name` (dbt's default).
    Selector,
    Name,
    Path,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShowOutput {
    Text,
    Json,
}
