//! `realbugs NAME [FILE...]`: runs files (or stdin) through one harness, for checking
//! reproducers and seeds without a fuzzer.
use std::io::Read;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(name) = args.next() else {
        eprintln!("usage: realbugs NAME [FILE...]; names:");
        for (n, _) in realbugs::BUGS {
            eprintln!("  {n}");
        }
        std::process::exit(2);
    };
    let Some(run) = realbugs::by_name(&name) else {
        eprintln!("unknown bug `{name}`");
        std::process::exit(2);
    };
    let files: Vec<String> = args.collect();
    if files.is_empty() {
        let mut data = Vec::new();
        std::io::stdin().read_to_end(&mut data).expect("failed to read stdin");
        run(&data);
    }
    for f in files {
        let data = std::fs::read(&f).unwrap_or_else(|e| panic!("failed to read {f}: {e}"));
        run(&data);
    }
}
