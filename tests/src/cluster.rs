//! A local MariaDB cluster: N shards, each a primary plus R replicas replicating with GTIDs,
//! under a temporary directory, on free 127.0.0.1 ports. Dropping the [`Cluster`] stops
//! exactly the processes it started; they also die with the process that started them.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What to start.
#[derive(Debug, Clone, Copy)]
pub struct ClusterSpec {
    /// Number of shards.
    pub shards: usize,
    /// Replicas per shard.
    pub replicas: usize,
}

/// One mariadbd process.
pub struct Server {
    /// Shard index.
    pub shard: usize,
    /// `None` for the primary, `Some(i)` for replica i.
    pub replica: Option<usize>,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    datadir: PathBuf,
    child: Option<Child>,
    server_id: usize,
}

/// A running cluster.
pub struct Cluster {
    /// Every server, primaries first within each shard.
    pub servers: Vec<Server>,
    dir: tempfile::TempDir,
}

/// Finds a program in PATH or the usual sbin folders.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"])
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file());
    found
}

/// Makes sure MariaDB's server and client are installed, installing them with apt-get when
/// they are missing.
pub fn ensure_mariadb() -> Result<(), String> {
    if which("mariadbd").is_some()
        && which("mariadb").is_some()
        && which("mariadb-install-db").is_some()
    {
        return Ok(());
    }
    eprintln!("mariadbd not found: installing mariadb-server and mariadb-client with apt-get");
    let ok = Command::new("sh")
        .args([
            "-c",
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server mariadb-client",
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok && which("mariadbd").is_some() {
        Ok(())
    } else {
        Err("MariaDB is not installed and `apt-get install -y mariadb-server mariadb-client` failed; install it and retry".into())
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs SQL with the mariadb client against 127.0.0.1:port as root; returns tab-separated
/// output without headers.
pub fn sql(port: u16, statement: &str) -> Result<String, String> {
    let out = Command::new("mariadb")
        .args(["--no-defaults", "-h127.0.0.1", "-uroot", "-N", "-B"])
        .arg(format!("-P{port}"))
        .arg("-e")
        .arg(statement)
        .output()
        .map_err(|e| format!("cannot run mariadb: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "mariadb -P{port} -e {statement:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Server {
    fn start(&mut self) -> Result<(), String> {
        let d = &self.datadir;
        let init = d.join("init.sql");
        std::fs::write(
            &init,
            "SET sql_log_bin=0;\n\
             CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';\n\
             GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;\n\
             CREATE USER IF NOT EXISTS 'root'@'%';\n\
             GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;\n",
        )
        .map_err(|e| e.to_string())?;
        let mut cmd = Command::new(which("mariadbd").ok_or("mariadbd not found")?);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--socket={}", d.join("sock").display()))
            .arg(format!("--pid-file={}", d.join("pid").display()))
            .arg(format!("--log-error={}", d.join("error.log").display()))
            .arg(format!("--init-file={}", init.display()))
            .arg(format!("--tmpdir={}", d.display()))
            .arg(format!("--port={}", self.port))
            .arg(format!("--server-id={}", self.server_id))
            .args([
                "--bind-address=127.0.0.1",
                "--log-bin=mariadb-bin",
                "--binlog-format=ROW",
                "--log-slave-updates",
                "--gtid-strict-mode=1",
                "--max-connections=3000",
                "--max-allowed-packet=256M",
                "--innodb-buffer-pool-size=64M",
                "--innodb-log-file-size=32M",
                "--innodb-flush-log-at-trx-commit=1",
                "--sync-binlog=0",
                "--performance-schema=OFF",
                "--skip-log-warnings",
            ]);
        if self.replica.is_some() {
            cmd.arg("--read-only=1");
        }
        if is_root() {
            cmd.arg("--user=root");
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl in the child before exec only sets the parent-death signal.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.child = Some(
            cmd.spawn()
                .map_err(|e| format!("cannot start mariadbd: {e}"))?,
        );
        Ok(())
    }

    /// Waits until this server answers on its port. Another test's server may have taken
    /// the port between `free_port` and our bind, so the answer must come from our own
    /// datadir, and a server that could not bind is restarted on a new port.
    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let ours = self.datadir.join("data");
        let ours = ours.canonicalize().unwrap_or(ours);
        let mut rebinds = 0;
        loop {
            if let Ok(answer) = sql(self.port, "SELECT @@datadir") {
                let theirs = PathBuf::from(answer.trim().trim_end_matches('/'));
                if theirs.canonicalize().unwrap_or(theirs) == ours {
                    return Ok(());
                }
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    let log =
                        std::fs::read_to_string(self.datadir.join("error.log")).unwrap_or_default();
                    let port_taken = log.contains("Address already in use")
                        || log.contains("Do you already have another server running on port");
                    if port_taken && rebinds < 3 {
                        rebinds += 1;
                        self.child = None;
                        self.port = free_port()?;
                        self.start()?;
                        continue;
                    }
                    return Err(format!(
                        "mariadbd on port {} exited ({status}):\n{log}",
                        self.port
                    ));
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "mariadbd on port {} did not answer from {} in {timeout:?}",
                    self.port,
                    ours.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops this server (SIGTERM, then SIGKILL after 20 s).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: plain kill(2) on a child we own.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills this server with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the server process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts a stopped server again with the same data and port.
    pub fn restart(&mut self) -> Result<(), String> {
        if self.child.is_none() {
            self.start()?;
        }
        self.wait_ready(Duration::from_secs(60))
    }
}

impl Cluster {
    /// Starts the cluster and waits until every server answers and every replica replicates.
    pub fn start(spec: ClusterSpec) -> Result<Cluster, String> {
        ensure_mariadb()?;
        let dir = tempfile::Builder::new()
            .prefix("myshard-cluster-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let template = dir.path().join("template");
        // Each bootstrap gets its own tmpdir: concurrent bootstraps sharing /tmp collide on
        // their temporary tables. A failed bootstrap is retried once from scratch.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
        let mut last_error = String::new();
        for _attempt in 0..2 {
            let _ = std::fs::remove_dir_all(&template);
            let mut install =
                Command::new(which("mariadb-install-db").ok_or("mariadb-install-db not found")?);
            install
                .arg("--no-defaults")
                .arg(format!("--datadir={}", template.display()))
                .arg(format!("--tmpdir={}", tmp.display()))
                .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
            if is_root() {
                install.arg("--user=root");
            }
            let out = install
                .output()
                .map_err(|e| format!("mariadb-install-db: {e}"))?;
            if out.status.success() {
                last_error.clear();
                break;
            }
            last_error = format!(
                "mariadb-install-db failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if !last_error.is_empty() {
            return Err(last_error);
        }
        let mut servers = Vec::new();
        let mut server_id = 1;
        for shard in 0..spec.shards {
            for replica in std::iter::once(None).chain((0..spec.replicas).map(Some)) {
                let name = match replica {
                    None => format!("shard{shard}-primary"),
                    Some(r) => format!("shard{shard}-replica{r}"),
                };
                let datadir = dir.path().join(name);
                std::fs::create_dir_all(&datadir).map_err(|e| e.to_string())?;
                let status = Command::new("cp")
                    .arg("-a")
                    .arg(&template)
                    .arg(datadir.join("data"))
                    .status()
                    .map_err(|e| e.to_string())?;
                if !status.success() {
                    return Err("copying the template datadir failed".into());
                }
                servers.push(Server {
                    shard,
                    replica,
                    port: free_port()?,
                    datadir,
                    child: None,
                    server_id,
                });
                server_id += 1;
            }
        }
        let mut cluster = Cluster { servers, dir };
        for s in &mut cluster.servers {
            s.start()?;
        }
        for s in &mut cluster.servers {
            s.wait_ready(Duration::from_secs(60))?;
        }
        for shard in 0..spec.shards {
            let primary = cluster.primary_port(shard);
            for port in cluster.replica_ports(shard) {
                sql(
                    port,
                    &format!(
                        "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={primary}, \
                         MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos, \
                         MASTER_CONNECT_RETRY=1; START SLAVE;"
                    ),
                )?;
            }
        }
        for shard in 0..spec.shards {
            for port in cluster.replica_ports(shard) {
                wait_replicating(port)?;
            }
        }
        Ok(cluster)
    }

    /// The folder holding every server's data and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Port of a shard's primary.
    pub fn primary_port(&self, shard: usize) -> u16 {
        self.servers
            .iter()
            .find(|s| s.shard == shard && s.replica.is_none())
            .map(|s| s.port)
            .unwrap_or(0)
    }

    /// Ports of a shard's replicas.
    pub fn replica_ports(&self, shard: usize) -> Vec<u16> {
        self.servers
            .iter()
            .filter(|s| s.shard == shard && s.replica.is_some())
            .map(|s| s.port)
            .collect()
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.servers.iter().map(|s| s.shard + 1).max().unwrap_or(0)
    }

    /// Waits until every replica of `shard` has applied everything its primary has written.
    pub fn sync_replicas(&self, shard: usize) -> Result<(), String> {
        let pos = sql(self.primary_port(shard), "SELECT @@gtid_binlog_pos")?;
        for port in self.replica_ports(shard) {
            let r = sql(
                port,
                &format!("SELECT MASTER_GTID_WAIT('{}', 30)", pos.trim()),
            )?;
            if r.trim() != "0" {
                return Err(format!("replica {port} did not catch up to {}", pos.trim()));
            }
        }
        Ok(())
    }

    /// Stops every server.
    pub fn stop(&mut self) {
        for s in self.servers.iter_mut().rev() {
            s.stop();
        }
    }
}

/// Waits until a replica's IO and SQL threads run; restarts them once if they have not
/// started after 15 s (a loaded machine), and on failure says why from SHOW SLAVE STATUS.
fn wait_replicating(port: u16) -> Result<(), String> {
    let start = Instant::now();
    let mut restarted = false;
    loop {
        let status = sql(port, "SHOW STATUS LIKE 'Slave_running'")?;
        if status.split_whitespace().nth(1) == Some("ON") {
            return Ok(());
        }
        let waited = start.elapsed();
        if waited > Duration::from_secs(15) && !restarted {
            restarted = true;
            let _ = sql(port, "STOP SLAVE; START SLAVE;");
        }
        if waited > Duration::from_secs(60) {
            let detail = sql(port, "SHOW SLAVE STATUS\\G").unwrap_or_else(|e| e);
            return Err(format!(
                "replica on port {port} is not replicating after {waited:?}:\n{status}\n{detail}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}
