//! How much of what was written to a TCP socket the peer's kernel has acknowledged.
//!
//! Plain syslog over TCP has no application acknowledgements. What a sender can know is which
//! bytes the receiving kernel acknowledged: Linux reports the bytes still in the send queue
//! (unsent or unacknowledged) through the `SIOCOUTQ` ioctl. Data not acknowledged when a
//! connection breaks is sent again.

use std::os::fd::RawFd;

/// Bytes written to `fd` that the peer has not acknowledged yet; `None` if the kernel does
/// not say (then the caller must treat nothing as acknowledged).
#[allow(unsafe_code)]
pub fn unacknowledged(fd: RawFd) -> Option<u64> {
    let mut queued: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (TIOCOUTQ on Linux) writes one c_int through the pointer, which points
    // at a live local; `fd` is a socket the caller keeps open for the length of the call.
    let r = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut queued as *mut libc::c_int) };
    (r == 0 && queued >= 0).then_some(queued as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_read_peer_acknowledges_everything() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, _) = listener.accept().unwrap();
        client.write_all(&[7u8; 1000]).unwrap();
        // Loopback acknowledges at once, whether or not the server reads.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while unacknowledged(client.as_raw_fd()) != Some(0) {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}
