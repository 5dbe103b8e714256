//! Command-line surface of the binary (the end-to-end behaviour is tested in
//! the workspace's `tests/` package, which runs this same binary).

use std::process::Command;

fn rfuzz(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cargo-rfuzz")).args(args).output().expect("run cargo-rfuzz")
}

#[test]
fn invoked_by_cargo_or_directly() {
    let via_cargo = rfuzz(&["rfuzz", "--help"]);
    let direct = rfuzz(&["--help"]);
    assert!(via_cargo.status.success() && direct.status.success());
    assert_eq!(via_cargo.stdout, direct.stdout);
    let help = String::from_utf8_lossy(&via_cargo.stdout);
    for sub in ["init", "add", "list", "build"] {
        assert!(help.contains(sub), "help lists {sub}");
    }
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let out = rfuzz(&["rfuzz", "frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}
