//! The load generator of `scripts/bench-audio`: many RTP participants on
//! loopback against one mixing server (Confero's `media_server` example or
//! Janus AudioBridge), and a verdict on whether every receiver got its 20 ms
//! frames on time.
//!
//! It lives beside `media_server` as an example of the media crate because it
//! uses that crate's own Opus encoder and RTP writer, and because it is a
//! measuring tool, not part of the product.
//!
//! Why it is built the way it is:
//! - Opus is encoded once at start (speech from a WAV file, and silence with
//!   DTX) and the packets are replayed with each participant's own SSRC,
//!   sequence and timestamp: encoding per participant would make the generator
//!   the bottleneck long before the server.
//! - One UDP socket per participant, sending from the port it receives on,
//!   because Janus `connect()`s its socket to the address it was given.
//! - One thread and one epoll set (mio) for all sockets; sends are spread over
//!   the 20 ms period in 1 ms buckets, so the server sees a steady stream
//!   rather than one burst per tick.
//! - The generator checks itself: how late its own sends were and how much of
//!   its core it used. A trial where it fell behind is reported as invalid, so
//!   that its own limit is never mistaken for the server's.
//!
//! On time, per receiver over the measurement window W: expected = W / 20 ms
//! frames. Each received packet has an extended sequence number s and an
//! arrival time a; the receiver's anchor is the minimum of a − s·20 ms over
//! the packets that arrived from the window's start on, and frame s's slot is
//! anchor + s·20 ms. A frame counts when its slot lies in the window and a
//! packet with its sequence number arrived no later than slot + allowance
//! (60 ms by default). A receiver passes when its distinct on-time frames are
//! at least 99 % of expected; a trial passes when every receiver passes.
//!
//! Output: progress on stderr, then one `result key=value ...` line on stdout.
//! `LOADGEN_DEBUG=1` also prints every sequence discontinuity a receiver sees.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use confero_media::codec::FRAME_SAMPLES;
use confero_media::rtcp::is_rtcp;
use confero_media::rtp::{HeaderExtension, RtpHeader, RtpPacket};
use confero_media::srtp::SrtpContext;
use confero_media::transport::dtls::DtlsIdentity;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use serde_json::{json, Value};

#[path = "loadgen/shared.rs"]
mod shared;
#[path = "loadgen/webrtc.rs"]
mod webrtc;

use shared::{cpu_ns, encode, flags, synthetic_speech, Frame, Res, Rng};
use webrtc::WebJoined;

const FRAME: Duration = Duration::from_millis(20);
const FRAME_NS: i64 = 20_000_000;
/// Send buckets per 20 ms frame: each participant sends in one of them.
const BUCKETS: u64 = 20;
const PAYLOAD_TYPE: u8 = 111;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Load {
    /// 5-party rooms in conversation: one or two talk at once.
    Small,
    /// Rooms of up to 200, three talking.
    Large,
    /// 5-party rooms, everyone talking.
    AllTalk,
}

enum Server {
    Janus {
        url: String,
    },
    /// The media engine alone, driven over `media_server`'s stdin protocol;
    /// `webrtc`: each participant joins as a browser would (ICE check,
    /// DTLS-SRTP handshake, SRTP on the worker's one port).
    Confero {
        cmd_in: String,
        cmd_out: String,
        webrtc: bool,
    },
    /// The real `confero` binary, each participant calling the space
    /// `benchroom<R>` over SIP (INVITE with an Opus offer, ACK).
    ConferoSip {
        sip: SocketAddr,
    },
}

struct Args {
    server: Server,
    load: Load,
    participants: usize,
    warmup: Duration,
    window: Duration,
    allowance: Duration,
    level_ext: Option<u8>,
    speech: Option<String>,
    seed: u64,
}

fn usage() -> ! {
    eprintln!(
        "usage: audio_loadgen --server janus|confero --load small|large|alltalk -n N \
         [--warmup S] [--window S] [--allowance-ms MS] [--level-ext ID|0] [--speech WAV] [--seed N] \
         [--janus-url URL] [--confero-in FIFO --confero-out FIFO [--transport rtp|webrtc]] [--confero-sip IP:PORT]"
    );
    std::process::exit(2)
}

fn parse_args() -> Res<Args> {
    let kv = flags(usage);
    let get = |k: &str| kv.get(k).cloned();
    let secs = |k: &str, d: f64| -> Res<Duration> {
        Ok(Duration::from_secs_f64(get(k).map(|v| v.parse::<f64>()).transpose()?.unwrap_or(d)))
    };
    let server = match get("server").as_deref() {
        Some("janus") => {
            Server::Janus { url: get("janus-url").unwrap_or_else(|| "http://127.0.0.1:8088/janus".into()) }
        }
        Some("confero") => match get("confero-sip") {
            Some(addr) => Server::ConferoSip { sip: addr.parse()? },
            None => Server::Confero {
                cmd_in: get("confero-in").unwrap_or_else(|| usage()),
                cmd_out: get("confero-out").unwrap_or_else(|| usage()),
                webrtc: match get("transport").as_deref() {
                    None | Some("rtp") => false,
                    Some("webrtc") => true,
                    _ => usage(),
                },
            },
        },
        _ => usage(),
    };
    let load = match get("load").as_deref() {
        Some("small") => Load::Small,
        Some("large") => Load::Large,
        Some("alltalk") => Load::AllTalk,
        _ => usage(),
    };
    let level_ext = match get("level-ext").map(|v| v.parse::<u8>()).transpose()?.unwrap_or(1) {
        0 => None,
        id => Some(id),
    };
    Ok(Args {
        server,
        load,
        participants: get("n").unwrap_or_else(|| usage()).parse()?,
        warmup: secs("warmup", 3.0)?,
        window: secs("window", 10.0)?,
        allowance: Duration::from_millis(get("allowance-ms").map(|v| v.parse()).transpose()?.unwrap_or(60)),
        level_ext,
        speech: get("speech"),
        seed: get("seed").map(|v| v.parse()).transpose()?.unwrap_or(1),
    })
}

/// 16-bit PCM mono 48 kHz from a WAV file (the script makes it with espeak-ng
/// and sox), or `None` when the file is not that.
fn read_wav(path: &str) -> Res<Vec<i16>> {
    let mut data = Vec::new();
    File::open(path)?.read_to_end(&mut data)?;
    if data.len() < 12 || &data[0..4] != b"RIFF" || &data[8..12] != b"WAVE" {
        return Err("not a WAV file".into());
    }
    let mut pos = 12;
    let mut format_ok = false;
    while pos + 8 <= data.len() {
        let id = &data[pos..pos + 4];
        let len = u32::from_le_bytes(data[pos + 4..pos + 8].try_into()?) as usize;
        let body = &data[pos + 8..(pos + 8 + len).min(data.len())];
        if id == b"fmt " && body.len() >= 16 {
            let channels = u16::from_le_bytes(body[2..4].try_into()?);
            let rate = u32::from_le_bytes(body[4..8].try_into()?);
            let bits = u16::from_le_bytes(body[14..16].try_into()?);
            format_ok = channels == 1 && rate == 48_000 && bits == 16;
        } else if id == b"data" {
            if !format_ok {
                return Err("WAV must be mono 48 kHz 16-bit".into());
            }
            return Ok(body.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect());
        }
        pos += 8 + len + (len & 1);
    }
    Err("WAV without data".into())
}

/// What each receiver saw inside the measurement window.
#[derive(Default)]
struct Receiver {
    highest: Option<u64>,
    /// (extended sequence, arrival in ns since the window started).
    packets: Vec<(u64, i64)>,
    total: u64,
    /// The SSRC of the last packet, and how often it changed.
    ssrc: Option<u32>,
    ssrc_changes: u64,
    /// Packets whose sequence number did not follow the previous one.
    seq_jumps: u64,
    last_ext: Option<u64>,
    rtcp: u64,
}

impl Receiver {
    fn extend(&mut self, seq: u16) -> u64 {
        let ext = match self.highest {
            None => u64::from(seq) + (1 << 16),
            Some(h) => {
                let cand = (h & !0xffff) | u64::from(seq);
                let diff = cand as i64 - h as i64;
                if diff < -0x8000 {
                    cand + 0x10000
                } else if diff > 0x8000 {
                    cand - 0x10000
                } else {
                    cand
                }
            }
        };
        if self.highest.is_none_or(|h| ext > h) {
            self.highest = Some(ext);
        }
        ext
    }

    /// Distinct frames whose slot lies in the window and that came on time
    /// (see the module comment). Counting by slot rather than by arrival
    /// keeps the window's edges from costing a frame.
    fn on_time(&self, window_ns: i64, allowance_ns: i64) -> u64 {
        let Some(anchor) = self.packets.iter().map(|&(s, a)| a - s as i64 * FRAME_NS).min() else {
            return 0;
        };
        let mut seqs: Vec<u64> = self
            .packets
            .iter()
            .filter(|&&(s, a)| {
                let slot = anchor + s as i64 * FRAME_NS;
                (0..window_ns).contains(&slot) && a <= slot + allowance_ns
            })
            .map(|&(s, _)| s)
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        seqs.len() as u64
    }
}

struct Participant {
    sock: UdpSocket,
    room: usize,
    /// Index inside the room (talk schedules are per room).
    member: usize,
    ssrc: u32,
    seq: u16,
    ts0: u32,
    speech_offset: usize,
    silence_offset: usize,
    /// Whether the previous frame was sent (the marker bit starts a talkspurt).
    sent_last: bool,
    rx: Receiver,
    /// WebRTC: what protects its packets, once DTLS has keyed it.
    srtp: Option<SrtpContext>,
}

/// Minimal HTTP/1.0 (no chunked replies) for Janus's JSON API: one request per connection.
fn http(url_base: &str, method: &str, path: &str, body: Option<&Value>) -> Res<Value> {
    let rest = url_base.strip_prefix("http://").ok_or("janus url must be http://")?;
    let (host, base) = rest.split_once('/').map(|(h, b)| (h, format!("/{b}"))).unwrap_or((rest, String::new()));
    let mut s = TcpStream::connect(host)?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {base}{path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let text = String::from_utf8_lossy(&resp);
    let (_, json_text) = text.split_once("\r\n\r\n").ok_or("bad HTTP response")?;
    Ok(serde_json::from_str(json_text.trim())?)
}

fn tx() -> String {
    format!("t{}", Instant::now().elapsed().as_nanos() ^ u128::from(std::process::id()))
}

/// Creates rooms and joins every participant over Janus's HTTP API; returns
/// each participant's Janus RTP address.
fn janus_join(url: &str, parts: &[Participant], rooms: usize, level_ext: Option<u8>) -> Res<Vec<SocketAddr>> {
    let created = http(url, "POST", "", Some(&json!({"janus": "create", "transaction": tx()})))?;
    let sid = created["data"]["id"].as_u64().ok_or_else(|| format!("janus create: {created}"))?;
    let spath = format!("/{sid}");
    let mut handles = Vec::with_capacity(parts.len());
    for _ in parts {
        let a = http(
            url,
            "POST",
            &spath,
            Some(&json!({"janus": "attach", "plugin": "janus.plugin.audiobridge", "transaction": tx()})),
        )?;
        handles.push(a["data"]["id"].as_u64().ok_or_else(|| format!("janus attach: {a}"))?);
    }
    for r in 0..rooms {
        let body = json!({
            "request": "create", "room": 1000 + r, "sampling_rate": 48000,
            "allow_rtp_participants": true, "audiolevel_ext": level_ext.is_some(),
        });
        let resp = http(
            url,
            "POST",
            &format!("{spath}/{}", handles[0]),
            Some(&json!({"janus": "message", "transaction": tx(), "body": body})),
        )?;
        if resp["plugindata"]["data"]["audiobridge"] != "created" {
            return Err(format!("janus room create: {resp}").into());
        }
    }
    let mut by_handle = HashMap::new();
    for (i, (p, h)) in parts.iter().zip(&handles).enumerate() {
        let port = p.sock.local_addr()?.port();
        let mut rtp = json!({"ip": "127.0.0.1", "port": port, "payload_type": PAYLOAD_TYPE});
        if let Some(id) = level_ext {
            rtp["audiolevel_ext"] = json!(id);
        }
        let body = json!({"request": "join", "room": 1000 + p.room, "display": format!("p{i}"), "rtp": rtp});
        let resp = http(
            url,
            "POST",
            &format!("{spath}/{h}"),
            Some(&json!({"janus": "message", "transaction": tx(), "body": body})),
        )?;
        if resp["janus"] != "ack" {
            return Err(format!("janus join: {resp}").into());
        }
        by_handle.insert(*h, i);
    }
    let mut addrs: Vec<Option<SocketAddr>> = vec![None; parts.len()];
    let mut missing = parts.len();
    let deadline = Instant::now() + Duration::from_secs(60);
    while missing > 0 {
        if Instant::now() > deadline {
            return Err(format!("janus: {missing} joins unanswered").into());
        }
        let evs = http(url, "GET", &format!("{spath}?maxev=1000"), None)?;
        let list = if evs.is_array() { evs.as_array().cloned().unwrap_or_default() } else { vec![evs] };
        for ev in list {
            let data = &ev["plugindata"]["data"];
            if let Some(e) = data.get("error") {
                return Err(format!("janus join error: {e}").into());
            }
            if data["audiobridge"] != "joined" || data.get("rtp").is_none() {
                continue;
            }
            let Some(&i) = ev["sender"].as_u64().and_then(|h| by_handle.get(&h)) else { continue };
            let port = data["rtp"]["port"].as_u64().ok_or("joined without rtp port")? as u16;
            if addrs[i].replace(SocketAddr::from(([127, 0, 0, 1], port))).is_none() {
                missing -= 1;
            }
        }
    }
    Ok(addrs.into_iter().map(|a| a.expect("every join answered")).collect())
}

/// Joins every participant through `media_server`'s line protocol; with
/// `web`, as browsers (`join-web`), each with the ICE and DTLS details to
/// connect with.
fn confero_join(
    cmd_in: &str,
    cmd_out: &str,
    parts: &[Participant],
    level_ext: Option<u8>,
    web: Option<&DtlsIdentity>,
) -> Res<(Vec<SocketAddr>, Vec<WebJoined>)> {
    let mut w = OpenOptions::new().write(true).open(cmd_in)?;
    let mut r = BufReader::new(File::open(cmd_out)?);
    let mut addrs = Vec::with_capacity(parts.len());
    let mut joined = Vec::new();
    let mut line = String::new();
    for (i, p) in parts.iter().enumerate() {
        let port = p.sock.local_addr()?.port();
        let ext = level_ext.map(|id| format!(" {id}")).unwrap_or_default();
        match web {
            Some(identity) => {
                writeln!(w, "join-web room{} {PAYLOAD_TYPE} lg{i} {}{ext}", p.room, webrtc::digest(identity))?
            }
            None => writeln!(w, "join room{} 127.0.0.1:{port} {PAYLOAD_TYPE}{ext}", p.room)?,
        }
        w.flush()?;
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err("media_server closed its output".into());
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.first() != Some(&"joined") || f.len() < 4 {
            return Err(format!("media_server: {}", line.trim()).into());
        }
        addrs.push(f[3].parse()?);
        if web.is_some() {
            joined.push(WebJoined::parse(&f)?);
        }
    }
    Ok((addrs, joined))
}

/// Calls every participant into its room's space over SIP: an INVITE with
/// an Opus offer from the participant's RTP port (with the RFC 6464
/// extension when levels are on), the 200's SDP for where to send, an ACK.
/// One signalling socket for all; the calls stay up until the server ends.
fn confero_sip_join(sip: SocketAddr, parts: &[Participant], level_ext: Option<u8>) -> Res<Vec<SocketAddr>> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(Duration::from_secs(5)))?;
    let me = socket.local_addr()?;
    let mut addrs = Vec::with_capacity(parts.len());
    let mut buf = vec![0u8; 65_536];
    for (i, p) in parts.iter().enumerate() {
        let port = p.sock.local_addr()?.port();
        let ext = level_ext
            .map(|id| format!("a=extmap:{id} urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"))
            .unwrap_or_default();
        let sdp = format!(
            "v=0\r\no=- {i} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP {PAYLOAD_TYPE}\r\na=rtpmap:{PAYLOAD_TYPE} opus/48000/2\r\n{ext}a=rtcp-mux\r\na=sendrecv\r\n"
        );
        let user = format!("benchroom{}", p.room);
        let call_id = format!("bench{i}-{port}");
        let head = |method: &str, cseq: &str, to: &str, branch: &str| {
            format!(
                "{method} sip:{user}@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{branch};rport\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:p{i}@{me}>;tag=f{i}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n\
                 CSeq: {cseq}\r\nContact: <sip:p{i}@{me}>\r\n"
            )
        };
        let invite = format!(
            "{}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            head("INVITE", "1 INVITE", &format!("<sip:{user}@{sip}>"), &format!("i{i}")),
            sdp.len()
        );
        socket.send_to(invite.as_bytes(), sip)?;
        let ok = loop {
            let (n, _) =
                socket.recv_from(&mut buf).map_err(|e| format!("no answer to participant {i}'s INVITE: {e}"))?;
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if !text.contains(&call_id) {
                continue;
            }
            let status = text.split_whitespace().nth(1).unwrap_or("");
            if status.starts_with('1') {
                continue;
            }
            if status != "200" {
                return Err(format!("participant {i}: {}", text.lines().next().unwrap_or("")).into());
            }
            break text;
        };
        let field = |prefix: &str| ok.lines().find_map(|l| l.strip_prefix(prefix).map(str::trim).map(str::to_string));
        let to = ok
            .lines()
            .find_map(|l| {
                l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case("to")).map(|(_, v)| v.trim().to_string())
            })
            .ok_or("200 without To")?;
        let host = field("c=IN IP4 ").ok_or("answer without c=")?;
        let media_port = field("m=audio ")
            .and_then(|m| m.split_whitespace().next().map(str::to_string))
            .ok_or("answer without m=audio")?;
        let ack = format!("{}Content-Length: 0\r\n\r\n", head("ACK", "1 ACK", &to, &format!("a{i}")));
        socket.send_to(ack.as_bytes(), sip)?;
        addrs.push(format!("{host}:{media_port}").parse()?);
    }
    // Keep the signalling socket's port from being reused while the calls are up.
    std::mem::forget(socket);
    Ok(addrs)
}

/// Per-room talk schedule: bit m of frame k says whether member m talks.
fn schedule(load: Load, members: usize, frames: usize, rng: &mut Rng) -> Vec<u8> {
    match load {
        Load::AllTalk => vec![0xff; frames],
        Load::Large => vec![0b111; frames],
        Load::Small => {
            // Turns of 2–5 s by one speaker (never the same twice in a row);
            // in about a third of them another member cuts in for 0.5–1.5 s.
            let mut s = vec![0u8; frames];
            let mut k = 0;
            let mut prev = members;
            while k < frames {
                let len = rng.range(100, 250) as usize;
                let mut who = rng.below(members as u64) as usize;
                if who == prev {
                    who = (who + 1) % members;
                }
                prev = who;
                for f in s.iter_mut().skip(k).take(len) {
                    *f |= 1 << who;
                }
                if rng.below(3) == 0 {
                    let other = (who + 1 + rng.below(members as u64 - 1) as usize) % members;
                    let olen = rng.range(25, 75) as usize;
                    let start = k + rng.below((len - olen.min(len)) as u64 + 1) as usize;
                    for f in s.iter_mut().skip(start).take(olen) {
                        *f |= 1 << other;
                    }
                }
                k += len;
            }
            s
        }
    }
}

fn main() -> Res<()> {
    let args = parse_args()?;
    let n = args.participants;
    let mut rng = Rng(args.seed.wrapping_mul(0x2545_f491_4f6c_dd1d));

    // Pre-encode once.
    let speech_pcm = match &args.speech {
        Some(p) => read_wav(p).map_err(|e| format!("{p}: {e}"))?,
        None => synthetic_speech(20, &mut rng),
    };
    let speech = encode(&speech_pcm, true)?;
    // Digital silence, as a muted or noise-suppressed microphone gives it:
    // libopus then sends one DTX packet about every 400 ms.
    let silence_all = encode(&vec![0i16; 10 * 48_000], false)?;
    // Skip the encoder's first second, before DTX has settled.
    let silence: Vec<Frame> = silence_all.into_iter().skip(50).collect();
    let sent = |f: &[Frame]| f.iter().filter(|x| x.payload.is_some()).count();
    eprintln!(
        "loadgen: speech {} frames ({} sent, mean {} B), silence {} frames ({} sent: DTX)",
        speech.len(),
        sent(&speech),
        speech.iter().filter_map(|f| f.payload.as_ref().map(Vec::len)).sum::<usize>() / sent(&speech).max(1),
        silence.len(),
        sent(&silence)
    );

    // Rooms.
    let (room_size_max, rooms) = match args.load {
        Load::Small | Load::AllTalk => (5, n.div_ceil(5)),
        Load::Large => (200, n.div_ceil(200)),
    };
    let mut room_sizes = vec![n / rooms; rooms];
    for s in room_sizes.iter_mut().take(n % rooms) {
        *s += 1;
    }
    debug_assert!(room_sizes.iter().all(|&s| s <= room_size_max));

    let mut poll = Poll::new()?;
    let mut parts = Vec::with_capacity(n);
    for (room, &size) in room_sizes.iter().enumerate() {
        for member in 0..size {
            let i = parts.len();
            let mut sock = UdpSocket::bind("127.0.0.1:0".parse()?)?;
            poll.registry().register(&mut sock, Token(i), Interest::READABLE)?;
            parts.push(Participant {
                sock,
                room,
                member,
                ssrc: rng.next() as u32,
                seq: rng.next() as u16,
                ts0: rng.next() as u32,
                speech_offset: rng.below(speech.len() as u64) as usize,
                silence_offset: rng.below(silence.len() as u64) as usize,
                sent_last: false,
                rx: Receiver::default(),
                srtp: None,
            });
        }
    }

    let t_join = Instant::now();
    // One certificate for every simulated browser (each browser has its own;
    // the server checks each against what its join said, all the same).
    let identity = match args.server {
        Server::Confero { webrtc: true, .. } => Some(DtlsIdentity::generate()?),
        _ => None,
    };
    let (remotes, joined) = match &args.server {
        Server::Janus { url } => (janus_join(url, &parts, rooms, args.level_ext)?, Vec::new()),
        Server::Confero { cmd_in, cmd_out, .. } => {
            confero_join(cmd_in, cmd_out, &parts, args.level_ext, identity.as_ref())?
        }
        Server::ConferoSip { sip } => (confero_sip_join(*sip, &parts, args.level_ext)?, Vec::new()),
    };
    for (p, r) in parts.iter_mut().zip(&remotes) {
        p.sock.connect(*r)?;
    }
    eprintln!("loadgen: {n} participants in {rooms} rooms joined in {:.1} s", t_join.elapsed().as_secs_f64());
    let mut handshakes_per_s = None;
    if let Some(identity) = &identity {
        let socks: Vec<&UdpSocket> = parts.iter().map(|p| &p.sock).collect();
        let (keys, took) = webrtc::connect(&mut poll, &socks, Some, &joined, identity)?;
        for (p, k) in parts.iter_mut().zip(keys) {
            p.srtp = Some(k.outbound);
        }
        let rate = n as f64 / took.as_secs_f64().max(1e-6);
        eprintln!("loadgen: {n} ICE checks and DTLS handshakes in {:.2} s ({rate:.0}/s)", took.as_secs_f64());
        handshakes_per_s = Some(rate);
    }

    // Packets are kept until the allowance after the window has passed, so
    // that frames of the window's last slots can still count.
    let total = args.warmup + args.window + args.allowance;
    let frames = (total.as_nanos() / FRAME.as_nanos()) as usize + 2;
    let schedules: Vec<Vec<u8>> =
        room_sizes.iter().map(|&size| schedule(args.load, size.min(8), frames, &mut rng)).collect();
    {
        let talk: usize = schedules.iter().map(|s| s.iter().map(|b| b.count_ones() as usize).sum::<usize>()).sum();
        let two = schedules.iter().flat_map(|s| s.iter()).filter(|b| b.count_ones() >= 2).count();
        eprintln!(
            "loadgen: talk fraction per participant {:.2}; frames with 2+ talking {:.0} %",
            talk as f64 / (frames * n) as f64,
            100.0 * two as f64 / (frames * rooms) as f64
        );
    }
    // Spread participants over the buckets of the 20 ms period.
    let mut buckets: Vec<Vec<usize>> = vec![Vec::new(); BUCKETS as usize];
    for i in 0..n {
        buckets[rng.below(BUCKETS) as usize].push(i);
    }

    let bucket_ns = FRAME_NS as u64 / BUCKETS;
    let start = Instant::now() + Duration::from_millis(5);
    let win_start = start + args.warmup;
    let win_end = win_start + args.window;
    let run_end = win_end + args.allowance;
    let mut next_bucket: u64 = 0;
    let mut events = Events::with_capacity(1024);
    let mut pkt = Vec::with_capacity(1500);
    let mut rbuf = [0u8; 1500];
    let mut late_ns: Vec<u64> = Vec::new();
    let mut sends: u64 = 0;
    let mut send_errors: u64 = 0;
    let mut cpu_at_window: Option<u64> = None;
    let mut cpu_at_end: Option<u64> = None;
    loop {
        let now = Instant::now();
        // Sends that are due.
        loop {
            let due = start + Duration::from_nanos(next_bucket * bucket_ns);
            if due > now {
                break;
            }
            let k = (next_bucket / BUCKETS) as usize;
            if k >= frames - 1 {
                break;
            }
            let lateness = now.saturating_duration_since(due).as_nanos() as u64;
            let in_window = due >= win_start && due < win_end;
            for &i in &buckets[(next_bucket % BUCKETS) as usize] {
                let p = &mut parts[i];
                let talking = schedules[p.room][k] & (1 << p.member.min(7)) != 0;
                let frame = if talking {
                    &speech[(p.speech_offset + k) % speech.len()]
                } else {
                    &silence[(p.silence_offset + k) % silence.len()]
                };
                // The very first packet always goes: Janus answers only after one.
                let payload = match (&frame.payload, k) {
                    (Some(pl), _) => pl.as_slice(),
                    (None, 0) => &[0xf8u8, 0xff, 0xfe][..],
                    (None, _) => {
                        p.sent_last = false;
                        continue;
                    }
                };
                let level = [frame.level];
                let ext = [HeaderExtension::new(args.level_ext.unwrap_or(1), &level)];
                let header = RtpHeader {
                    marker: !p.sent_last,
                    payload_type: PAYLOAD_TYPE,
                    sequence_number: p.seq,
                    timestamp: p.ts0.wrapping_add(k as u32 * FRAME_SAMPLES as u32),
                    ssrc: p.ssrc,
                    extensions: if args.level_ext.is_some() { &ext } else { &[] },
                    ..RtpHeader::default()
                };
                pkt.clear();
                header.write_packet(payload, &mut pkt)?;
                if let Some(srtp) = &mut p.srtp {
                    srtp.protect_rtp(&mut pkt)?;
                }
                match p.sock.send(&pkt) {
                    Ok(_) => sends += 1,
                    Err(_) => send_errors += 1,
                }
                p.seq = p.seq.wrapping_add(1);
                p.sent_last = true;
                if in_window {
                    late_ns.push(lateness);
                }
            }
            next_bucket += 1;
        }
        if cpu_at_window.is_none() && now >= win_start {
            cpu_at_window = Some(cpu_ns());
        }
        if now >= win_end && cpu_at_end.is_none() {
            cpu_at_end = Some(cpu_ns());
        }
        if now >= run_end {
            break;
        }
        let due = start + Duration::from_nanos(next_bucket * bucket_ns);
        let timeout = due.saturating_duration_since(Instant::now()).min(run_end - now);
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
        for ev in events.iter() {
            let p = &mut parts[ev.token().0];
            loop {
                match p.sock.recv(&mut rbuf) {
                    Ok(len) => {
                        let arrival = Instant::now();
                        // RTCP shares the port (RFC 5761): not a frame.
                        if is_rtcp(&rbuf[..len]) {
                            p.rx.rtcp += 1;
                            continue;
                        }
                        let Ok(rtp) = RtpPacket::parse(&rbuf[..len]) else { continue };
                        let ext = p.rx.extend(rtp.sequence_number());
                        p.rx.total += 1;
                        if p.rx.ssrc.is_some_and(|s| s != rtp.ssrc()) {
                            p.rx.ssrc_changes += 1;
                        }
                        p.rx.ssrc = Some(rtp.ssrc());
                        if p.rx.last_ext.is_some_and(|l| l + 1 != ext) {
                            p.rx.seq_jumps += 1;
                            if std::env::var_os("LOADGEN_DEBUG").is_some() {
                                eprintln!(
                                    "rx {}: seq {:?} -> {ext} ssrc {:x}",
                                    ev.token().0,
                                    p.rx.last_ext,
                                    rtp.ssrc()
                                );
                            }
                        }
                        p.rx.last_ext = Some(ext);
                        if arrival >= win_start {
                            p.rx.packets.push((ext, arrival.duration_since(win_start).as_nanos() as i64));
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }

    // Verdict.
    let expected = (args.window.as_nanos() / FRAME.as_nanos()) as u64;
    let allowance_ns = args.allowance.as_nanos() as i64;
    let window_ns = args.window.as_nanos() as i64;
    let mut ratios: Vec<f64> =
        parts.iter().map(|p| p.rx.on_time(window_ns, allowance_ns) as f64 / expected as f64).collect();
    ratios.sort_by(f64::total_cmp);
    let worst = ratios.first().copied().unwrap_or(0.0);
    let failing = ratios.iter().filter(|&&r| r < 0.99).count();
    let median = ratios.get(ratios.len() / 2).copied().unwrap_or(0.0);
    let received: u64 = parts.iter().map(|p| p.rx.total).sum();
    let ssrc_changes: u64 = parts.iter().map(|p| p.rx.ssrc_changes).sum();
    let seq_jumps: u64 = parts.iter().map(|p| p.rx.seq_jumps).sum();
    let rtcp: u64 = parts.iter().map(|p| p.rx.rtcp).sum();
    late_ns.sort_unstable();
    let pct = |q: f64| late_ns.get(((late_ns.len() as f64 * q) as usize).min(late_ns.len().saturating_sub(1)));
    let late_p99 = pct(0.99).copied().unwrap_or(0) as f64 / 1e6;
    let late_p999 = pct(0.999).copied().unwrap_or(0) as f64 / 1e6;
    let late_max = late_ns.last().copied().unwrap_or(0) as f64 / 1e6;
    let cpu_at_end = cpu_at_end.unwrap_or_else(cpu_ns);
    let busy = (cpu_at_end - cpu_at_window.unwrap_or(cpu_at_end)) as f64 / args.window.as_nanos() as f64;
    // The generator is behind when more than 1 % of its sends slip by over
    // 20 ms, a whole frame (it cannot keep up), when it stalled once for over
    // 50 ms (its arrival stamps could then eat most of the 60 ms allowance),
    // or when it used nearly all of its core. Preemptions of a few ms by
    // other processes on its core shift its stamps far less than the
    // allowance, so they do not void a trial.
    let valid = late_p99 <= 20.0 && late_max <= 50.0 && busy < 0.9 && send_errors == 0;
    let pass = valid && failing == 0 && worst >= 0.99;
    println!(
        "result n={n} rooms={rooms} pass={} valid={} worst_ontime={worst:.4} median_ontime={median:.4} \
         failing_receivers={failing} expected_frames={expected} sent={sends} send_errors={send_errors} \
         received={received} ssrc_changes={ssrc_changes} seq_jumps={seq_jumps} rtcp={rtcp} gen_busy={busy:.3} gen_late_p99_ms={late_p99:.2} gen_late_p999_ms={late_p999:.2} \
         gen_late_max_ms={late_max:.2}{}",
        u8::from(pass),
        u8::from(valid),
        handshakes_per_s.map(|h| format!(" handshakes_per_s={h:.0}")).unwrap_or_default()
    );
    Ok(())
}
