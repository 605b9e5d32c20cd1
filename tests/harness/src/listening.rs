//! Waiting for a server the harness started to listen on its port — and
//! knowing it is *that* process listening. A port from [`crate::free_port`]
//! is only free when it was read: another test's client may take it as its
//! own end before the server binds it (the server then exits), and a probe
//! connecting to a port nobody listens on can even connect to itself (TCP's
//! simultaneous open). So "a connect succeeded" proves nothing; the kernel's
//! socket table, matched against the child's open files, does.

use std::collections::HashSet;
use std::process::Child;

/// Why a server did not come up.
#[derive(Debug)]
pub enum NotListening {
    /// It exited first (for example: the port was taken after all).
    Exited(std::process::ExitStatus),
}

/// Waits until `child` listens on loopback `port` (a minute at most), or
/// says it exited.
pub fn wait(child: &mut Child, port: u16, what: &str) -> Result<(), NotListening> {
    crate::wait_for(&format!("{what} to listen on port {port}"), || {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(Err(NotListening::Exited(status)));
        }
        listens(child.id(), port).then_some(Ok(()))
    })
}

/// Whether process `pid` holds a socket listening on TCP `port`.
pub fn listens(pid: u32, port: u16) -> bool {
    let listeners = listening_inodes(port);
    if listeners.is_empty() {
        return false;
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| {
            let target = target.to_string_lossy();
            target
                .strip_prefix("socket:[")
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|inode| inode.parse::<u64>().ok())
                .is_some_and(|inode| listeners.contains(&inode))
        })
    })
}

/// The inodes of the sockets in state LISTEN on `port` (IPv4 and IPv6), from
/// /proc/net/tcp{,6}: `sl local_address rem_address st … uid timeout inode`,
/// with the port in hex after the address and LISTEN as state 0A.
fn listening_inodes(port: u16) -> HashSet<u64> {
    let suffix = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
                    (local.ends_with(&suffix) && *state == "0A")
                        .then(|| inode.parse().ok())
                        .flatten()
                })
                .collect::<Vec<u64>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_of_this_process_is_found_and_a_closed_port_is_not() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(listens(std::process::id(), port));
        drop(listener);
        assert!(!listens(std::process::id(), port));
    }

    #[test]
    fn a_listener_of_another_process_is_not_this_ones() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut other = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let theirs = listens(other.id(), port);
        other.kill().unwrap();
        other.wait().unwrap();
        assert!(!theirs);
    }

    #[test]
    fn a_connection_to_a_port_is_not_listening_on_it() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let own = client.local_addr().unwrap().port();
        assert!(!listens(std::process::id(), own));
    }
}
