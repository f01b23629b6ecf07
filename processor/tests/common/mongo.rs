//! A real MongoDB-protocol server for tests: SecantusDB (`secantusd-py`) on a free loopback
//! port, started per test and killed when the handle drops (also on panic).
//!
//! The binary comes from `$FOOTFALL_SECANTUSD` or `<repo>/.ci/.venv-secantus/bin/secantusd-py`
//! (installed by `.ci/install-mongo.sh`). When it is missing the test fails — it never skips.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct MongoServer {
    child: Option<Child>,
    pub port: u16,
    pub storage: PathBuf,
    /// Keeps the storage folder alive for the server's lifetime (and restarts).
    _dir: tempfile::TempDir,
}

fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("FOOTFALL_SECANTUSD") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.ci/.venv-secantus/bin/secantusd-py")
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

impl MongoServer {
    /// Starts a server with durable storage in a fresh temporary folder.
    pub fn start() -> MongoServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = MongoServer {
            child: None,
            port: free_port(),
            storage: dir.path().join("data"),
            _dir: dir,
        };
        s.restart();
        s
    }

    pub fn uri(&self) -> String {
        self.uri_for("footfall")
    }

    pub fn uri_for(&self, database: &str) -> String {
        format!(
            "mongodb://127.0.0.1:{}/{database}?directConnection=true",
            self.port
        )
    }

    /// Starts (again) on the same port and storage; waits until it accepts connections.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let bin = binary();
        assert!(
            bin.is_file(),
            "SecantusDB not found at {}: run `.ci/install-mongo.sh` (or set FOOTFALL_SECANTUSD)",
            bin.display()
        );
        std::fs::create_dir_all(&self.storage).expect("storage folder");
        let child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .arg("--storage-path")
            .arg(&self.storage)
            .args(["--log-level", "WARNING"])
            // A transaction's commit is durable only with this: SecantusDB otherwise ignores
            // the commit's `j: true`, which a real `mongod` honours (every batch is one
            // transaction, and the tests kill the server).
            .arg("--sync-on-commit")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("secantusd-py exited early with {status}");
            }
            assert!(
                Instant::now() < deadline,
                "secantusd-py did not open port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// kill -9, then waits for the port to close.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for MongoServer {
    fn drop(&mut self) {
        self.kill();
    }
}
