//! Fuzzing flags shared by `fuzz` (one instance) and `run` (N instances),
//! defined once so both accept them alike and `run` passes them on intact.

use clap::Args;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Flags that configure fuzzing instances.
#[derive(Debug, Clone, Args)]
pub struct FuzzingFlags {
    /// Sync directory holding the instances' output (default:
    /// fuzz/sync/<target>/).
    #[arg(short = 'o', long = "output", value_name = "SYNC_DIR")]
    pub output: Option<PathBuf>,
    /// Run the deterministic stage on each new entry (the main instance only
    /// in `run`).
    #[arg(short = 'D', long)]
    pub deterministic: bool,
    /// Seed corpus directory (default: fuzz/corpus/<target>/ if present).
    /// `run` deals the seeds out among its instances.
    #[arg(short = 'i', long = "input", value_name = "DIR")]
    pub input: Option<PathBuf>,
    /// Dictionary file (AFL format) or directory of tokens; repeatable.
    #[arg(short = 'x', long = "dict", value_name = "DICT")]
    pub dict: Vec<PathBuf>,
    /// Per-input timeout in milliseconds (default: calibrated, 20-1000).
    #[arg(short = 't', long = "timeout", value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
    /// Memory limit of the target in MiB: data size, and the largest single
    /// allocation (default: 2048 for one allocation, no total limit).
    #[arg(short = 'm', long = "memory", value_name = "MB", value_parser = clap::value_parser!(u64).range(1..))]
    pub memory: Option<u64>,
    /// Stop after this many seconds; exit 1 if crashes were saved.
    #[arg(long, value_name = "S")]
    pub max_total_time: Option<u64>,
    /// Stop at the first crash saved.
    #[arg(long)]
    pub exit_on_crash: bool,
    /// Plain progress lines instead of the status screen or dashboard.
    #[arg(long)]
    pub no_ui: bool,
    /// Do not learn from the target's compare log (input-to-state solving,
    /// tokens).
    #[arg(long)]
    pub no_cmplog: bool,
    /// Longest input to generate, in bytes (default: 1 MiB).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..=(64 << 20)))]
    pub max_len: Option<u64>,
    /// Random seed, for reproducible runs (`run`: instance k uses seed + k).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Most processes the target may have running at once (per instance);
    /// further spawns fail with EAGAIN and are counted, not treated as crashes.
    /// Whatever the cap, processes a target starts are killed when their
    /// input ends.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_procs: Option<u64>,
}

fn abs(p: &Path) -> std::io::Result<PathBuf> {
    std::path::absolute(p)
}

impl FuzzingFlags {
    /// Checks the paths these flags name, once for `fuzz` and `run` alike,
    /// before anything is started: the seed directory and dictionaries
    /// exist, and `sync_dir` is not a file.
    pub fn check_paths(&self, sync_dir: &Path) -> anyhow::Result<()> {
        use crate::exit::UsageError;
        if sync_dir.exists() && !sync_dir.is_dir() {
            anyhow::bail!(UsageError(format!("-o {} is a file, not a directory", sync_dir.display())));
        }
        if let Some(i) = &self.input
            && !i.exists()
        {
            anyhow::bail!(UsageError(format!("seed directory {} does not exist", i.display())));
        }
        for d in &self.dict {
            if !d.exists() {
                anyhow::bail!(UsageError(format!("dictionary {} does not exist", d.display())));
            }
        }
        Ok(())
    }

    /// These flags with a target's `.options` settings (dictionaries,
    /// `max_len`, `timeout`) filled in where the command line says nothing.
    pub fn with_target_options(&self, o: &rfuzz_instrument::TargetOptions) -> FuzzingFlags {
        let mut f = self.clone();
        f.dict.extend(o.dicts.iter().cloned());
        f.max_len = f.max_len.or(o.max_len);
        f.timeout = f.timeout.or(o.timeout_ms);
        f
    }

    /// The `fuzz` arguments that reproduce these flags for instance `k` of a
    /// run (`-o`, `-i` and `-D` are decided by the run itself).
    pub fn instance_args(&self, k: usize) -> std::io::Result<Vec<OsString>> {
        // Every field is named here, so a new flag cannot be forgotten: the
        // compiler rejects this pattern until it is handled.
        let FuzzingFlags {
            // Decided by the run for each instance.
            output: _,
            deterministic: _,
            input: _,
            dict,
            timeout,
            memory,
            max_total_time,
            exit_on_crash,
            // Instances of a run are `--quiet`; the run draws the dashboard.
            no_ui: _,
            no_cmplog,
            max_len,
            seed,
            max_procs,
        } = self;
        let mut a: Vec<OsString> = Vec::new();
        for d in dict {
            a.push("-x".into());
            a.push(abs(d)?.into());
        }
        let mut opt = |flag: &str, v: Option<u64>| {
            if let Some(v) = v {
                a.push(flag.into());
                a.push(v.to_string().into());
            }
        };
        opt("-t", *timeout);
        opt("-m", *memory);
        opt("--max-total-time", *max_total_time);
        opt("--max-len", *max_len);
        opt("--seed", seed.map(|s| s.wrapping_add(k as u64)));
        opt("--max-procs", *max_procs);
        let mut switch = |flag: &str, on: bool| {
            if on {
                a.push(flag.into());
            }
        };
        switch("--exit-on-crash", *exit_on_crash);
        switch("--no-cmplog", *no_cmplog);
        Ok(a)
    }
}

/// Tells on stderr which settings of `target` come from its `.options` file
/// or dictionary, and what was ignored (one line each).
pub fn report_target_options(target: &str, o: &rfuzz_instrument::TargetOptions) {
    let mut used: Vec<String> = o.dicts.iter().map(|d| format!("dictionary {}", d.display())).collect();
    if let Some(n) = o.max_len {
        used.push(format!("max_len {n}"));
    }
    if let Some(ms) = o.timeout_ms {
        used.push(format!("timeout {ms} ms"));
    }
    if !used.is_empty() {
        let from = o.file.as_ref().map(|f| format!(" (from {})", f.display())).unwrap_or_default();
        eprintln!("note: {target}: {}{from}; command-line flags win", used.join(", "));
    }
    for n in &o.notes {
        eprintln!("note: {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Probe {
        #[command(flatten)]
        flags: FuzzingFlags,
    }

    #[test]
    fn instance_args_round_trip_through_the_parser() {
        let p = Probe::try_parse_from([
            "x",
            "-t",
            "40",
            "-m",
            "512",
            "--max-total-time",
            "60",
            "--exit-on-crash",
            "--no-cmplog",
            "--max-len",
            "4096",
            "--seed",
            "7",
            "--max-procs",
            "5",
            "-x",
            "/d.dict",
        ])
        .unwrap();
        let mut argv: Vec<OsString> = vec!["x".into()];
        argv.extend(p.flags.instance_args(2).unwrap());
        let again = Probe::try_parse_from(argv).unwrap().flags;
        assert_eq!(again.timeout, Some(40));
        assert_eq!(again.memory, Some(512));
        assert_eq!(again.max_total_time, Some(60));
        assert!(again.exit_on_crash && again.no_cmplog);
        assert_eq!(again.max_len, Some(4096));
        assert_eq!(again.seed, Some(9), "instance 2 of a run gets seed + 2");
        assert_eq!(again.dict, vec![PathBuf::from("/d.dict")]);
        assert_eq!(again.max_procs, Some(5));
    }

    #[test]
    fn options_files_fill_in_what_the_command_line_leaves_out() {
        let o = rfuzz_instrument::TargetOptions {
            dicts: vec![PathBuf::from("/t.dict")],
            max_len: Some(100),
            timeout_ms: Some(25_000),
            ..Default::default()
        };
        let given = Probe::try_parse_from(["x", "-t", "40"]).unwrap().flags.with_target_options(&o);
        assert_eq!(given.timeout, Some(40), "the command line wins");
        assert_eq!(given.max_len, Some(100));
        assert_eq!(given.dict, vec![PathBuf::from("/t.dict")]);
    }
}
