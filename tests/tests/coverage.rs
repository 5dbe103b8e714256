//! `cargo rfuzz coverage`: line coverage of the planted fixture from hand-made
//! corpora and sync directories, and after a short real fuzzing run.

use rfuzz_tests::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn put(dir: &Path, rel: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, data).unwrap();
    p
}

/// One `SF:` record of an lcov file.
#[derive(Debug, Default)]
struct Record {
    file: PathBuf,
    da: BTreeMap<u32, u64>,
    fnda: BTreeMap<String, u64>,
    fn_lines: BTreeMap<String, u32>,
    brda: Vec<(u32, String)>,
    counts: BTreeMap<String, u64>,
}

/// Parses an lcov tracefile, checking every line's form and each record's
/// sums on the way (a malformed file fails the test).
fn parse_lcov(text: &str) -> Vec<Record> {
    let mut out = Vec::new();
    let mut cur: Option<Record> = None;
    let num = |s: &str| s.parse::<u64>().unwrap_or_else(|_| panic!("not a number: {s:?}"));
    for line in text.lines() {
        if line == "end_of_record" {
            let r = cur.take().expect("end_of_record without SF");
            assert_eq!(r.counts["LF"], r.da.len() as u64, "LF counts the DA lines of {}", r.file.display());
            assert_eq!(r.counts["LH"], r.da.values().filter(|&&n| n > 0).count() as u64, "LH of {}", r.file.display());
            assert!(r.counts["LH"] <= r.counts["LF"]);
            assert_eq!(r.counts["FNF"], r.fn_lines.len() as u64);
            assert_eq!(r.counts["FNH"], r.fnda.values().filter(|&&n| n > 0).count() as u64);
            assert_eq!(r.counts["BRF"], r.brda.len() as u64);
            for (l, _) in &r.brda {
                assert!(r.da.contains_key(l), "BRDA of line {l} without a DA line");
            }
            out.push(r);
            continue;
        }
        let (key, value) = line.split_once(':').unwrap_or_else(|| panic!("malformed lcov line {line:?}"));
        match key {
            "TN" => {
                assert!(cur.is_none(), "TN inside a record");
                cur = Some(Record::default());
            }
            "SF" => cur.as_mut().expect("SF after TN").file = PathBuf::from(value),
            "FN" => {
                let (l, name) = value.split_once(',').expect("FN:<line>,<name>");
                let r = cur.as_mut().unwrap();
                assert!(r.fn_lines.insert(name.to_string(), num(l) as u32).is_none(), "function names are unique");
            }
            "FNDA" => {
                let (n, name) = value.split_once(',').expect("FNDA:<count>,<name>");
                let r = cur.as_mut().unwrap();
                assert!(r.fn_lines.contains_key(name), "FNDA of an unknown function {name}");
                r.fnda.insert(name.to_string(), num(n));
            }
            "DA" => {
                let (l, n) = value.split_once(',').expect("DA:<line>,<count>");
                assert!(cur.as_mut().unwrap().da.insert(num(l) as u32, num(n)).is_none(), "one DA per line");
            }
            "BRDA" => {
                let parts: Vec<&str> = value.split(',').collect();
                assert_eq!(parts.len(), 4, "BRDA:<line>,<block>,<branch>,<taken>");
                assert!(parts[3] == "-" || parts[3].parse::<u64>().is_ok());
                cur.as_mut().unwrap().brda.push((num(parts[0]) as u32, parts[3].to_string()));
            }
            "FNF" | "FNH" | "BRF" | "BRH" | "LF" | "LH" => {
                cur.as_mut().unwrap().counts.insert(key.to_string(), num(value));
            }
            _ => panic!("unexpected lcov line {line:?}"),
        }
    }
    assert!(cur.is_none(), "the last record is closed");
    out
}

/// The line of `planted/src/lib.rs` that contains `needle` (1-based).
fn line_of(needle: &str) -> u32 {
    let src = std::fs::read_to_string(planted_dir().join("src/lib.rs")).unwrap();
    src.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle} not in lib.rs")) as u32 + 1
}

/// `DA` counts of `planted/src/lib.rs`.
fn lib_lines(lcov: &str) -> BTreeMap<u32, u64> {
    let records = parse_lcov(lcov);
    records.into_iter().find(|r| r.file.ends_with("src/lib.rs")).expect("a record of src/lib.rs").da
}

/// Lines of `magic_steps`: the body of each `if`, and the panic.
struct Steps {
    first_body: u32,
    second_body: u32,
    third_body: u32,
    panic: u32,
}

fn steps() -> Steps {
    Steps {
        first_body: line_of("if data.get(1) == Some(&b'U')"),
        second_body: line_of("if data.get(2) == Some(&b'Z')"),
        third_body: line_of("if data.get(3) == Some(&b'Z')"),
        panic: line_of("panic!(\"planted bug: magic reached step by step\")"),
    }
}

/// Every file under `dir` with its content.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(e.path());
            } else {
                out.insert(e.path(), std::fs::read(e.path()).unwrap_or_default());
            }
        }
    }
    out
}

fn coverage(args: &[&str], extra: &[&Path]) -> std::process::Output {
    output(rfuzz_cmd().arg("coverage").args(args).args(extra).current_dir(planted_dir()))
}

#[test]
fn coverage_marks_the_lines_a_corpus_reaches_and_the_panic_line_only_with_crashes() {
    let s = Scratch::new();
    let corpus = s.path().join("corpus");
    put(&corpus, "f", b"F");
    put(&corpus, "fu", b"FU");
    put(&corpus, "other", b"xyz");
    let sync = s.path().join("sync");
    put(&sync, "main/queue/id:000000,orig:fu", b"FU"); // a duplicate of the corpus file
    put(&sync, "main/crashes/id:000000,sig:06,src:000000,time:1,execs:1,op:havoc,rep:1,panic", b"FUZZ");
    put(&sync, "main/crashes/README.txt", b"not an input");
    std::os::unix::fs::symlink("/etc/passwd", sync.join("main/queue/id:000001,src:000000")).unwrap();
    let before = snapshot(&sync);
    let lines = steps();

    let out = s.path().join("report");
    let o = coverage(
        &["magic_steps", "--format", "lcov,json,text", "-i"],
        &[&corpus, Path::new("-o"), &sync, Path::new("--out"), &out],
    );
    assert_eq!(o.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("3 inputs replayed (1 duplicate files skipped), 0 crashed, 0 timed out"), "{stdout}");
    let da = lib_lines(&std::fs::read_to_string(out.join("lcov.info")).unwrap());
    assert_eq!(da.get(&lines.first_body), Some(&2), "F and FU pass the first compare: {da:?}");
    assert_eq!(da.get(&lines.second_body), Some(&1), "FU passes the second: {da:?}");
    assert_eq!(da.get(&lines.third_body), Some(&0), "no input passes the third: {da:?}");
    assert_eq!(da.get(&lines.panic), Some(&0), "{da:?}");
    assert!(!out.join("index.html").exists(), "--format without html writes no pages");

    let o = coverage(
        &["magic_steps", "--crashes", "--format", "lcov", "-i"],
        &[&corpus, Path::new("-o"), &sync, Path::new("--out"), &out],
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("4 inputs replayed (1 duplicate files skipped), 1 crashed"));
    let da = lib_lines(&std::fs::read_to_string(out.join("lcov.info")).unwrap());
    assert_eq!(da.get(&lines.third_body), Some(&1), "{da:?}");
    assert_eq!(da.get(&lines.panic), Some(&1), "the crash's panic line counts: {da:?}");
    assert_eq!(da.get(&lines.first_body), Some(&3), "{da:?}");
    assert_eq!(snapshot(&sync), before, "the sync directory is only read");
}

#[test]
fn a_crashing_and_a_hanging_input_lose_nothing_of_the_others() {
    let s = Scratch::new();
    let corpus = s.path().join("corpus");
    for (name, data) in [("f", &b"F"[..]), ("fu", b"FU"), ("hang", b"H!"), ("crash", b"FUZZ"), ("other", b"abc")] {
        put(&corpus, name, data);
    }
    let out = s.path().join("report");
    let start = std::time::Instant::now();
    let o = coverage(&["steps_or_sleep", "-t", "500", "-j", "2", "-i"], &[&corpus, Path::new("--out"), &out]);
    assert_eq!(o.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("5 inputs replayed, 1 crashed, 1 timed out (their coverage is not counted)"), "{stdout}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("coverage.json")).unwrap()).unwrap();
    assert_eq!(json["runs"]["crashed"], 1);
    assert_eq!(json["runs"]["timed_out"], 1);
    assert_eq!(json["runs"]["replayed"], 5);
    let lines = steps();
    let da = lib_lines(&std::fs::read_to_string(out.join("lcov.info")).unwrap());
    assert_eq!(da.get(&lines.first_body), Some(&3), "F, FU and the crash: {da:?}");
    assert_eq!(da.get(&lines.second_body), Some(&2), "{da:?}");
    assert_eq!(da.get(&lines.panic), Some(&1), "the crashing input's coverage counts: {da:?}");
    let sleep = line_of("std::thread::sleep(std::time::Duration::from_secs(60))");
    assert_eq!(da.get(&sleep), Some(&0), "the hang's coverage does not count: {da:?}");
    assert!(start.elapsed() < std::time::Duration::from_secs(300), "the hang was killed at the limit");
    // The page of lib.rs shows the source, escaped, and the counts.
    let index = std::fs::read_to_string(out.join("index.html")).unwrap();
    let page =
        index.split("href=\"").filter_map(|p| p.split('"').next()).find(|h| h.ends_with("src_lib.rs.html")).unwrap();
    let html = std::fs::read_to_string(out.join(page)).unwrap();
    assert!(html.contains("Some(&amp;b&#39;F&#39;)"), "the source, escaped");
    assert!(html.contains(&format!("<tr id=\"L{}\" class=\"miss\"", sleep)), "the sleep line is red");
    assert!(html.contains(&format!("<tr id=\"L{}\" class=\"hit\"", lines.panic)), "the panic line is green");
}

#[test]
fn coverage_after_a_short_fuzzing_run_writes_html_lcov_and_json() {
    let s = Scratch::new();
    let sync = s.path().join("sync");
    let o = output(
        rfuzz_cmd()
            .args(["fuzz", "magic_steps", "--no-ui", "--max-total-time", "4", "-o"])
            .arg(&sync)
            .current_dir(planted_dir()),
    );
    assert!(matches!(o.status.code(), Some(0 | 1)), "a bounded run ends with 0 or 1 (crash found)");
    let queue = std::fs::read_dir(sync.join("main/queue")).unwrap().count();
    assert!(queue > 0);
    let o = coverage(&["magic_steps", "-o"], &[&sync]);
    assert_eq!(o.status.code(), Some(0));
    // Default output: beside the sync directory.
    let out = s.path().join("sync-coverage");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains(&out.join("index.html").display().to_string()), "prints where the report is: {stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("TOTAL")), "{stdout}");

    let lcov = std::fs::read_to_string(out.join("lcov.info")).unwrap();
    let records = parse_lcov(&lcov);
    assert!(!records.is_empty());
    for r in &records {
        assert!(r.file.starts_with(planted_dir()), "only the crate's own files: {}", r.file.display());
        let n = std::fs::read_to_string(&r.file).unwrap().lines().count() as u32;
        assert!(r.da.keys().all(|&l| l >= 1 && l <= n), "DA lines exist in {}", r.file.display());
    }
    let lib = records.iter().find(|r| r.file.ends_with("src/lib.rs")).unwrap();
    assert!(lib.fnda.get("planted::magic_steps").is_some_and(|&n| n > 0), "{:?}", lib.fnda);
    assert!(lib.da[&steps().first_body] > 0, "the fuzzer's queue has an F");

    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("coverage.json")).unwrap()).unwrap();
    let lh: u64 = records.iter().map(|r| r.counts["LH"]).sum();
    assert_eq!(json["totals"]["lines_hit"].as_u64(), Some(lh), "JSON and lcov agree");
    assert_eq!(json["runs"]["replayed"].as_u64(), Some(queue as u64), "every queue entry replayed once");

    let index = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(index.starts_with("<!DOCTYPE html>") && index.contains("src/lib.rs"));
    let pages: Vec<&str> = index.split("href=\"").skip(1).filter_map(|p| p.split('"').next()).collect();
    assert!(!pages.is_empty());
    for p in pages {
        assert!(out.join(p).is_file(), "{p} is written");
    }
}

#[test]
fn coverage_without_inputs_or_with_bad_arguments_says_what_to_do() {
    let s = Scratch::new();
    let empty = s.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = coverage(&["magic_steps", "-o"], &[&empty]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no inputs for magic_steps") && err.contains("cargo rfuzz run magic_steps"), "{err}");

    let o = coverage(&["no_such_target", "-o"], &[&empty]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown fuzz target"));

    put(&empty, "main/queue/id:000000,orig:a", b"F");
    let o = coverage(&["magic_steps", "-o"], &[&empty, Path::new("--out"), &empty.join("report")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("never writes to"));
    assert!(!empty.join("report").exists());

    // A target that crashes before any input runs: exit 4, and why.
    let o = coverage(&["init_crash", "-o"], &[&empty, Path::new("--out"), &s.path().join("report")]);
    assert_eq!(o.status.code(), Some(4));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("crashes at start-up") && err.contains("planted bug: init fails"), "{err}");
}

#[test]
fn a_cargo_fuzz_project_gets_a_report_of_its_default_corpus() {
    let s = Scratch::new();
    let krate = s.new_lib_crate("wild");
    std::fs::write(
        krate.join("src/lib.rs"),
        "pub fn parse(data: &[u8]) -> u32 {\n    if data.first() == Some(&b'a') {\n        return 1;\n    }\n    \
         if data.first() == Some(&b'b') {\n        return 2;\n    }\n    0\n}\n",
    )
    .unwrap();
    s.write(
        "wild/fuzz/Cargo.toml",
        "[package]\nname = \"wild-fuzz\"\nversion = \"0.0.0\"\npublish = false\nedition = \"2021\"\n\n\
         [package.metadata]\ncargo-fuzz = true\n\n[dependencies]\nlibfuzzer-sys = \"0.4\"\n\n\
         [dependencies.wild]\npath = \"..\"\n\n[workspace]\nmembers = [\".\"]\n\n\
         [[bin]]\nname = \"parse\"\npath = \"fuzz_targets/parse.rs\"\ntest = false\ndoc = false\n",
    );
    s.write(
        "wild/fuzz/fuzz_targets/parse.rs",
        "#![no_main]\nuse libfuzzer_sys::fuzz_target;\n\nfuzz_target!(|data: &[u8]| {\n    wild::parse(data);\n});\n",
    );
    s.write("wild/fuzz/corpus/parse/a", "a");
    s.write("wild/fuzz/corpus/parse/z", "z");
    let o = output(rfuzz_cmd().args(["coverage", "parse", "--format", "lcov,text"]).current_dir(&krate));
    assert_eq!(o.status.code(), Some(0));
    let lcov = std::fs::read_to_string(krate.join("fuzz/coverage/parse/lcov.info")).unwrap();
    let records = parse_lcov(&lcov);
    let lib = records.iter().find(|r| r.file.ends_with("wild/src/lib.rs")).expect("the crate's lib.rs is reported");
    assert_eq!(lib.da.get(&3), Some(&1), "`return 1` reached by `a`: {:?}", lib.da);
    assert_eq!(lib.da.get(&6), Some(&0), "`return 2` reached by nothing: {:?}", lib.da);
    assert_eq!(lib.da.get(&8), Some(&1), "`0` reached by `z`: {:?}", lib.da);
    assert!(records.iter().all(|r| r.file.starts_with(&krate)), "no dependency or runtime files");
}

#[test]
fn lcov_info_is_accepted_by_genhtml() {
    let genhtml =
        std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("genhtml").is_file()));
    if !have_or_skip(genhtml, "genhtml", "apt-get install lcov", "RFUZZ_REQUIRE_LCOV") {
        return;
    }
    let s = Scratch::new();
    let corpus = s.path().join("corpus");
    put(&corpus, "fu", b"FU");
    put(&corpus, "x", b"x");
    let out = s.path().join("report");
    let o = coverage(&["magic_steps", "--format", "lcov", "-i"], &[&corpus, Path::new("--out"), &out]);
    assert_eq!(o.status.code(), Some(0));
    let g = output(
        std::process::Command::new("genhtml")
            .args(["--branch-coverage", "-o"])
            .arg(s.path().join("genhtml"))
            .arg(out.join("lcov.info")),
    );
    assert!(g.status.success(), "genhtml reads lcov.info");
    // (genhtml's errors fail it; its warnings, e.g. about inconsistent
    // records, go to stderr.)
    let said = String::from_utf8_lossy(&g.stderr).to_lowercase();
    assert!(!said.contains("warning"), "without complaints: {said}");
    assert!(s.path().join("genhtml/index.html").is_file());
}
