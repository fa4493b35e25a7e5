//! A real `nats-server` with JetStream for the cluster tests: started on 127.0.0.1 on a
//! free port with a temporary store directory, restartable on the same port and
//! store, and stopped when dropped; and cluster workers, which are a test binary
//! started again with `AMORSIZE_CLUSTER_WORKER`.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `nats-server -js`.
pub struct Nats {
    child: Option<Child>,
    pub port: u16,
    store: PathBuf,
    auth: Option<(String, String)>,
    config: Option<PathBuf>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

impl Nats {
    /// Starts a server; fails the test with the fix when `nats-server` is missing.
    pub fn start(tag: &str) -> Nats {
        Self::start_with(tag, None)
    }

    /// Starts a server that wants `user` and `password`.
    pub fn start_with_password(tag: &str, user: &str, password: &str) -> Nats {
        Self::start_with(tag, Some((user.to_string(), password.to_string())))
    }

    /// Starts a server whose users and permissions are the `authorization` block
    /// `users` (nats-server configuration syntax).
    pub fn start_with_users(tag: &str, users: &str) -> Nats {
        let mut n = Self::start_with(tag, None);
        n.stop();
        let config = n.store.join("server.conf");
        std::fs::write(
            &config,
            format!(
                "listen: 127.0.0.1:{}\njetstream {{ store_dir: {:?} }}\nauthorization {{\n{users}\n}}\n",
                n.port,
                n.store.to_string_lossy()
            ),
        )
        .expect("write the server's configuration");
        n.config = Some(config);
        n.spawn();
        n
    }

    fn start_with(tag: &str, auth: Option<(String, String)>) -> Nats {
        let store = std::env::temp_dir().join(format!(
            "amorsize-nats-{tag}-{}-{}",
            std::process::id(),
            free_port()
        ));
        let _ = std::fs::remove_dir_all(&store);
        std::fs::create_dir_all(&store).expect("a store directory");
        let mut n = Nats {
            child: None,
            port: free_port(),
            store,
            auth,
            config: None,
        };
        n.spawn();
        n
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("nats-server");
        match &self.config {
            Some(config) => cmd.arg("-c").arg(config),
            None => cmd
                .args([
                    "-js",
                    "-a",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-sd",
                ])
                .arg(&self.store),
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((u, p)) = &self.auth {
            cmd.args(["--user", u, "--pass", p]);
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start nats-server ({e}): install it (Debian: `apt-get install -y \
                 nats-server`); .ci/run does"
            )
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The address a driver or worker is given (with the credentials, if any).
    pub fn url(&self) -> String {
        match &self.auth {
            Some((u, p)) => format!("nats://{u}:{p}@127.0.0.1:{}", self.port),
            None => format!("nats://127.0.0.1:{}", self.port),
        }
    }

    /// Kills the server (SIGKILL: no clean shutdown) and starts it again on the same
    /// port and store after `down`.
    pub fn restart(&mut self, down: Duration) {
        self.stop();
        std::thread::sleep(down);
        self.spawn();
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// Cluster workers: processes of a test binary serving tasks, killed when dropped.
pub struct Workers {
    pub children: Vec<Child>,
    pub logs: Vec<PathBuf>,
}

impl Workers {
    /// Starts `n` workers of the executable `exe` on `url`, each logging to a file.
    pub fn start(exe: &Path, url: &str, n: usize, env: &[(&str, &str)]) -> Workers {
        let mut children = Vec::new();
        let mut logs = Vec::new();
        for i in 0..n {
            let log = std::env::temp_dir().join(format!(
                "amorsize-cluster-worker-{}-{}-{i}.log",
                std::process::id(),
                free_port()
            ));
            let file = std::fs::File::create(&log).expect("a worker log");
            let mut cmd = Command::new(exe);
            for (k, _) in std::env::vars_os() {
                if k.to_string_lossy().starts_with("AMORSIZE") {
                    cmd.env_remove(&k);
                }
            }
            cmd.env("AMORSIZE_CLUSTER_WORKER", url)
                .env("AMORSIZE_CLUSTER_IDLE", "120")
                .envs(env.iter().copied())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(file);
            children.push(cmd.spawn().expect("start a worker"));
            logs.push(log);
        }
        Workers { children, logs }
    }

    /// What the workers wrote on stderr.
    pub fn log(&self) -> String {
        self.logs
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits until every worker said it is serving (or fails after `secs`).
    pub fn wait_serving(&self, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let log = self.log();
            if log.matches(": serving the tasks of").count() >= self.children.len() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "workers did not start serving:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for l in &self.logs {
            let _ = std::fs::remove_file(l);
        }
    }
}

/// The newest executable in this test binary's directory whose name starts with
/// `prefix-` (another test target, built by the same `cargo test`).
pub fn sibling_test_binary(prefix: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let me = std::env::current_exe().ok()?;
    let dir = me.parent()?;
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|hash| !hash.contains('.'))
                && e.metadata()
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
}
