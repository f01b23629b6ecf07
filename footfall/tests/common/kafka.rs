//! A real Kafka-protocol broker (tansu) and real `footfall collector` / `footfall processor`
//! processes for the distributed-mode tests. No mocks: every byte goes over 127.0.0.1.
//!
//! tansu comes from `.ci/install-kafka.sh` (or `FOOTFALL_TANSU`); the S3 server for durable
//! broker storage (moto) from the same script (or `FOOTFALL_MOTO_VENV`). When they are
//! missing the tests fail and say how to install them — they never skip silently.
#![allow(dead_code)]

use std::fs::File;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, TOKEN};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("footfall/ has a parent")
        .to_path_buf()
}

fn tansu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("FOOTFALL_TANSU") {
        return PathBuf::from(path);
    }
    let path = repo_root().join(".ci/cache/bin/tansu");
    assert!(
        path.is_file(),
        "tansu (the test Kafka broker) is not installed at {}: run .ci/install-kafka.sh \
         (or set FOOTFALL_TANSU)",
        path.display()
    );
    path
}

fn moto_venv() -> PathBuf {
    let venv = std::env::var_os("FOOTFALL_MOTO_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".ci/.venv-moto"));
    assert!(
        venv.join("bin/moto_server").is_file(),
        "moto (the local S3 server for durable broker storage) is not installed in {}: run \
         .ci/install-kafka.sh (or set FOOTFALL_MOTO_VENV)",
        venv.display()
    );
    venv
}

pub fn wait_port(port: u16, open: bool, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let is_open = TcpStream::connect_timeout(
            &format!("127.0.0.1:{port}").parse().expect("addr"),
            Duration::from_millis(200),
        )
        .is_ok();
        if is_open == open {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn kill(child: &Child, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status();
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// A local S3 server (moto) with a bucket `tansu`.
pub struct Moto {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Moto {
    pub fn start() -> Moto {
        let venv = moto_venv();
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let child = Command::new(venv.join("bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn moto_server");
        let moto = Moto {
            child,
            port,
            _dir: dir,
        };
        assert!(
            wait_port(port, true, Duration::from_secs(20)),
            "moto did not start"
        );
        let status = Command::new(venv.join("bin/python"))
            .arg("-c")
            .arg(format!(
                "import boto3; boto3.client('s3', endpoint_url='http://127.0.0.1:{port}', \
                 aws_access_key_id='test', aws_secret_access_key='test', \
                 region_name='us-east-1').create_bucket(Bucket='tansu')"
            ))
            .status()
            .expect("run boto3");
        assert!(status.success(), "cannot create the S3 bucket");
        moto
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone)]
enum Storage {
    Memory,
    S3 { port: u16 },
}

/// A tansu broker on a free 127.0.0.1 port, killed on drop.
pub struct Tansu {
    child: Option<Child>,
    pub port: u16,
    storage: Storage,
    dir: tempfile::TempDir,
}

impl Tansu {
    /// In-memory storage: fresh state, gone when the broker stops.
    pub fn start() -> Tansu {
        Self::new(Storage::Memory)
    }

    /// S3 storage on `moto`: messages and committed offsets survive a restart.
    pub fn start_s3(moto: &Moto) -> Tansu {
        Self::new(Storage::S3 { port: moto.port })
    }

    fn new(storage: Storage) -> Tansu {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let child = Self::spawn(port, &storage, dir.path());
        Tansu {
            child: Some(child),
            port,
            storage,
            dir,
        }
    }

    fn spawn(port: u16, storage: &Storage, dir: &Path) -> Child {
        let url = format!("tcp://127.0.0.1:{port}");
        let log = File::options()
            .create(true)
            .append(true)
            .open(dir.join("tansu.log"))
            .expect("log file");
        let mut cmd = Command::new(tansu_binary());
        cmd.args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        // tansu reads `.env` from its working directory: give it an empty one.
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(log);
        match storage {
            Storage::Memory => {
                cmd.args(["--storage-engine", "memory://tansu/"]);
            }
            Storage::S3 { port } => {
                cmd.args(["--storage-engine", "s3://tansu/"])
                    .env("AWS_ACCESS_KEY_ID", "test")
                    .env("AWS_SECRET_ACCESS_KEY", "test")
                    .env("AWS_DEFAULT_REGION", "us-east-1")
                    .env("AWS_ENDPOINT", format!("http://127.0.0.1:{port}"))
                    .env("AWS_ALLOW_HTTP", "true");
            }
        }
        let child = cmd.spawn().expect("spawn tansu");
        assert!(
            wait_port(port, true, Duration::from_secs(20)),
            "tansu did not start listening on {port}"
        );
        child
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the broker (SIGTERM, then SIGKILL if it lingers) and waits for its port to close.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill(&child, "TERM");
            if wait_exit(&mut child, Duration::from_secs(3)).is_none() {
                kill(&child, "KILL");
                let _ = wait_exit(&mut child, Duration::from_secs(5));
            }
        }
        assert!(
            wait_port(self.port, false, Duration::from_secs(10)),
            "tansu port did not close"
        );
    }

    /// Starts the stopped broker again on the same port and storage.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "stop() first");
        self.child = Some(Self::spawn(self.port, &self.storage, self.dir.path()));
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A running `footfall collector` or `footfall processor`; its log goes to a file (a pipe
/// nobody reads would block the child once full).
pub struct Service {
    child: Option<Child>,
    pub port: u16,
    pub log: PathBuf,
    args: Vec<String>,
}

impl Service {
    fn spawn(args: Vec<String>, log: PathBuf) -> Child {
        let log_file = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        Command::new(env!("CARGO_BIN_EXE_footfall"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn footfall")
    }

    fn start(args: Vec<String>, port: u16, log: PathBuf) -> Service {
        let child = Self::spawn(args.clone(), log.clone());
        let mut service = Service {
            child: Some(child),
            port,
            log,
            args,
        };
        service.wait_live();
        service
    }

    /// `footfall collector` on a free port.
    pub fn collector(brokers: &str, dir: &Path, extra: &[&str]) -> Service {
        let port = free_port();
        let mut args: Vec<String> = [
            "collector",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--brokers",
            brokers,
            "--rate-limit",
            "0",
            "--log",
            "warn,footfall=info,collector=info",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::start(args, port, dir.join(format!("collector-{port}.log")))
    }

    /// `footfall processor` on a free port, storing into `data_dir`.
    pub fn processor(brokers: &str, data_dir: &Path, extra: &[&str]) -> Service {
        let port = free_port();
        let mut args: Vec<String> = [
            "processor",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--brokers",
            brokers,
            "--admin-token",
            TOKEN,
            "--session-timeout-ms",
            "6000",
            "--log",
            "warn,footfall=info,processor=info",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push("--data-dir".into());
        args.push(data_dir.display().to_string());
        args.extend(extra.iter().map(|s| s.to_string()));
        let log = data_dir
            .parent()
            .unwrap_or(data_dir)
            .join(format!("processor-{port}.log"));
        Self::start(args, port, log)
    }

    fn wait_live(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if ureq::get(&self.url("/livez")).call().is_ok() {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("footfall exited with {status}:\n{}", self.log_text());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("footfall did not become live:\n{}", self.log_text());
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// kill -9: no flush, no commit, no goodbye to the group.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill(&child, "KILL");
            let _ = wait_exit(&mut child, Duration::from_secs(10));
        }
    }

    /// SIGTERM and wait: a graceful stop. Returns whether it exited successfully.
    pub fn stop(&mut self) -> bool {
        match self.child.take() {
            Some(mut child) => {
                kill(&child, "TERM");
                wait_exit(&mut child, Duration::from_secs(30)).is_some_and(|s| s.success())
            }
            None => true,
        }
    }

    /// Starts the same command again (same port, data folder and log).
    pub fn restart(&mut self) {
        self.kill9();
        assert!(wait_port(self.port, false, Duration::from_secs(10)));
        self.child = Some(Self::spawn(self.args.clone(), self.log.clone()));
        self.wait_live();
    }

    /// The processor's stored-event count for `site`.
    pub fn stored(&self, site: &str) -> u64 {
        let (status, body) = super::get(
            &self.url(&format!("/api/stats/summary?site={site}")),
            Some(TOKEN),
        );
        assert_eq!(status, 200, "{body}");
        body["events"].as_u64().unwrap_or(0)
    }

    /// A counter or gauge from `/metrics`.
    pub fn metric(&self, name: &str) -> f64 {
        super::metric(&self.url("/metrics"), name)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Registers `site` on `processor` (`POST /api/sites`) and waits until every collector
/// accepts it (they follow the registry through the sites topic). The probe is an event with
/// an empty name: 403 while the site is unknown, 400 once it is known, never stored.
pub fn register_site(processor: &Service, collectors: &[&Service], site: &str) {
    super::add_site(&processor.url(""), site);
    for collector in collectors {
        let accepted = eventually(Duration::from_secs(15), || {
            let (status, _) = super::post(
                &collector.url("/api/batch"),
                "text/plain",
                &format!(r#"{{"site":"{site}","events":[{{"event":""}}]}}"#),
            );
            status == 400
        });
        assert!(
            accepted,
            "collector on {} never learnt {site}",
            collector.port
        );
    }
}

/// Runs `footfall <args>` to completion (for start-up errors) within `within`.
pub fn run_to_exit(args: &[&str], within: Duration) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_footfall"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn footfall");
    let status = wait_exit(&mut child, within);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let (out, err) = super::output_of(&mut child);
    (
        status.is_some_and(|s| s.success()),
        format!(
            "{out}{err}{}",
            if status.is_none() {
                "\n<timed out>"
            } else {
                ""
            }
        ),
    )
}

/// Polls `f` until it returns true or `within` passes.
pub fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}
