//! The hosts file of `sync-remote`, and durations like `30m`.
//!
//! One host per line, `#` starts a comment:
//!
//! ```text
//! [user@]host[:port]  SYNC_DIR  [name=NAME] [prefix=PREFIX] [identity=KEYFILE] [ssh-option=KEY=VALUE]...
//! ```
//!
//! * `host` is whatever `ssh` accepts (a name, an address, a `~/.ssh/config`
//!   alias); an IPv6 address with a port is written `[addr]:port`.
//! * `SYNC_DIR` is the sync directory there: absolute, or relative to the
//!   remote user's home directory (`~/` is allowed).
//! * `name=` is the host's name as its instances record it in the `host:`
//!   line of their `fuzzer_setup` (default: what `uname -n` prints there).
//! * `prefix=` is put before the ids of that host's instances where they are
//!   copied to (default: its name up to the first dot, then `-`, so `main` of
//!   `build2` becomes `build2-main`); `prefix=` with no value keeps the ids.
//! * `identity=` is the private key to log in with (only that key is
//!   offered); `ssh-option=` passes `-o KEY=VALUE` to `ssh` (repeatable).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// One remote host of the hosts file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    /// Line number in the hosts file (1-based), for messages.
    pub line: usize,
    /// Login user (`ssh`'s default when absent).
    pub user: Option<String>,
    /// Host name, address or ssh alias (IPv6 without brackets).
    pub host: String,
    /// Port (`ssh`'s default when absent).
    pub port: Option<u16>,
    /// Sync directory there (absolute or relative to the home directory).
    pub dir: String,
    /// Its name in `host:` markers, when not what `uname -n` prints.
    pub name: Option<String>,
    /// Prefix of its instance ids where they are copied to.
    pub prefix: Option<String>,
    /// Private key file.
    pub identity: Option<PathBuf>,
    /// Extra `-o KEY=VALUE` options of `ssh`.
    pub ssh_options: Vec<String>,
}

impl HostSpec {
    /// The `ssh` destination: `user@host`.
    pub fn destination(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.host),
            None => self.host.clone(),
        }
    }

    /// How messages name the host: `build2 (ci@10.0.0.2:2222)`.
    pub fn label(&self) -> String {
        let mut addr = self.destination();
        if let Some(p) = self.port {
            addr = if self.host.contains(':') {
                format!("{}[{}]:{p}", self.user.as_ref().map(|u| format!("{u}@")).unwrap_or_default(), self.host)
            } else {
                format!("{addr}:{p}")
            };
        }
        match &self.name {
            Some(n) => format!("{n} ({addr})"),
            None => addr,
        }
    }
}

/// Characters of a host name (`name=`, and the markers of copies).
pub fn valid_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['-', '.'])
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// The default prefix for the instances of host `name`: its first label,
/// with characters that instance ids cannot hold replaced by `_`, then `-`.
pub fn default_prefix(name: &str) -> String {
    let first = name.split('.').next().unwrap_or_default();
    let mut p: String = first
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .take(20)
        .collect();
    if p.is_empty() || p.starts_with('-') {
        p.insert(0, 'h');
    }
    p.push('-');
    p
}

const USAGE: &str = "expected `[user@]host[:port] SYNC_DIR [name=NAME] [prefix=PREFIX] [identity=KEYFILE] [ssh-option=KEY=VALUE]`, e.g. `ci@build2 /home/ci/fuzz/sync/parser`";

/// Splits `[user@]host[:port]`.
fn parse_destination(s: &str) -> Result<(Option<String>, String, Option<u16>), String> {
    let (user, rest) = match s.rsplit_once('@') {
        Some((u, r)) => (Some(u.to_string()), r),
        None => (None, s),
    };
    if let Some(u) = &user
        && (u.is_empty() || u.starts_with('-') || u.contains(['@', '/', '\'', '"', '\\']))
    {
        return Err(format!("bad user name in `{s}`"));
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or_else(|| format!("`{s}`: `[` without `]`"))?;
        match after {
            "" => (addr.to_string(), None),
            p => (addr.to_string(), Some(p.strip_prefix(':').ok_or_else(|| format!("`{s}`: expected `]:PORT`"))?)),
        }
    } else if rest.matches(':').count() == 1 {
        let (h, p) = rest.split_once(':').expect("one colon");
        (h.to_string(), Some(p))
    } else {
        // No colon, or an IPv6 address without a port.
        (rest.to_string(), None)
    };
    if host.is_empty() || host.starts_with('-') || host.contains(['/', '\'', '"', '\\', '[', ']']) {
        return Err(format!("bad host in `{s}`"));
    }
    let port = match port {
        None => None,
        Some(p) => Some(match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("bad port `{p}` in `{s}`: expected 1-65535")),
        }),
    };
    Ok((user, host, port))
}

/// The remote sync directory as the remote shell gets it (`~/x` → `x`).
fn parse_dir(s: &str) -> Result<String, String> {
    if s == "~" || s == "~/" {
        return Ok(".".to_string());
    }
    if let Some(rest) = s.strip_prefix("~/") {
        return Ok(rest.to_string());
    }
    if s.starts_with('~') {
        return Err(format!("sync directory `{s}`: write it absolute or relative to the home directory (`~/...`)"));
    }
    Ok(s.to_string())
}

fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(p),
    }
}

fn parse_line(line: usize, text: &str) -> Result<Option<HostSpec>, String> {
    let content = text.split('#').next().unwrap_or_default();
    let fields: Vec<&str> = content.split_whitespace().collect();
    if fields.is_empty() {
        return Ok(None);
    }
    if fields.len() < 2 {
        return Err(USAGE.to_string());
    }
    let (user, host, port) = parse_destination(fields[0])?;
    let dir = parse_dir(fields[1])?;
    let mut spec =
        HostSpec { line, user, host, port, dir, name: None, prefix: None, identity: None, ssh_options: Vec::new() };
    for opt in &fields[2..] {
        let Some((key, value)) = opt.split_once('=') else {
            return Err(format!("unexpected `{opt}`: {USAGE}"));
        };
        let once = |set: bool| if set { Err(format!("`{key}=` given twice")) } else { Ok(()) };
        match key {
            "name" => {
                once(spec.name.is_some())?;
                if !valid_host_name(value) {
                    return Err(format!("name=`{value}`: use 1-64 letters, digits, `.`, `-` or `_`"));
                }
                spec.name = Some(value.to_string());
            }
            "prefix" => {
                once(spec.prefix.is_some())?;
                if value.len() > 24
                    || value.starts_with('.')
                    || !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(format!("prefix=`{value}`: use at most 24 letters, digits, `-` or `_`"));
                }
                spec.prefix = Some(value.to_string());
            }
            "identity" => {
                once(spec.identity.is_some())?;
                let p = expand_home(value);
                if !p.is_file() {
                    return Err(format!("identity file {} does not exist", p.display()));
                }
                spec.identity = Some(p);
            }
            "ssh-option" => {
                let Some((k, v)) = value.split_once('=') else {
                    return Err(format!(
                        "ssh-option=`{value}`: expected ssh-option=KEY=VALUE, e.g. ssh-option=ConnectTimeout=5"
                    ));
                };
                if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric()) || v.is_empty() {
                    return Err(format!("ssh-option=`{value}`: expected ssh-option=KEY=VALUE"));
                }
                spec.ssh_options.push(value.to_string());
            }
            _ => return Err(format!("unknown option `{key}=`: expected name=, prefix=, identity= or ssh-option=")),
        }
    }
    Ok(Some(spec))
}

/// Parses a hosts file's text; errors name the line.
pub fn parse(text: &str) -> Result<Vec<HostSpec>, String> {
    let mut hosts: Vec<HostSpec> = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let n = i + 1;
        let Some(spec) = parse_line(n, l).map_err(|e| format!("line {n}: {e}"))? else { continue };
        if let Some(prev) =
            hosts.iter().find(|h| h.destination() == spec.destination() && h.port == spec.port && h.dir == spec.dir)
        {
            return Err(format!("line {n}: the same host and directory as line {}", prev.line));
        }
        if let Some(name) = &spec.name
            && let Some(prev) = hosts.iter().find(|h| h.name.as_ref() == Some(name))
        {
            return Err(format!("line {n}: name={name} is already the name of line {}", prev.line));
        }
        hosts.push(spec);
    }
    if hosts.is_empty() {
        return Err(format!("no hosts in it: {USAGE}"));
    }
    Ok(hosts)
}

/// Reads and parses a hosts file.
pub fn load(path: &Path) -> Result<Vec<HostSpec>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("failed to read hosts file {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("hosts file {} {e}", path.display()))
}

/// Parses a period such as `30m`, `90s`, `2h`, `1h30m` or `1day`
/// (humantime's syntax); at least one second.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = |why: String| format!("invalid duration `{s}`: {why}; expected e.g. 30m, 90s, 2h or 1h30m");
    let d = humantime::parse_duration(s.trim()).map_err(|e| bad(e.to_string()))?;
    if d < Duration::from_secs(1) {
        return Err(bad("shorter than a second".into()));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_with_options_and_comments() {
        let key = tempfile::NamedTempFile::new().unwrap();
        let text = format!(
            "# fuzz farm\n\nci@build2.example.com /home/ci/sync   # the big one\n\
             fuzz@10.0.0.7:2222 ~/fuzz/sync name=gpu1 prefix=g1- identity={} ssh-option=ConnectTimeout=5\n\
             [::1]:22 /srv/sync prefix=\nhost3 relative/dir\n",
            key.path().display()
        );
        let hosts = parse(&text).unwrap();
        assert_eq!(hosts.len(), 4);
        assert_eq!(hosts[0].destination(), "ci@build2.example.com");
        assert_eq!((hosts[0].line, hosts[0].port, hosts[0].dir.as_str()), (3, None, "/home/ci/sync"));
        let h = &hosts[1];
        assert_eq!((h.user.as_deref(), h.host.as_str(), h.port), (Some("fuzz"), "10.0.0.7", Some(2222)));
        assert_eq!(h.dir, "fuzz/sync");
        assert_eq!(h.name.as_deref(), Some("gpu1"));
        assert_eq!(h.prefix.as_deref(), Some("g1-"));
        assert_eq!(h.identity.as_deref(), Some(key.path()));
        assert_eq!(h.ssh_options, vec!["ConnectTimeout=5".to_string()]);
        assert_eq!(h.label(), "gpu1 (fuzz@10.0.0.7:2222)");
        assert_eq!((hosts[2].host.as_str(), hosts[2].port, hosts[2].prefix.as_deref()), ("::1", Some(22), Some("")));
        assert_eq!(hosts[2].label(), "[::1]:22");
        assert_eq!(hosts[3].label(), "host3");
    }

    #[test]
    fn rejects_bad_lines_naming_them() {
        let err = |t: &str| parse(t).unwrap_err();
        assert!(err("a /x\nlonely\n").starts_with("line 2: expected `[user@]host"), "{}", err("a /x\nlonely\n"));
        assert!(err("h:99999 /x").contains("line 1: bad port `99999`"));
        assert!(err("-oProxyCommand=x /x").contains("bad host"));
        assert!(err("h /x colour=red").contains("unknown option `colour=`"));
        assert!(err("h /x name=a/b").contains("name=`a/b`"));
        assert!(err("h /x prefix=../").contains("prefix="));
        assert!(err("h /x identity=/nonexistent/key").contains("identity file /nonexistent/key does not exist"));
        assert!(err("h /x ssh-option=Foo").contains("ssh-option=KEY=VALUE"));
        assert!(err("h /x\nh /x").contains("line 2: the same host and directory as line 1"));
        assert!(err("a /x name=n\nb /x name=n").contains("line 2: name=n is already"));
        assert!(err("h ~bob/x").contains("home directory"));
        assert!(err("# nothing\n").contains("no hosts"));
        assert!(err("h /x name=a name=b").contains("given twice"));
    }

    #[test]
    fn the_readme_example_parses() {
        let readme = include_str!("../../../../README.md");
        let section = &readme[readme.find("### Fuzzing on several machines").unwrap()..];
        let block = section.split("```text\n").nth(1).unwrap().split("```").next().unwrap();
        let hosts = parse(block).unwrap();
        assert_eq!(hosts.len(), 2);
        assert_eq!(hosts[1].label(), "gpu1 (fuzz@10.0.0.7:2222)");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1day"), Ok(Duration::from_secs(86400)));
        for bad in ["", "30", "0s", "500ms", "m", "1x", "-5m", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_prefixes_are_valid_id_starts() {
        assert_eq!(default_prefix("build2.example.com"), "build2-");
        assert_eq!(default_prefix("hostA"), "hostA-");
        assert_eq!(default_prefix("-x"), "h-x-");
        assert!(crate::sync::layout::validate_instance_id(&format!("{}main", default_prefix("a.b"))).is_ok());
    }
}
