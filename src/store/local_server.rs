//! A private `redis-server` child on a loopback port: the embedded default (README, Local mode), and the
//! Redis that the test suite starts for each test.

use std::{
    io,
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    process::{Child, Command},
};

const INSTALL_HINT: &str = "redis-server is not installed. Install it (Debian/Ubuntu: \
    `sudo apt-get install -y redis-server`; macOS: `brew install redis`) or set REDIS_URL \
    to a Redis you run (e.g. REDIS_URL=redis://127.0.0.1:6379)";

#[derive(Debug, thiserror::Error)]
pub enum LocalServerError {
    #[error("{INSTALL_HINT}")]
    NotInstalled,
    #[error("could not start redis-server: {0}")]
    Io(#[from] io::Error),
    #[error("redis-server did not come up on port {port}: {reason}")]
    NotReady { port: u16, reason: String },
}

/// How to start the child. The default is the embedded mode: a free port, persistence off.
#[derive(Debug, Clone, Default)]
pub struct LocalServerOptions {
    /// `None`: pick a free loopback port.
    pub port: Option<u16>,
    /// Working directory, where an RDB file goes. `None`: persistence off, nothing written.
    pub data_dir: Option<PathBuf>,
    /// Extra `redis-server` arguments, e.g. `["--cluster-enabled", "yes"]`.
    pub extra_args: Vec<String>,
}

/// A running `redis-server` child. It is killed on [`LocalRedisServer::stop`], and also when
/// dropped, so a panicking test or an error path never leaves it behind.
#[derive(Debug)]
pub struct LocalRedisServer {
    child: Child,
    port: u16,
}

impl LocalRedisServer {
    /// Starts a server with persistence off on a free loopback port.
    pub async fn start() -> Result<Self, LocalServerError> {
        Self::start_with(LocalServerOptions::default()).await
    }

    pub async fn start_with(options: LocalServerOptions) -> Result<Self, LocalServerError> {
        // A free port can be taken between our probe and redis-server's bind: try a few.
        let attempts = if options.port.is_some() { 1 } else { 5 };
        let mut last_error = None;
        for _ in 0..attempts {
            let port = match options.port {
                Some(port) => port,
                None => free_port()?,
            };
            match Self::spawn(port, &options).await {
                Ok(server) => return Ok(server),
                Err(err @ LocalServerError::NotInstalled) => return Err(err),
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.unwrap_or(LocalServerError::NotReady {
            port: 0,
            reason: "no attempt made".into(),
        }))
    }

    async fn spawn(port: u16, options: &LocalServerOptions) -> Result<Self, LocalServerError> {
        let mut command = Command::new("redis-server");
        command
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--protected-mode",
                "yes",
            ])
            .args(["--loglevel", "warning", "--save", "", "--appendonly", "no"])
            .args(["--maxmemory-policy", "noeviction"])
            .args(&options.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if let Some(dir) = &options.data_dir {
            command.args(["--dir", &dir.to_string_lossy()]);
        }
        let child = command.spawn().map_err(|err| match err.kind() {
            io::ErrorKind::NotFound => LocalServerError::NotInstalled,
            _ => LocalServerError::Io(err),
        })?;
        let mut server = Self { child, port };
        server.wait_until_ready(Duration::from_secs(10)).await?;
        Ok(server)
    }

    async fn wait_until_ready(&mut self, patience: Duration) -> Result<(), LocalServerError> {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(LocalServerError::NotReady {
                    port: self.port,
                    reason: format!("it exited with {status} (port taken?)"),
                });
            }
            if ping(self.port).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(LocalServerError::NotReady {
                    port: self.port,
                    reason: "no PONG in time".into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stops the server and waits for it to exit.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Asks the OS for a free loopback port.
pub fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    Ok(listener.local_addr()?.port())
}

async fn ping(port: u16) -> bool {
    let attempt = async {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await?;
        stream.write_all(b"PING\r\n").await?;
        let mut reply = [0u8; 7];
        stream.read_exact(&mut reply).await?;
        // A server with a password answers NOAUTH: it is up all the same.
        Ok::<bool, io::Error>(&reply == b"+PONG\r\n" || reply.starts_with(b"-NOAUTH"))
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), attempt).await,
        Ok(Ok(true))
    )
}
