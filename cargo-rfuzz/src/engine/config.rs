//! A resolved, checked configuration of one instance.

use super::executor::TargetCommand;
use std::path::PathBuf;
use std::time::Duration;

/// Main or secondary instance (AFL's `-M` / `-S`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `-M`: writes `is_main_node`; runs the deterministic stage with `-D`.
    Main,
    /// `-S`: no deterministic stage unless `-D` is given explicitly.
    Secondary,
}

/// How the instance reports progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiMode {
    /// Full-screen status on a terminal.
    Screen,
    /// A progress line every few seconds (CI, logs, `--no-ui`).
    Plain,
    /// Nothing but errors and crash notices (instances under `run`).
    Quiet,
}

/// Which protocol to drive the target with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutorChoice {
    /// Our direct protocol for rfuzz targets, AFL++'s for others.
    Auto,
    /// The AFL++ protocol even for rfuzz targets.
    Afl,
}

/// Mutation settings that differ between instances of one run, so N
/// instances explore more than N copies of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flavor {
    /// Highest power of two of stacked havoc edits.
    pub havoc_stack_pow: u32,
    /// One mutant in `splice_one_in` starts from a splice of two entries.
    pub splice_one_in: usize,
    /// Energy multiplier in percent.
    pub energy_percent: u32,
    /// Power schedule.
    pub schedule: Schedule,
}

/// How much energy an entry gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// AFL++'s default: rarely executed paths get exponentially more.
    Fast,
    /// Energy from coverage size and speed only (AFL's classic "exploit").
    Exploit,
    /// Constant energy; selection still favours rare paths.
    Explore,
}

impl Flavor {
    /// The flavour of the `n`-th instance of a run (0 is the main).
    ///
    /// The main instance stacks at most 8 edits (a mean of 3.75, near
    /// libFuzzer's 1 to 5): on chrono 0.4.19's format parser, where each find
    /// is one or two edits from the last, stacks of up to 16 took 40% longer
    /// to the first crash (tests/bench/RESULTS.md).
    pub fn for_instance(n: usize) -> Flavor {
        match n % 4 {
            0 => Flavor { havoc_stack_pow: 3, splice_one_in: 10, energy_percent: 100, schedule: Schedule::Fast },
            1 => Flavor { havoc_stack_pow: 3, splice_one_in: 6, energy_percent: 100, schedule: Schedule::Explore },
            2 => Flavor { havoc_stack_pow: 7, splice_one_in: 20, energy_percent: 200, schedule: Schedule::Exploit },
            _ => Flavor { havoc_stack_pow: 5, splice_one_in: 4, energy_percent: 100, schedule: Schedule::Fast },
        }
    }
}

/// Everything an instance needs, checked before any I/O.
#[derive(Debug, Clone)]
pub struct Config {
    /// The sync directory (`-o`).
    pub sync_dir: PathBuf,
    /// Instance id (`-M`/`-S` value).
    pub id: String,
    /// Main or secondary.
    pub role: Role,
    /// Run the deterministic stage (`-D`).
    pub deterministic: bool,
    /// Seed directory (`-i`); `None` or empty means built-in seeds.
    pub seeds: Option<PathBuf>,
    /// Use only seed files `i` with `i % n == k` (`(k, n)`), when there are
    /// at least `n`: instances of one run start from different seeds.
    pub seed_shard: Option<(usize, usize)>,
    /// User dictionaries (`-x`).
    pub dicts: Vec<PathBuf>,
    /// Per-input timeout (`-t`); `None` means calibrated.
    pub timeout: Option<Duration>,
    /// Memory limit of the target in MiB (`-m`).
    pub mem_limit_mb: Option<u64>,
    /// Stop after this long (`--max-total-time`).
    pub max_total_time: Option<Duration>,
    /// Stop at the first saved crash (`--exit-on-crash`).
    pub exit_on_crash: bool,
    /// The target and its arguments.
    pub target: TargetCommand,
    /// Name shown in the UI and stats (the fuzz target's name).
    pub banner: String,
    /// Progress reporting.
    pub ui: UiMode,
    /// Learn tokens and solve compares from the target's compare log.
    pub cmplog: bool,
    /// Count partial progress on wide compares as coverage.
    pub cmp_progress: bool,
    /// Run the havoc stage (off only to test the other stages alone).
    pub havoc: bool,
    /// Longest input to generate.
    pub max_len: usize,
    /// Random seed (`--seed`), for reproducible runs.
    pub rng_seed: Option<u64>,
    /// Import entries from other instances of the sync directory.
    pub sync: bool,
    /// Mutation flavour.
    pub flavor: Flavor,
    /// Executor selection.
    pub executor: ExecutorChoice,
    /// This instance's command line (recorded in fuzzer_setup and stats).
    pub command_line: String,
    /// Command that reproduces a crash, with `{}` for the file path.
    pub repro_command: String,
}
