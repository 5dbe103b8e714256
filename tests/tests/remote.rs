//! Multi-machine fuzzing: `cargo rfuzz sync-remote` and `run --remote-sync`
//! against a real sshd on 127.0.0.1.
//!
//! Hosts are modelled as separate sync directories on this machine, all
//! reached through the one sshd. Each "host" has its own name: the hosts
//! file gives it with `name=`, and its instances run with `RFUZZ_HOST` set to
//! it, so their `host:` markers say where they run, exactly as instances on
//! machines with distinct host names do without either.

use rfuzz_tests::sshd::{self, Sshd};
use rfuzz_tests::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The fuzzing tests take both cores: one at a time.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// `cargo rfuzz fuzz doors` as instance `id` of host `host`.
fn fuzz(dir: &Path, id: &str, host: &str, seeds: &Path, secs: u32) -> Command {
    let mut c = rfuzz_cmd();
    c.args(["fuzz", "doors", "--no-ui", "--binary"])
        .arg(planted_binary("doors"))
        .arg("-o")
        .arg(dir)
        .args(["-S", id, "--max-total-time", &secs.to_string(), "-i"])
        .arg(seeds)
        .env("RFUZZ_HOST", host)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

fn logged(c: &mut Command, scratch: &Scratch, name: &str) -> Child {
    let log = std::fs::File::create(scratch.path().join(format!("fuzz-{name}.log"))).unwrap();
    c.stderr(log).spawn().unwrap()
}

fn sync_remote(hosts: &Path, local: &Path, host: &str) -> Command {
    let mut c = rfuzz_cmd();
    c.args(["sync-remote", "--once", "--hosts"]).arg(hosts).arg("-o").arg(local).env("RFUZZ_HOST", host);
    c
}

fn entries(queue: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(queue)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("id:"))
                .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

fn stat(instance: &Path, key: &str) -> u64 {
    let text = std::fs::read_to_string(instance.join("fuzzer_stats")).unwrap();
    text.lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.trim() == key).map(|(_, v)| v.trim().parse().unwrap()))
        .unwrap()
}

fn seeds(scratch: &Scratch, name: &str, data: &[u8]) -> PathBuf {
    scratch.write(&format!("seeds-{name}/seed"), data).parent().unwrap().to_path_buf()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn instance_dirs(sync: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(sync)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    v.sort();
    v
}

#[test]
fn sync_remote_spreads_each_hosts_finds_to_the_others_over_ssh() {
    let _guard = heavy();
    let scratch = Scratch::new();
    let Some(sshd) = Sshd::start(&scratch.path().join("ssh")) else { return };
    let (a, b, l) = (scratch.path().join("A"), scratch.path().join("B"), scratch.path().join("L"));
    // Only host A's seed opens the alpha door, only B's the beta door.
    let started = Instant::now();
    let mut runs: Vec<Child> = vec![
        logged(&mut fuzz(&a, "a1", "hostA", &seeds(&scratch, "a", b"alpha door key!!x"), 4), &scratch, "a"),
        logged(&mut fuzz(&b, "b1", "hostB", &seeds(&scratch, "b", b"beta door key!!!x"), 4), &scratch, "b"),
        logged(&mut fuzz(&l, "l1", "hostL", &seeds(&scratch, "l", b"no key at all here"), 4), &scratch, "l"),
    ];
    for (r, log) in runs.iter_mut().zip(["a", "b", "l"]) {
        let st = r.wait().unwrap();
        let log = std::fs::read_to_string(scratch.path().join(format!("fuzz-{log}.log"))).unwrap();
        assert!(st.success(), "{st}: {log}");
    }
    eprintln!("three 4 s instances took {:?}", started.elapsed());
    let a1 = entries(&a.join("a1/queue"));
    let b1 = entries(&b.join("b1/queue"));
    let l1 = entries(&l.join("l1/queue"));
    assert!(a1.len() > 1 && b1.len() > 1 && !l1.is_empty());
    // What must not travel: crashes, hangs, a symlink, an oversized entry.
    scratch.write("A/a1/crashes/id:000000,sig:06,src:000000,op:havoc", "crash");
    scratch.write("A/a1/hangs/id:000000,src:000000,op:havoc", "hang");
    std::os::unix::fs::symlink("/etc/passwd", a.join("a1/queue/id:999990,link")).unwrap();
    scratch.write("A/a1/queue/id:999991,big", vec![b'x'; 2 << 20]);
    // B already holds one of A's entries, with other content.
    let (first, _) = a1.iter().next().unwrap();
    scratch.write("B/hostA-a1/.rfuzz-remote", "hostA\n");
    scratch.write(&format!("B/hostA-a1/queue/{first}"), "precious");
    std::thread::sleep(Duration::from_millis(1100));

    let hosts =
        scratch.write("hosts", format!("# two hosts\n{}{}", sshd.host_line(&a, "hostA"), sshd.host_line(&b, "hostB")));
    let started = Instant::now();
    let o = output(&mut sync_remote(&hosts, &l, "hostL"));
    eprintln!("sync-remote --once over 2 hosts took {:?}", started.elapsed());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("remote sync: 2 of 2 hosts synced"), "{}", stdout(&o));

    // Every host has every other host's entries, under the finder's prefix.
    let same = |got: &BTreeMap<String, Vec<u8>>, want: &BTreeMap<String, Vec<u8>>| {
        assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
        for (k, v) in want {
            if !(k == first && got[k] == b"precious") {
                assert_eq!(&got[k], v, "{k}");
            }
        }
    };
    same(&entries(&l.join("hostA-a1/queue")), &a1);
    same(&entries(&b.join("hostA-a1/queue")), &a1);
    same(&entries(&l.join("hostB-b1/queue")), &b1);
    same(&entries(&a.join("hostB-b1/queue")), &b1);
    same(&entries(&a.join("hostL-l1/queue")), &l1);
    same(&entries(&b.join("hostL-l1/queue")), &l1);
    assert_eq!(std::fs::read(b.join(format!("hostA-a1/queue/{first}"))).unwrap(), b"precious", "not overwritten");
    // Nothing comes back to where it started, nothing is copied twice, and
    // only queue/ travels.
    assert_eq!(instance_dirs(&a), ["a1", "hostB-b1", "hostL-l1"]);
    assert_eq!(instance_dirs(&b), ["b1", "hostA-a1", "hostL-l1"]);
    assert_eq!(instance_dirs(&l), ["hostA-a1", "hostB-b1", "l1"]);
    for copy in [l.join("hostA-a1"), b.join("hostA-a1"), a.join("hostB-b1"), b.join("hostL-l1")] {
        let mut files: Vec<String> =
            std::fs::read_dir(&copy).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        files.sort();
        assert_eq!(files, [".rfuzz-remote", "queue"], "{}", copy.display());
    }
    assert_eq!(std::fs::read_to_string(l.join("hostA-a1/.rfuzz-remote")).unwrap(), "hostA\n");
    assert_eq!(std::fs::read_to_string(a.join("hostL-l1/.rfuzz-remote")).unwrap(), "hostL\n");

    // A second round finds nothing new.
    let o = output(&mut sync_remote(&hosts, &l, "hostL"));
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("0 entries in, 0 out"), "{}", stdout(&o));

    // B's instance, resumed, imports what only A could find.
    let o = output(fuzz(&b, "b1", "hostB", &seeds(&scratch, "b", b"beta door key!!!x"), 3).stderr(Stdio::piped()));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stat(&b.join("b1"), "corpus_imported") > 0);
    let from_a = entries(&b.join("b1/queue")).keys().filter(|n| n.contains(",sync:hostA-a1,")).count();
    assert!(from_a > 0, "b1 imported entries of hostA's a1");

    // sync-status on B shows where each instance lives.
    let o = output(rfuzz_cmd().args(["sync-status", "--json", "-o"]).arg(&b).env("RFUZZ_HOST", "hostB"));
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let by = |id: &str| st["instances"].as_array().unwrap().iter().find(|i| i["id"] == id).unwrap().clone();
    assert_eq!((by("hostA-a1")["remote"].clone(), by("hostA-a1")["host"].clone()), (true.into(), "hostA".into()));
    assert_eq!((by("b1")["remote"].clone(), by("b1")["host"].clone()), (false.into(), "hostB".into()));
    let o = output(rfuzz_cmd().args(["sync-status", "-o"]).arg(&b).env("RFUZZ_HOST", "hostB"));
    let text = stdout(&o);
    let row = text.lines().find(|l| l.starts_with("hostA-a1")).unwrap();
    assert!(row.contains("hostA") && row.contains("remote"), "{text}");
}

#[test]
fn each_failing_host_is_named_with_the_fix_and_the_others_still_sync() {
    let scratch = Scratch::new();
    let Some(sshd) = Sshd::start(&scratch.path().join("ssh")) else { return };
    let (a, l) = (scratch.path().join("A"), scratch.path().join("L"));
    scratch.write("A/a1/fuzzer_setup", "host: good\n");
    scratch.write("A/a1/queue/id:000000,time:0,execs:0,orig:seed", "seed");
    scratch.write("A/a1/queue/id:000001,src:000000,time:10,execs:99,op:havoc,rep:2,+cov", "found");
    std::fs::create_dir_all(&l).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let hosts = scratch.write(
        "hosts",
        [
            sshd.host_line(&a, "good"),
            sshd.line(sshd::closed_port(), &a, "down", &sshd.key),
            sshd.line(sshd.port, &scratch.path().join("A2"), "nokey", &sshd.refused_key),
            sshd.host_line(&scratch.path().join("missing"), "nodir"),
        ]
        .concat(),
    );
    let o = output(&mut sync_remote(&hosts, &l, "hostL"));
    assert_eq!(o.status.code(), Some(5));
    let err = stderr(&o);
    let line = |name: &str| {
        err.lines()
            .find(|l| l.starts_with(&format!("error: host {name} (")))
            .unwrap_or_else(|| panic!("{name}: {err}"))
            .to_string()
    };
    assert!(line("down").contains("cannot reach it over ssh") && line("down").contains("line 2 of"), "{err}");
    assert!(
        line("nokey").contains("ssh refused the key: add your public key to ~/.ssh/authorized_keys there"),
        "{err}"
    );
    assert!(
        line("nodir").contains(&format!("no sync directory {}", scratch.path().join("missing").display())),
        "{err}"
    );
    assert!(line("nodir").contains("mkdir -p"), "{err}");
    assert_eq!(err.lines().filter(|l| l.starts_with("error:")).count(), 3, "{err}");
    assert!(stdout(&o).contains("remote sync: 1 of 4 hosts synced, 2 entries in"), "{}", stdout(&o));
    assert_eq!(entries(&l.join("good-a1/queue")).len(), 2);
    // --dry-run copies nothing.
    std::fs::remove_dir_all(l.join("good-a1")).unwrap();
    let hosts = scratch.write("hosts1", sshd.host_line(&a, "good"));
    let o = output(
        rfuzz_cmd()
            .args(["sync-remote", "--dry-run", "--hosts"])
            .arg(&hosts)
            .arg("-o")
            .arg(&l)
            .env("RFUZZ_HOST", "hostL"),
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("would copy 2 entries of 1 instance from it"), "{}", stdout(&o));
    assert!(!l.join("good-a1").exists());
    // A broken hosts file is a usage error naming the line.
    let bad = scratch.write("bad", "# ok\nhost-without-dir\n");
    let o = output(&mut sync_remote(&bad, &l, "hostL"));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("line 2: expected `[user@]host[:port] SYNC_DIR"), "{}", stderr(&o));
}

/// One raw tar record with the path as given (hostile paths included).
fn raw(path: &str, kind: u8, data: &[u8], link: &str) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..path.len()].copy_from_slice(path.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

#[test]
fn a_hostile_host_cannot_write_outside_the_queue_or_overwrite_anything() {
    let scratch = Scratch::new();
    let l = scratch.path().join("L");
    let victim = scratch.write("outside/victim", "untouched");
    scratch.write("L/evil-e1/.rfuzz-remote", "evil\n");
    scratch.write("L/evil-e1/queue/id:000001,orig:x", "precious");
    scratch.write("L/l1/fuzzer_setup", "host: hostL\n");
    // The "host" is a fake ssh that lists one instance and answers any pull
    // with a hostile archive.
    let v = victim.to_str().unwrap();
    let mut tar = Vec::new();
    tar.extend(raw("e1/queue/id:000000,orig:good", b'0', b"good", ""));
    tar.extend(raw("e1/queue/id:000001,orig:x", b'0', b"overwrite", ""));
    tar.extend(raw("../outside/victim", b'0', b"owned", ""));
    tar.extend(raw(v, b'0', b"owned", ""));
    tar.extend(raw("e1/queue/id:000002,link", b'2', b"", v));
    tar.extend(raw("e1/queue/id:000002,link", b'0', b"through", ""));
    tar.extend(raw("e1/queue/id:000003,hard", b'1', b"", v));
    tar.extend(raw("e1/queue/id:000004,dev", b'3', b"", ""));
    tar.extend(raw("l1/queue/id:000000,orig:into-local", b'0', b"owned", ""));
    tar.extend(raw("e1/crashes/id:000000,sig:06", b'0', b"crash", ""));
    tar.extend([0u8; 1024]);
    scratch.write("fake/hostile.tar", &tar);
    scratch.write(
        "fake/inventory",
        "host evil\nsetup e1 host: evil\nq ./e1/queue/./id:000000,orig:good\nq ./e1/queue/./id:000009,more\nend\n",
    );
    let fake = scratch.write(
        "fake/ssh",
        format!(
            "#!/bin/sh\nfor last; do :; done\ncase \"$last\" in\n*uname*) cat {d}/inventory ;;\n*'tar -cf'*) cat >/dev/null; cat {d}/hostile.tar ;;\n*) cat >/dev/null ;;\nesac\n",
            d = scratch.path().join("fake").display()
        ),
    );
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let hosts = scratch.write("hosts", "evil.example /srv/sync\n");
    let o = output(sync_remote(&hosts, &l, "hostL").env("RFUZZ_SSH", &fake));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("warning: host evil.example: refused 7 entries it sent"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    assert_eq!(
        entries(&l.join("evil-e1/queue")),
        BTreeMap::from([
            ("id:000000,orig:good".to_string(), b"good".to_vec()),
            ("id:000001,orig:x".to_string(), b"precious".to_vec()),
            ("id:000002,link".to_string(), b"through".to_vec()),
        ])
    );
    assert!(!l.join("l1/queue").exists(), "nothing written into a local instance");
    assert!(!l.join("evil-e1/crashes").exists());
    assert_eq!(instance_dirs(&l), ["evil-e1", "l1"]);
}

fn processes_mentioning(needle: &str, except: u32) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_string_lossy().parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let zombie = stat.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            (pid != except && pid != std::process::id() && !zombie && cmd.contains(needle))
                .then(|| format!("{pid}: {cmd}"))
        })
        .collect()
}

#[test]
fn run_with_remote_sync_shares_its_finds_and_ctrl_c_stops_everything() {
    let _guard = heavy();
    let scratch = Scratch::new();
    let Some(sshd) = Sshd::start(&scratch.path().join("ssh")) else { return };
    let (a, l) = (scratch.path().join("A"), scratch.path().join("L"));
    scratch.write("A/a1/fuzzer_setup", "host: hostA\n");
    scratch.write("A/a1/queue/id:000000,time:0,execs:0,orig:alpha", "alpha door key!!room");
    std::thread::sleep(Duration::from_millis(1100));
    let hosts = scratch.write("hosts", sshd.host_line(&a, "hostA"));
    let tmp = scratch.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let log = std::fs::File::create(scratch.path().join("run.log")).unwrap();
    let mut run = rfuzz_cmd()
        .args(["run", "doors", "-j", "1", "--no-ui", "--binary"])
        .arg(planted_binary("doors"))
        .arg("-o")
        .arg(&l)
        .arg("--remote-sync")
        .arg(&hosts)
        .args(["--remote-every", "2s"])
        .env("RFUZZ_HOST", "hostL")
        // The ssh control sockets go here, so a leaked connection would show.
        .env("TMPDIR", &tmp)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while entries(&a.join("hostL-main/queue")).len() < 2 || entries(&l.join("hostA-a1/queue")).is_empty() {
        assert!(
            Instant::now() < deadline,
            "no remote sync within 60 s: {}",
            std::fs::read_to_string(scratch.path().join("run.log")).unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The local instance imports what host A found.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !entries(&l.join("main/queue")).keys().any(|n| n.contains(",sync:hostA-a1,")) {
        assert!(Instant::now() < deadline, "main never imported hostA-a1's entry");
        std::thread::sleep(Duration::from_millis(200));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(scratch.path().join("run.log")).unwrap().contains("remote sync: 1 of 1 host synced")
    {
        assert!(Instant::now() < deadline, "the run never reported a remote sync");
        std::thread::sleep(Duration::from_millis(200));
    }
    // SAFETY: asking the supervisor to stop, as Ctrl-C does.
    unsafe { libc::kill(run.id() as i32, libc::SIGINT) };
    let stopped = Instant::now();
    let status = run.wait().unwrap();
    eprintln!("run stopped {:?} after SIGINT", stopped.elapsed());
    assert_eq!(status.code(), Some(130));
    assert!(stopped.elapsed() < Duration::from_secs(15));
    assert!(l.join(".rfuzz-sync-remote.log").is_file());
    std::thread::sleep(Duration::from_millis(300));
    let left = processes_mentioning(&scratch.path().to_string_lossy(), sshd.pid());
    assert!(left.is_empty(), "processes left behind: {left:?}");
}
