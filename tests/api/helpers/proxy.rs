//! A TCP fault proxy between the service (or a replica) and Redis, on loopback. Modes: pass,
//! delay, blackhole, and drop-the-next-reply-and-reset (the command has run in Redis, its
//! answer never arrives and the connection is reset, so the client re-sends it). The target
//! can be switched, as a failover moves the primary's address.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::AbortHandle,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pass,
    /// Every chunk, either way, waits this long first (replication lag, a slow network).
    Delay(Duration),
    /// Nothing passes either way; connections stay open.
    Blackhole,
    /// Requests pass; the next reply is dropped and every connection reset; then `Pass`.
    DropReplyAndReset,
}

struct State {
    mode: Mode,
    target: u16,
    tasks: Vec<AbortHandle>,
    /// Replies dropped by `DropReplyAndReset` so far.
    dropped: usize,
}

#[derive(Clone)]
pub struct FaultProxy {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    pub async fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Self {
            port,
            state: Arc::new(Mutex::new(State {
                mode: Mode::Pass,
                target,
                tasks: Vec::new(),
                dropped: 0,
            })),
        };
        let accepting = proxy.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let target = accepting.state.lock().unwrap().target;
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else {
                    continue; // the client sees a closed connection, as with a dead server
                };
                let proxy = accepting.clone();
                let task = tokio::spawn(async move { proxy.pump(client, server).await });
                accepting
                    .state
                    .lock()
                    .unwrap()
                    .tasks
                    .push(task.abort_handle());
            }
        });
        proxy
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    pub fn mode(&self) -> Mode {
        self.state.lock().unwrap().mode
    }

    pub fn dropped(&self) -> usize {
        self.state.lock().unwrap().dropped
    }

    /// New connections go to `port` from now on; open ones are reset.
    pub fn set_target(&self, port: u16) {
        let mut state = self.state.lock().unwrap();
        state.target = port;
        for task in state.tasks.drain(..) {
            task.abort();
        }
    }

    async fn pump(self, client: TcpStream, server: TcpStream) {
        let (mut client_read, mut client_write) = client.into_split();
        let (mut server_read, mut server_write) = server.into_split();
        let upstream = {
            let proxy = self.clone();
            async move {
                let mut buffer = vec![0u8; 64 * 1024];
                loop {
                    let n = match client_read.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    match proxy.mode() {
                        Mode::Blackhole => continue,
                        Mode::Delay(wait) => tokio::time::sleep(wait).await,
                        Mode::Pass | Mode::DropReplyAndReset => {}
                    }
                    if server_write.write_all(&buffer[..n]).await.is_err() {
                        return;
                    }
                }
            }
        };
        let downstream = {
            let proxy = self.clone();
            async move {
                let mut buffer = vec![0u8; 64 * 1024];
                loop {
                    let n = match server_read.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    match proxy.mode() {
                        Mode::Blackhole => continue,
                        Mode::Delay(wait) => tokio::time::sleep(wait).await,
                        Mode::DropReplyAndReset => {
                            let mut state = proxy.state.lock().unwrap();
                            state.dropped += 1;
                            state.mode = Mode::Pass;
                            for task in state.tasks.drain(..) {
                                task.abort();
                            }
                            return;
                        }
                        Mode::Pass => {}
                    }
                    if client_write.write_all(&buffer[..n]).await.is_err() {
                        return;
                    }
                }
            }
        };
        // Either side ending ends both: the other socket is dropped (closed) with this task.
        tokio::select! {
            _ = upstream => {}
            _ = downstream => {}
        }
    }
}
