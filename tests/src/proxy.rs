//! Runs the real `myshard` binary against a [`Cluster`] with a generated configuration.

use crate::cluster::{free_port, Cluster};
use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running myshard process.
pub struct Proxy {
    /// Client port on 127.0.0.1.
    pub port: u16,
    /// The configuration file it runs with.
    pub config_path: PathBuf,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

/// Finds the `myshard` binary built in the same target directory as the running program.
pub fn myshard_binary() -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var("MYSHARD_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut dir = exe.parent();
    while let Some(d) = dir {
        let candidate = d.join("myshard");
        if candidate.is_file() {
            return Ok(candidate);
        }
        dir = d.parent();
    }
    Err("the myshard binary was not found next to the test binary: run `cargo build --workspace --all-targets` first".into())
}

/// The shard map section for a cluster: shard `s{i}` for each shard, with its replicas.
pub fn shards_toml(cluster: &Cluster) -> String {
    let mut out = String::new();
    for shard in 0..cluster.shards() {
        let replicas: Vec<String> = cluster
            .replica_ports(shard)
            .iter()
            .map(|p| format!("\"127.0.0.1:{p}\""))
            .collect();
        out.push_str(&format!(
            "[[shards]]\nname = \"s{shard}\"\nprimary = \"127.0.0.1:{}\"\nreplicas = [{}]\n\n",
            cluster.primary_port(shard),
            replicas.join(", ")
        ));
    }
    out
}

impl Proxy {
    /// Starts myshard with `server_toml` (extra `[server]` keys), the cluster's shards and
    /// `rest` (schemas, users, …), and waits until it accepts connections. Every test proxy
    /// checks each plan-cache hit against a fresh parse (`plan_cache_verify`): a difference is
    /// an error the test sees — unless `server_toml` sets it (the benchmarks turn it off).
    pub fn start(cluster: &Cluster, server_toml: &str, rest: &str) -> Result<Proxy, String> {
        let verify = if server_toml.contains("plan_cache_verify") {
            ""
        } else {
            "plan_cache_verify = true\n"
        };
        let port = free_port()?;
        let dir = tempfile::Builder::new()
            .prefix("myshard-proxy-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n{verify}{server_toml}\n\n{}\n{rest}\n",
            shards_toml(cluster)
        );
        let config_path = dir.path().join("myshard.toml");
        std::fs::File::create(&config_path)
            .and_then(|mut f| f.write_all(config.as_bytes()))
            .map_err(|e| e.to_string())?;
        let log =
            std::fs::File::create(dir.path().join("myshard.log")).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(myshard_binary()?);
        cmd.arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        // SAFETY: prctl in the child before exec only sets the parent-death signal.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start myshard: {e}"))?;
        let mut proxy = Proxy {
            port,
            config_path,
            child: Some(child),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(Ok(Some(status))) = proxy.child.as_mut().map(|c| c.try_wait()) {
                return Err(format!("myshard exited ({status}):\n{}", proxy.log()));
            }
            if Instant::now() > deadline {
                return Err(format!("myshard did not listen in time:\n{}", proxy.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(proxy)
    }

    /// What myshard wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("myshard.log")).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Sends a signal and waits up to `timeout` for the process to exit; returns whether it
    /// did.
    pub fn signal_and_wait(&mut self, signal: i32, timeout: Duration) -> bool {
        let Some(child) = self.child.as_mut() else {
            return true;
        };
        // SAFETY: plain kill(2) on a child we own.
        unsafe {
            libc::kill(child.id() as i32, signal);
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                self.child = None;
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
