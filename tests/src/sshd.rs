//! A throwaway OpenSSH server on 127.0.0.1 for the multi-machine tests: its
//! own host key, one authorized key, a free port, run in the foreground and
//! killed when dropped.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's openssh-server puts the daemon.
pub const SSHD: &str = "/usr/sbin/sshd";

/// Set (by `.ci/run`) to make a missing sshd a failure instead of a skip.
pub const REQUIRE_ENV: &str = "RFUZZ_REQUIRE_SSHD";

/// A running sshd and the client files to log in to it.
pub struct Sshd {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The user to log in as (the one running the tests).
    pub user: String,
    /// Private key that the server accepts.
    pub key: PathBuf,
    /// A second private key that the server refuses.
    pub refused_key: PathBuf,
    /// Known-hosts file for the client.
    pub known_hosts: PathBuf,
}

fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "rfuzz-test", "-f"])
        .arg(path)
        .stdout(Stdio::null())
        .status()
        .expect("failed to run ssh-keygen");
    assert!(st.success(), "ssh-keygen failed");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("local_addr").port()
}

/// A port nothing listens on (for the unreachable-host case).
pub fn closed_port() -> u16 {
    free_port()
}

impl Sshd {
    /// Starts a server in `dir`, or returns `None` (after saying why) when
    /// sshd is not installed and [`REQUIRE_ENV`] is not set.
    pub fn start(dir: &Path) -> Option<Sshd> {
        let have = |p: &str| Path::new(p).is_file();
        let client = Command::new("ssh").arg("-V").stderr(Stdio::null()).status().is_ok();
        if !have(SSHD) || !client {
            assert!(
                std::env::var_os(REQUIRE_ENV).is_none(),
                "{SSHD} or ssh is missing and {REQUIRE_ENV} is set: apt-get install -y openssh-server openssh-client"
            );
            eprintln!(
                "skipping: {SSHD} or the ssh client is not installed (apt-get install -y openssh-server); \
                 set {REQUIRE_ENV}=1 to fail instead"
            );
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        let (host_key, key, refused_key) = (dir.join("host_key"), dir.join("id_test"), dir.join("id_refused"));
        for k in [&host_key, &key, &refused_key] {
            keygen(k);
        }
        let authorized = dir.join("authorized_keys");
        std::fs::copy(key.with_extension("pub"), &authorized).unwrap();
        let user = String::from_utf8(Command::new("id").arg("-un").output().expect("id -un").stdout)
            .unwrap()
            .trim()
            .to_string();
        // sshd started as root wants its privilege-separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        for _ in 0..5 {
            let port = free_port();
            let config = dir.join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\n\
                     StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                     PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nLogLevel VERBOSE\n",
                    host_key.display(),
                    authorized.display(),
                    dir.join("sshd.pid").display()
                ),
            )
            .unwrap();
            let log = std::fs::File::create(dir.join("sshd.log")).unwrap();
            let mut child = Command::new(SSHD)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("failed to start sshd");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(Sshd { child, port, user, key, refused_key, known_hosts: dir.join("known_hosts") });
                }
                if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("sshd did not start: {}", std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default());
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A hosts-file line for a "host" `name` whose sync dir is `dir` here.
    pub fn host_line(&self, dir: &Path, name: &str) -> String {
        self.line(self.port, dir, name, &self.key)
    }

    /// A hosts-file line with another port or key.
    pub fn line(&self, port: u16, dir: &Path, name: &str, key: &Path) -> String {
        format!(
            "{}@127.0.0.1:{port} {} name={name} identity={} ssh-option=UserKnownHostsFile={} \
             ssh-option=StrictHostKeyChecking=no ssh-option=ConnectTimeout=5\n",
            self.user,
            dir.display(),
            key.display(),
            self.known_hosts.display()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
