//! UDP with batched system calls: `recvmmsg` takes every datagram waiting on
//! a socket in one call, `sendmmsg` sends a whole tick's packets — to many
//! different endpoints — in one call. That is why a worker has one shared
//! socket for every endpoint it serves, rather than one socket per call leg
//! (see ARCHITECTURE.md, "Socket layout", for the measurement).
//!
//! Other systems get the same interface over one call per datagram.

use std::io;
use std::net::{SocketAddr, UdpSocket};

/// The most datagrams one system call moves.
pub const BATCH: usize = 64;
/// The largest datagram kept; longer ones are truncated and dropped.
pub const MAX_DATAGRAM: usize = 1500;
/// Socket buffers sized for a burst of a large conference's tick (the
/// kernel caps them at `net.core.rmem_max` / `wmem_max`).
const SOCKET_BUFFER: usize = 4 << 20;

/// A non-blocking UDP socket that moves datagrams in batches.
#[derive(Debug)]
pub struct BatchSocket {
    socket: UdpSocket,
}

/// Reusable receive buffers for [`BatchSocket::recv_batch`].
pub struct RecvBatch {
    buffers: Vec<[u8; MAX_DATAGRAM]>,
    lengths: Vec<usize>,
    sources: Vec<Option<SocketAddr>>,
    truncated: Vec<bool>,
    #[cfg(target_os = "linux")]
    sys: sys::RecvScratch,
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self {
            buffers: vec![[0; MAX_DATAGRAM]; BATCH],
            lengths: vec![0; BATCH],
            sources: vec![None; BATCH],
            truncated: vec![false; BATCH],
            #[cfg(target_os = "linux")]
            sys: sys::RecvScratch::default(),
        }
    }
}

impl RecvBatch {
    /// Datagram `i` of the last receive: its bytes and source. `None` for a
    /// datagram that was truncated or whose source is not IP.
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if self.truncated[i] {
            return None;
        }
        Some((&self.buffers[i][..self.lengths[i]], self.sources[i]?))
    }
}

/// Reusable send state for [`BatchSocket::send_batch`].
#[derive(Default)]
pub struct SendBatch {
    #[cfg(target_os = "linux")]
    sys: sys::SendScratch,
}

/// Sleeps until one of `sockets` is readable or `timeout` passes (a
/// signal just ends it early: the caller looks again either way).
pub(super) fn wait_readable(sockets: &[&UdpSocket], timeout: std::time::Duration) {
    use std::os::fd::AsRawFd;
    let mut fds: Vec<libc::pollfd> =
        sockets.iter().map(|s| libc::pollfd { fd: s.as_raw_fd(), events: libc::POLLIN, revents: 0 }).collect();
    let spec = libc::timespec { tv_sec: timeout.as_secs() as libc::time_t, tv_nsec: timeout.subsec_nanos().into() };
    // SAFETY: `fds` is a valid array of pollfd for the call's duration.
    unsafe {
        libc::ppoll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, &spec, std::ptr::null());
    }
}

impl BatchSocket {
    /// Binds a non-blocking socket with large buffers.
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        let socket = UdpSocket::bind(addr)?;
        socket.set_nonblocking(true)?;
        #[cfg(target_os = "linux")]
        sys::grow_buffers(&socket, SOCKET_BUFFER);
        Ok(Self { socket })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The socket, for `poll`.
    pub fn inner(&self) -> &UdpSocket {
        &self.socket
    }

    /// The socket itself (non-blocking), for a thread that needs no batches.
    pub fn into_inner(self) -> UdpSocket {
        self.socket
    }

    /// Receives up to [`BATCH`] waiting datagrams into `batch`; returns how
    /// many (0 when none is waiting).
    pub fn recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        #[cfg(target_os = "linux")]
        {
            sys::recv(&self.socket, batch)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let mut n = 0;
            while n < BATCH {
                match self.socket.recv_from(&mut batch.buffers[n]) {
                    Ok((len, from)) => {
                        batch.lengths[n] = len;
                        batch.sources[n] = Some(from);
                        batch.truncated[n] = false;
                        n += 1;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if n == 0 => return Err(e),
                    Err(_) => break,
                }
            }
            Ok(n)
        }
    }

    /// Sends each `(destination, datagram)`, [`BATCH`] per system call.
    /// Returns how many the kernel took; the rest (a full send buffer, an
    /// unreachable destination) are dropped, as a network would.
    pub fn send_batch(&self, batch: &mut SendBatch, packets: &[(SocketAddr, &[u8])]) -> usize {
        #[cfg(target_os = "linux")]
        {
            sys::send(&self.socket, &mut batch.sys, packets)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = batch;
            packets.iter().filter(|(to, bytes)| self.socket.send_to(bytes, to).is_ok()).count()
        }
    }
}

#[cfg(target_os = "linux")]
mod sys {
    //! The `recvmmsg`/`sendmmsg` calls. The header arrays point into
    //! buffers owned by the batch; the pointers are rebuilt before every
    //! call, so nothing self-referential outlives a call.

    use super::{RecvBatch, BATCH, MAX_DATAGRAM};
    use std::io;
    use std::mem::{size_of, zeroed};
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
    use std::os::fd::AsRawFd;

    pub struct RecvScratch {
        headers: Vec<libc::mmsghdr>,
        iovecs: Vec<libc::iovec>,
        names: Vec<libc::sockaddr_storage>,
    }

    impl Default for RecvScratch {
        fn default() -> Self {
            // SAFETY: these are plain C structs for which all-zero bytes are
            // a valid (empty) value.
            unsafe {
                Self { headers: vec![zeroed(); BATCH], iovecs: vec![zeroed(); BATCH], names: vec![zeroed(); BATCH] }
            }
        }
    }

    pub struct SendScratch {
        headers: Vec<libc::mmsghdr>,
        iovecs: Vec<libc::iovec>,
        names: Vec<libc::sockaddr_storage>,
    }

    impl Default for SendScratch {
        fn default() -> Self {
            // SAFETY: as for RecvScratch.
            unsafe {
                Self { headers: vec![zeroed(); BATCH], iovecs: vec![zeroed(); BATCH], names: vec![zeroed(); BATCH] }
            }
        }
    }

    pub fn grow_buffers(socket: &UdpSocket, bytes: usize) {
        let value = bytes as libc::c_int;
        for option in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
            // SAFETY: a valid fd and a pointer to a c_int of the given size.
            // A refusal leaves the default size, which still works.
            unsafe {
                libc::setsockopt(
                    socket.as_raw_fd(),
                    libc::SOL_SOCKET,
                    option,
                    (&value as *const libc::c_int).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
    }

    pub fn recv(socket: &UdpSocket, batch: &mut RecvBatch) -> io::Result<usize> {
        let s = &mut batch.sys;
        for i in 0..BATCH {
            s.iovecs[i] = libc::iovec { iov_base: batch.buffers[i].as_mut_ptr().cast(), iov_len: MAX_DATAGRAM };
            // SAFETY: all-zero is a valid msghdr.
            s.headers[i].msg_hdr = unsafe { zeroed() };
            s.headers[i].msg_hdr.msg_name = (&mut s.names[i] as *mut libc::sockaddr_storage).cast();
            s.headers[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            s.headers[i].msg_hdr.msg_iov = &mut s.iovecs[i];
            s.headers[i].msg_hdr.msg_iovlen = 1;
            s.headers[i].msg_len = 0;
        }
        // SAFETY: every header points at an iovec and a sockaddr_storage
        // owned by `batch`, alive and unaliased for the duration of the call;
        // the kernel writes at most the lengths given.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                s.headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(err),
            };
        }
        let n = n as usize;
        for i in 0..n {
            let h = &s.headers[i];
            batch.lengths[i] = (h.msg_len as usize).min(MAX_DATAGRAM);
            batch.truncated[i] = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            batch.sources[i] = from_storage(&s.names[i]);
        }
        Ok(n)
    }

    pub fn send(socket: &UdpSocket, s: &mut SendScratch, packets: &[(SocketAddr, &[u8])]) -> usize {
        let mut sent = 0;
        for chunk in packets.chunks(BATCH) {
            for (i, (to, bytes)) in chunk.iter().enumerate() {
                let len = to_storage(to, &mut s.names[i]);
                s.iovecs[i] = libc::iovec { iov_base: bytes.as_ptr() as *mut libc::c_void, iov_len: bytes.len() };
                // SAFETY: all-zero is a valid msghdr.
                s.headers[i].msg_hdr = unsafe { zeroed() };
                s.headers[i].msg_hdr.msg_name = (&mut s.names[i] as *mut libc::sockaddr_storage).cast();
                s.headers[i].msg_hdr.msg_namelen = len;
                s.headers[i].msg_hdr.msg_iov = &mut s.iovecs[i];
                s.headers[i].msg_hdr.msg_iovlen = 1;
            }
            let mut from = 0;
            while from < chunk.len() {
                // SAFETY: headers[from..chunk.len()] point at iovecs and
                // addresses in `s` and at the caller's datagrams, all alive
                // for the call; the kernel only reads them.
                let n = unsafe {
                    libc::sendmmsg(
                        socket.as_raw_fd(),
                        s.headers[from..].as_mut_ptr(),
                        (chunk.len() - from) as libc::c_uint,
                        libc::MSG_DONTWAIT,
                    )
                };
                if n <= 0 {
                    // The datagram at `from` failed (a full buffer, or an
                    // ICMP error from an earlier send): drop it, go on.
                    from += 1;
                    continue;
                }
                sent += n as usize;
                from += n as usize;
            }
        }
        sent
    }

    fn to_storage(addr: &SocketAddr, storage: &mut libc::sockaddr_storage) -> libc::socklen_t {
        match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for
                // every sockaddr type.
                unsafe { std::ptr::write((storage as *mut libc::sockaddr_storage).cast(), sin) };
                size_of::<libc::sockaddr_in>() as libc::socklen_t
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: as above.
                unsafe { std::ptr::write((storage as *mut libc::sockaddr_storage).cast(), sin6) };
                size_of::<libc::sockaddr_in6>() as libc::socklen_t
            }
        }
    }

    fn from_storage(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
        match i32::from(storage.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says the kernel wrote a sockaddr_in.
                let sin: libc::sockaddr_in =
                    unsafe { std::ptr::read((storage as *const libc::sockaddr_storage).cast()) };
                let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
                Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the kernel wrote a sockaddr_in6.
                let sin6: libc::sockaddr_in6 =
                    unsafe { std::ptr::read((storage as *const libc::sockaddr_storage).cast()) };
                let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                Some(SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_reaches_many_destinations_and_comes_back_with_sources() {
        let server = BatchSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let peers: Vec<_> = (0..100).map(|_| BatchSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap()).collect();
        let datagrams: Vec<(SocketAddr, Vec<u8>)> =
            peers.iter().enumerate().map(|(i, p)| (p.local_addr().unwrap(), vec![i as u8; 20 + i])).collect();
        let packets: Vec<(SocketAddr, &[u8])> = datagrams.iter().map(|(a, b)| (*a, b.as_slice())).collect();
        let mut send = SendBatch::default();
        assert_eq!(server.send_batch(&mut send, &packets), 100);

        let mut recv = RecvBatch::default();
        let server_addr = server.local_addr().unwrap();
        for (i, p) in peers.iter().enumerate() {
            let n = wait_for(p, &mut recv);
            assert_eq!(n, 1);
            let (bytes, from) = recv.get(0).unwrap();
            assert_eq!((bytes.len(), bytes[0], from), (20 + i, i as u8, server_addr));
            // Answer from the peer: the server sees every source.
            let mut s = SendBatch::default();
            p.send_batch(&mut s, &[(server_addr, &[i as u8; 8][..])]);
        }
        let mut seen = Vec::new();
        while seen.len() < 100 {
            let n = wait_for(&server, &mut recv);
            for k in 0..n {
                let (bytes, from) = recv.get(k).unwrap();
                assert_eq!(from, peers[usize::from(bytes[0])].local_addr().unwrap());
                seen.push(bytes[0]);
            }
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<u8>>());
    }

    #[test]
    fn nothing_waiting_is_zero_not_an_error() {
        let s = BatchSocket::bind("[::1]:0".parse().unwrap()).unwrap();
        assert_eq!(s.recv_batch(&mut RecvBatch::default()).unwrap(), 0);
    }

    fn wait_for(socket: &BatchSocket, batch: &mut RecvBatch) -> usize {
        for _ in 0..1000 {
            let n = socket.recv_batch(batch).unwrap();
            if n > 0 {
                return n;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        panic!("nothing arrived");
    }
}
