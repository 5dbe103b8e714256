//! `cargo rfuzz`: parses the command line and dispatches. Also acts as the
//! `RUSTC_WRAPPER` of instrumented builds when cargo invokes it in that role.

use cargo_rfuzz::{cli, exit};
use clap::Parser;

fn main() {
    if std::env::var_os(rfuzz_instrument::wrapper::WRAPPER_ENV).is_some() {
        let err = rfuzz_instrument::wrapper::run(std::env::args_os().skip(1).collect());
        eprintln!("error: failed to run rustc through the cargo-rfuzz wrapper: {err}");
        std::process::exit(exit::USAGE);
    }
    // `cargo rfuzz X` runs `cargo-rfuzz rfuzz X`; accept `cargo-rfuzz X` too.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_none_or(|a| a != "rfuzz") {
        args.insert(1, "rfuzz".into());
    }
    let parsed = cli::Cli::parse_from(args);
    let code = match cli::run(parsed) {
        Ok(code) => code,
        Err(err) => {
            if err
                .chain()
                .any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
            {
                exit::SUCCESS
            } else {
                eprintln!("error: {err:#}");
                cli::exit_code_for(&err)
            }
        }
    };
    std::process::exit(code);
}
