//! The socket layout of the media runtime, measured: sending one tick's
//! packets (100 bytes each) to 500 endpoints
//! - `per_leg_sockets`: one socket per call leg, one `sendto` per packet
//!   (what a socket-per-leg design does),
//! - `shared_socket_sendmmsg`: one socket for all, `sendmmsg` 64 at a time
//!   (what `confero_media::runtime` does),
//!
//! and receiving 500 endpoints' packets
//! - `per_leg_recv`: one `recvfrom` per leg's socket (readiness already
//!   known, so this flatters the per-leg design: no epoll cost counted),
//! - `shared_recvmmsg`: `recvmmsg` on the one shared socket.
//!
//! Throughput is in packets. The receivers are drained outside the timed
//! part. Reproduce with `cargo bench --bench udp`.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use confero_media::runtime::{BatchSocket, RecvBatch, SendBatch};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const LEGS: usize = 500;

fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_nonblocking(true).unwrap();
    s
}

fn drain(sockets: &[UdpSocket]) {
    let mut buf = [0u8; 1500];
    for s in sockets {
        while s.recv_from(&mut buf).is_ok() {}
    }
}

fn udp(c: &mut Criterion) {
    let payload = [0x80u8; 100];
    let endpoints: Vec<UdpSocket> = (0..LEGS).map(|_| socket()).collect();
    let addrs: Vec<SocketAddr> = endpoints.iter().map(|s| s.local_addr().unwrap()).collect();
    let legs: Vec<UdpSocket> = (0..LEGS).map(|_| socket()).collect();
    let shared = BatchSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let shared_addr = shared.local_addr().unwrap();

    let mut g = c.benchmark_group("udp");
    g.throughput(Throughput::Elements(LEGS as u64));
    g.bench_function("per_leg_sockets", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                for (s, a) in legs.iter().zip(&addrs) {
                    let _ = s.send_to(&payload, a);
                }
                total += t.elapsed();
                drain(&endpoints);
            }
            total
        })
    });
    let packets: Vec<(SocketAddr, &[u8])> = addrs.iter().map(|a| (*a, &payload[..])).collect();
    let mut batch = SendBatch::default();
    g.bench_function("shared_socket_sendmmsg", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                shared.send_batch(&mut batch, &packets);
                total += t.elapsed();
                drain(&endpoints);
            }
            total
        })
    });

    // Receiving: each endpoint sends one packet to its leg's socket, or to
    // the shared socket.
    let mut buf = [0u8; 1500];
    g.bench_function("per_leg_recv", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                for (e, l) in endpoints.iter().zip(&legs) {
                    let _ = e.send_to(&payload, l.local_addr().unwrap());
                }
                let t = Instant::now();
                for l in &legs {
                    let _ = l.recv_from(&mut buf);
                }
                total += t.elapsed();
            }
            total
        })
    });
    let mut recv = RecvBatch::default();
    g.bench_function("shared_recvmmsg", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                for e in &endpoints {
                    let _ = e.send_to(&payload, shared_addr);
                }
                let t = Instant::now();
                let mut got = 0;
                while got < LEGS {
                    match shared.recv_batch(&mut recv) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got += n,
                    }
                }
                total += t.elapsed();
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, udp);
criterion_main!(benches);
