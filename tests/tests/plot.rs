//! `cargo rfuzz plot`: charts from every instance's plot_data, ours and
//! AFL++'s, and a clear message when there is nothing to draw.

use rfuzz_tests::*;
use std::path::Path;

const CHARTS: [&str; 6] = ["edges", "exec_speed", "corpus", "imports", "crashes", "hangs"];

/// Width and height from a PNG's IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n", "{} is not a PNG", path.display());
    assert_eq!(&b[12..16], b"IHDR");
    let be = |i: usize| u32::from_be_bytes(b[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

/// The texts of an SVG's `<text>` elements (legends, axis labels).
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.trim().to_string()))
        .collect()
}

/// An instance directory as AFL++ 4.x leaves it: its plot_data header has two
/// columns more than ours, no fuzzer_setup, and one entry imported from main.
fn add_aflpp_instance(sync: &Path) {
    let dir = sync.join("afl");
    std::fs::create_dir_all(dir.join("queue")).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    std::fs::write(dir.join("fuzzer_stats"), format!("start_time        : {now}\nlast_update       : {now}\n"))
        .unwrap();
    std::fs::write(
        dir.join("plot_data"),
        "# relative_time, cycles_done, cur_item, corpus_count, pending_total, pending_favs, map_size, saved_crashes, saved_hangs, max_depth, execs_per_sec, total_execs, edges_found, total_crashes, servers_count\n\
         0, 0, 0, 1, 1, 1, 0.01%, 0, 0, 1, 900.00, 900, 4, 0, 0\n\
         2, 0, 0, 2, 1, 0, 0.02%, 0, 1, 2, 950.00, 2800, 6, 0, 0\n\
         4, 1, 1, 2, 0, 0, 0.02%, 0, 1, 2, 990.00, 4800, 6, 0, 0\n",
    )
    .unwrap();
    std::fs::write(dir.join("queue").join("id:000000,time:0,execs:0,orig:seed"), b"x").unwrap();
    std::fs::write(dir.join("queue").join("id:000001,sync:main,src:000000"), b"y").unwrap();
}

#[test]
fn plot_draws_two_rfuzz_instances_and_an_aflpp_one() {
    planted_binary("pairs");
    planted_binary("trivial");
    let scratch = Scratch::new();
    let sync = scratch.path().join("sync");
    let o = output(
        rfuzz_cmd()
            .args(["run", "pairs", "trivial", "--no-ui", "-j", "2", "--max-total-time", "6", "-o"])
            .arg(&sync)
            .current_dir(planted_dir()),
    );
    assert_eq!(o.status.code(), Some(0));
    for id in ["main", "s01"] {
        let text = std::fs::read_to_string(sync.join(id).join("plot_data")).unwrap();
        assert!(text.lines().count() >= 2, "{id} wrote no plot_data row:\n{text}");
    }
    add_aflpp_instance(&sync);
    // An instance that has not written a row yet is named, not fatal.
    scratch.write("sync/late/plot_data", "# relative_time, cycles_done, cur_item, corpus_count\n");

    let out = scratch.path().join("charts");
    let o = output(rfuzz_cmd().args(["plot", "-o"]).arg(&sync).arg("--out").arg(&out));
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(last_stdout_line(&o), out.join("index.html").display().to_string());
    assert!(String::from_utf8_lossy(&o.stderr).contains("late: plot_data has no rows yet"));

    let index = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(index.contains("late: plot_data has no rows yet"));
    for c in CHARTS {
        assert_eq!(png_size(&out.join(format!("{c}.png"))), (1000, 420), "{c}.png");
        let svg = std::fs::read_to_string(out.join(format!("{c}.svg"))).unwrap();
        assert!(svg.contains("width=\"1000\"") && svg.contains("height=\"420\""), "{c}.svg size");
        assert!(index.contains(&format!("src=\"{c}.svg\"")) && index.contains(&format!("href=\"{c}.png\"")));
    }
    // Each instance is a line of the edges chart, plus the one for all.
    let edges = svg_texts(&std::fs::read_to_string(out.join("edges.svg")).unwrap());
    for legend in ["main", "s01", "afl", "all instances (best)", "Edges found"] {
        assert!(edges.iter().any(|t| t == legend), "edges.svg lacks the text {legend}: {edges:?}");
    }
    // The imports chart knows the AFL++ instance's import from its queue.
    let imports = svg_texts(&std::fs::read_to_string(out.join("imports.svg")).unwrap());
    assert!(imports.iter().any(|t| t == "afl") && imports.iter().any(|t| t == "all instances (sum)"), "{imports:?}");
}

#[test]
fn plot_of_empty_plot_data_is_one_line_and_no_charts() {
    let scratch = Scratch::new();
    scratch.write("sync/main/plot_data", "");
    scratch.write(
        "sync/s01/plot_data",
        "# relative_time, cycles_done, cur_item, corpus_count, pending_total, pending_favs, map_size, saved_crashes, saved_hangs, max_depth, execs_per_sec, total_execs, edges_found\n",
    );
    let out = scratch.path().join("charts");
    let o = output(rfuzz_cmd().args(["plot", "-o"]).arg(scratch.path().join("sync")).arg("--out").arg(&out));
    assert_eq!(o.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("nothing to plot") && stderr.contains("no instance has plot data yet"));
    assert!(o.stdout.is_empty());
    assert!(!out.join("index.html").exists());
}

#[test]
fn plot_refuses_an_output_dir_that_would_look_like_an_instance() {
    let scratch = Scratch::new();
    scratch.write("sync/main/plot_data", "");
    let sync = scratch.path().join("sync");
    let o = output(rfuzz_cmd().args(["plot", "-o"]).arg(&sync).arg("--out").arg(sync.join("charts")));
    assert_eq!(o.status.code(), Some(2));
    assert!(!sync.join("charts").exists());
}

#[test]
fn plot_watch_redraws_until_sigterm() {
    let scratch = Scratch::new();
    let sync = scratch.path().join("sync");
    let header = "# relative_time, cycles_done, cur_item, corpus_count, pending_total, pending_favs, map_size, saved_crashes, saved_hangs, max_depth, execs_per_sec, total_execs, edges_found\n";
    scratch.write("sync/main/plot_data", format!("{header}0, 0, 0, 1, 0, 0, 0.01%, 0, 0, 1, 10.00, 10, 3\n"));
    let out = scratch.path().join("charts");
    let mut child = rfuzz_cmd()
        .args(["plot", "--watch", "1", "-o"])
        .arg(&sync)
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let index = out.join("index.html");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::fs::read_to_string(&index).is_ok_and(|h| h.contains("http-equiv=\"refresh\" content=\"1\"")) {
        assert!(std::time::Instant::now() < deadline, "no index.html from --watch");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // A row appended later shows in a later round: the edges chart is redrawn.
    let first = std::fs::read(out.join("edges.svg")).unwrap();
    std::fs::write(
        sync.join("main/plot_data"),
        format!(
            "{header}0, 0, 0, 1, 0, 0, 0.01%, 0, 0, 1, 10.00, 10, 3\n5, 0, 0, 2, 0, 0, 0.01%, 0, 0, 1, 10.00, 60, 9\n"
        ),
    )
    .unwrap();
    while std::fs::read(out.join("edges.svg")).unwrap() == first {
        assert!(std::time::Instant::now() < deadline, "--watch did not redraw");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // SAFETY: kill(2) on the pid of a child this test started and has not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}
