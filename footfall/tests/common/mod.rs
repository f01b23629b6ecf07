//! Runs the real `footfall` binary as a child process on a free loopback port.
#![allow(dead_code)]

pub mod kafka;
pub mod live;
/// The MongoDB-protocol test server of the processor's tests, shared rather than copied.
#[path = "../../../processor/tests/common/mongo.rs"]
pub mod mongo;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "test-admin-token";
pub const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub struct Footfall {
    pub child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    port: u16,
}

impl Footfall {
    /// Starts `footfall standalone` on `data_dir` and waits until `/livez` answers.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Footfall {
        Self::start_on(data_dir, free_port(), extra)
    }

    pub fn start_on(data_dir: &Path, port: u16, extra: &[&str]) -> Footfall {
        Self::start_as(
            Command::new(env!("CARGO_BIN_EXE_footfall")),
            data_dir,
            port,
            extra,
        )
    }

    /// Starts it through `setpriv` without `CAP_SYS_NICE`, as an unprivileged user or a
    /// container without `cap_add: [SYS_NICE]` runs it; `None` where `setpriv` is missing.
    pub fn start_without_cap_sys_nice(data_dir: &Path, extra: &[&str]) -> Option<Footfall> {
        Command::new("setpriv").arg("--version").output().ok()?;
        let mut setpriv = Command::new("setpriv");
        setpriv
            .args(["--inh-caps=-sys_nice", "--bounding-set=-sys_nice", "--"])
            .arg(env!("CARGO_BIN_EXE_footfall"));
        Some(Self::start_as(setpriv, data_dir, free_port(), extra))
    }

    /// `command` runs the binary (`setpriv` execs it, so the child's pid is the server's).
    fn start_as(mut command: Command, data_dir: &Path, port: u16, extra: &[&str]) -> Footfall {
        let child = command
            .args(["standalone", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--admin-token", TOKEN, "--log", "warn"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn footfall");
        let f = Footfall {
            child,
            base: format!("http://127.0.0.1:{port}"),
            data_dir: data_dir.to_path_buf(),
            port,
        };
        f.wait_ready();
        f
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if ureq::get(&format!("{}/livez", self.base)).call().is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("footfall did not become live on {}", self.base);
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// SIGTERM and wait: a graceful stop.
    pub fn stop(mut self) -> ExitStatus {
        signal(&self.child, "TERM");
        wait_exit(&mut self.child)
    }

    /// SIGTERM, wait, and what it printed: (exit status, stdout, stderr).
    pub fn stop_with_output(mut self) -> (ExitStatus, String, String) {
        signal(&self.child, "TERM");
        let status = wait_exit(&mut self.child);
        let (out, err) = output_of(&mut self.child);
        (status, out, err)
    }

    /// SIGKILL: the process gets no chance to flush anything.
    pub fn kill9(mut self) {
        signal(&self.child, "KILL");
        let _ = wait_exit(&mut self.child);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Registers `site` through the API (events are accepted only for registered sites;
    /// `default` and `demo` exist out of the box).
    pub fn add_site(&self, site: &str) {
        add_site(&self.base, site);
    }

    /// Waits until the store has taken everything the journal acknowledged so far: the
    /// journal's backlog gauge (refreshed every 250 ms) reads 0 in a sample taken after the
    /// last acknowledgement. Live metrics are published before the store's commit, so they
    /// are complete then too.
    pub fn wait_caught_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        std::thread::sleep(Duration::from_millis(300));
        while metric(&self.url("/metrics"), "footfall_journal_backlog_bytes") != 0.0 {
            assert!(
                Instant::now() < deadline,
                "the store never caught up with the journal"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn summary(&self, site: &str) -> serde_json::Value {
        let (status, body) = get(
            &self.url(&format!("/api/stats/summary?site={site}")),
            Some(TOKEN),
        );
        assert_eq!(status, 200, "{body}");
        body
    }
}

impl Drop for Footfall {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(child: &Child, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status();
}

fn wait_exit(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        assert!(Instant::now() < deadline, "footfall did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A counter or gauge from the `/metrics` text at `url`; 0 when absent.
pub fn metric(url: &str, name: &str) -> f64 {
    let text = ureq::get(url)
        .call()
        .ok()
        .and_then(|r| r.into_string().ok())
        .unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (n, v) = l.split_once(' ')?;
            (n == name).then(|| v.trim().parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// Output of a process that has exited.
pub fn output_of(child: &mut Child) -> (String, String) {
    let mut out = String::new();
    let mut err = String::new();
    if let Some(s) = child.stdout.as_mut() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(s) = child.stderr.as_mut() {
        let _ = s.read_to_string(&mut err);
    }
    (out, err)
}

fn into_parts(result: Result<ureq::Response, ureq::Error>) -> (u16, serde_json::Value) {
    match result {
        Ok(resp) | Err(ureq::Error::Status(_, resp)) => {
            let status = resp.status();
            let body = resp.into_string().unwrap_or_default();
            (
                status,
                serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
            )
        }
        Err(e) => panic!("transport error: {e}"),
    }
}

pub fn get(url: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut req = ureq::get(url);
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    into_parts(req.call())
}

pub fn post(url: &str, content_type: &str, body: &str) -> (u16, serde_json::Value) {
    into_parts(
        ureq::post(url)
            .set("Content-Type", content_type)
            .set("User-Agent", CHROME)
            .send_string(body),
    )
}

/// Registers `site` on the server at `base` (standalone, or a processor) through
/// `POST /api/sites` with the test token.
pub fn add_site(base: &str, site: &str) {
    let resp = ureq::post(&format!("{base}/api/sites"))
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .send_string(&format!(r#"{{"site":"{site}"}}"#));
    let status = match resp {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(s, r)) => panic!("{s}: {}", r.into_string().unwrap_or_default()),
        Err(e) => panic!("cannot register {site}: {e}"),
    };
    assert!(status == 200 || status == 201, "{status}");
}

/// A POST as a browser behind a trusted proxy sends it: `X-Forwarded-For: ip`.
pub fn post_from(url: &str, ip: &str, body: &str) -> (u16, serde_json::Value) {
    into_parts(
        ureq::post(url)
            .set("Content-Type", "text/plain")
            .set("User-Agent", CHROME)
            .set("X-Forwarded-For", ip)
            .send_string(body),
    )
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

/// A GET with a client-side timeout: the status (`None` when no answer came in time or the
/// connection failed) and how long it took.
pub fn timed_get(url: &str, token: Option<&str>, timeout_secs: u64) -> (Option<u16>, Duration) {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(timeout_secs))
        .build();
    let mut req = agent.get(url);
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    let started = Instant::now();
    let status = match req.call() {
        Ok(resp) | Err(ureq::Error::Status(_, resp)) => {
            let status = resp.status();
            let _ = resp.into_string();
            Some(status)
        }
        Err(_) => None,
    };
    (status, started.elapsed())
}

/// The median of some durations (of probes: robust to one slow outlier on a busy machine).
pub fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

/// Resident memory of a process in KiB (`VmRSS` in `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// A whole answer: status, headers (lower-case names) and body text.
pub struct Answer {
    pub status: u16,
    pub headers: std::collections::BTreeMap<String, String>,
    pub text: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// The `(value, count)` rows of a breakdown answer, in order.
    pub fn rows(&self) -> Vec<(String, u64)> {
        self.json()["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| {
                (
                    r["value"].as_str().expect("value").to_string(),
                    r["count"].as_u64().expect("count"),
                )
            })
            .collect()
    }
}

/// Any request, with an optional Bearer token and JSON body; any status is an [`Answer`].
pub fn call(method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> Answer {
    let mut req = ureq::request(method, url);
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    let result = match body {
        Some(b) => req.set("Content-Type", "application/json").send_string(b),
        None => req.call(),
    };
    let resp = match result {
        Ok(resp) | Err(ureq::Error::Status(_, resp)) => resp,
        Err(e) => panic!("transport error: {e}"),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .filter_map(|n| {
            let v = resp.header(&n)?.to_string();
            Some((n.to_ascii_lowercase(), v))
        })
        .collect();
    let text = resp.into_string().unwrap_or_default();
    Answer {
        status,
        headers,
        text,
    }
}
