//! A server that accepts connections and then stalls: the unlucky night's
//! network. Each connection gets the request read, then, by `Stall`, silence
//! at once, the answer's headers and silence, or half a body and silence.
//! Connections stay open (never closed, never reset) until the server is
//! dropped, so only the client's own timeouts can end a request.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    AcceptThenSilence,
    HeadersThenSilence,
    HalfBodyThenSilence,
}

impl Stall {
    pub const ALL: [Stall; 3] = [
        Stall::AcceptThenSilence,
        Stall::HeadersThenSilence,
        Stall::HalfBodyThenSilence,
    ];
}

pub struct StallServer {
    pub url: String,
    stop: Arc<AtomicBool>,
    port: u16,
    requests: Arc<AtomicUsize>,
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl StallServer {
    pub fn start(mode: Stall) -> StallServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let held = Arc::new(Mutex::new(Vec::new()));
        let (s, r, h) = (stop.clone(), requests.clone(), held.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                let (r, h) = (r.clone(), h.clone());
                std::thread::spawn(move || {
                    if read_head(&mut conn) {
                        r.fetch_add(1, Ordering::SeqCst);
                        answer(&mut conn, mode);
                    }
                    h.lock().unwrap().push(conn);
                });
            }
        });
        StallServer {
            url: format!("http://127.0.0.1:{port}"),
            stop,
            port,
            requests,
            held,
        }
    }

    /// Requests whose head was read (so the stall really met a request).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Reads up to the blank line that ends a request's head.
fn read_head(conn: &mut TcpStream) -> bool {
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !seen.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => seen.push(byte[0]),
            _ => return false,
        }
    }
    true
}

fn answer(conn: &mut TcpStream, mode: Stall) {
    let head =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n";
    match mode {
        Stall::AcceptThenSilence => {}
        Stall::HeadersThenSilence => {
            let _ = conn.write_all(head.as_bytes());
        }
        Stall::HalfBodyThenSilence => {
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&[b' '; 50_000]);
        }
    }
    let _ = conn.flush();
}

impl Drop for StallServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        self.held.lock().unwrap().clear();
    }
}

/// Runs `tool backup` (with a 1 s stall timeout) against a stalling server in
/// each mode: it must end by itself (a watchdog kills it after 60 s and fails
/// the test), exit 1 with one failed record naming the stall, publish nothing
/// in `component_dir` and leave its lock free.
pub fn assert_backup_survives_stalls(
    make_tool: impl Fn(&StallServer) -> crate::Tool,
    component_dir: &std::path::Path,
    args: &[&str],
) {
    for mode in Stall::ALL {
        let server = StallServer::start(mode);
        let tool = make_tool(&server).env("BACKUP_STALL_TIMEOUT", "1");
        let child = tool.spawn(args);
        let out = crate::tool::finish_within(child, std::time::Duration::from_secs(60))
            .unwrap_or_else(|| {
                panic!("{mode:?}: still running after 60 s — the stall was not bounded")
            });
        assert!(
            server.requests() >= 1,
            "{mode:?}: no request reached the server"
        );
        assert_eq!(out.code, Some(1), "{mode:?}: {}", out.stderr);
        let record = out.record();
        assert_eq!(record["status"], "failed", "{mode:?}");
        let error = record["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("stopped answering (no data for 1 s)"),
            "{mode:?}: {error}"
        );
        let published: Vec<String> = crate::tree(component_dir)
            .into_iter()
            .filter(|e| !e.starts_with(".lock"))
            .collect();
        assert!(published.is_empty(), "{mode:?}: left behind {published:?}");
        let lock = std::fs::File::open(component_dir.join(".lock")).expect("the lock file");
        lock.try_lock()
            .unwrap_or_else(|e| panic!("{mode:?}: the lock is still held: {e}"));
    }
}
