//! A byte relay in front of one server: HAProxy in `mode tcp` (Debian's `haproxy` package).
//! It forwards bytes and nothing else, so its cost is the floor for any proxy on the same
//! machine; the benchmarks report myshard's QPS and CPU per statement against it.

use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running relay; stopped when dropped.
pub struct Relay {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

fn haproxy_binary() -> Result<PathBuf, String> {
    for p in [
        "/usr/sbin/haproxy",
        "/usr/local/sbin/haproxy",
        "/usr/bin/haproxy",
    ] {
        if std::path::Path::new(p).exists() {
            return Ok(PathBuf::from(p));
        }
    }
    Err("haproxy is missing (apt-get install haproxy; scripts/bench installs it)".into())
}

impl Relay {
    /// Starts HAProxy relaying 127.0.0.1:<new port> to 127.0.0.1:`server_port`, and waits
    /// until it accepts connections.
    pub fn start(server_port: u16) -> Result<Relay, String> {
        let port = crate::cluster::free_port()?;
        let dir = tempfile::Builder::new()
            .prefix("myshard-relay-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let config = dir.path().join("haproxy.cfg");
        let text = format!(
            "global\n  maxconn 4000\n\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 1h\n  timeout server 1h\n\nlisten relay\n  bind 127.0.0.1:{port}\n  server db 127.0.0.1:{server_port}\n"
        );
        std::fs::File::create(&config)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| e.to_string())?;
        let log_path = dir.path().join("haproxy.log");
        let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(haproxy_binary()?);
        // -db: stay in the foreground, one process (its CPU time is then this pid's).
        cmd.arg("-db")
            .arg("-f")
            .arg(&config)
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
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start haproxy: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "haproxy exited ({status}): {}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                ));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err("haproxy did not listen within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Relay {
            port,
            child,
            _dir: dir,
        })
    }

    /// The relay's process id (for its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
