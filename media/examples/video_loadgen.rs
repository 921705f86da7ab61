//! The load generator of `scripts/bench-video`: 10-party 720p30 telepresence
//! rooms on loopback against Confero's `media_server` example, each
//! participant sending pre-encoded H.264 and Opus, and a verdict on whether
//! every receiver got at least `--min-fps` complete video frames a second.
//!
//! It lives beside `audio_loadgen` and `media_server` as an example of the
//! media crate because it uses that crate's own H.264 encoder and RTP
//! packetizer, and because it is a measuring tool, not part of the product.
//!
//! Why it is built the way it is:
//! - Video is encoded once at start: a few synthetic 1280x720 "camera"
//!   sequences (a coloured, shaded background per source, a moving textured
//!   block and light sensor noise, so the server's decoder and encoder do
//!   realistic work) through the crate's `H264Encoder` at 720p30, 1.5 Mbit/s,
//!   and `H264Packetizer` (mode 1, 1100-byte payloads). Only a sequence's
//!   first frame is an IDR; a replay that loops starts again at that IDR.
//!   Each participant replays one sequence with its own SSRC, sequence and
//!   90 kHz timestamps at 30 fps, a frame's packets sent together.
//! - Keyframe requests are answered: when the server sends PLI or FIR for a
//!   participant's stream (it does when a stream comes into view, or it lost
//!   one), that participant's replay jumps to the IDR at its next frame.
//! - Bitrate limits are honoured as a SIP video endpoint honours them (unless
//!   `--tmmbr off`): each camera sequence is also encoded at 640x360
//!   (500 kbit/s) and 320x180 (150 kbit/s), and a TMMBR from the server (it
//!   sends one while the participant is shown only small) switches the
//!   participant to the largest of the three within the limit, starting at
//!   that sequence's IDR; a TMMBN acknowledges it. The participants offer
//!   TMMBR as `ccm tmmbr` in SDP would (`video=.../tmmbr`).
//! - Audio follows a realistic speaking pattern: in each room the active
//!   speaker rotates among members 0, 1 and 2 every few seconds (one talks at
//!   a time) with speech-like Opus 20 ms frames and the RFC 6464 level (voice
//!   flag set); everyone else sends DTX (one silence packet about every
//!   400 ms, level 127). The server's mixer picks the active speaker from the
//!   audio, and the telepresence layout follows it.
//! - Two UDP sockets per participant (audio, video), each sending from the
//!   port it receives on; one thread and one epoll set (mio) for all. Sends
//!   are spread over the frame periods in buckets.
//! - The generator checks itself (lateness of its own sends, its CPU), and a
//!   trial where it fell behind is reported as invalid, so that its own limit
//!   is never mistaken for the server's.
//!
//! Frames, per receiver over the measurement window W: a frame counts when
//! the packet carrying the marker bit arrives inside the window, no packet of
//! that frame was missing (sequence numbers contiguous since the previous
//! marker) and its timestamp differs from the previous counted frame's.
//! fps = frames / W. A trial passes when every receiver's fps >= --min-fps.
//!
//! Output: progress on stderr, then one `result key=value ...` line on stdout.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use confero_media::codec::FRAME_SAMPLES;
use confero_media::rtcp::{self, is_rtcp, ReceiverReport, RtcpPacket, Tmmbn, TmmbrEntry};
use confero_media::rtp::{HeaderExtension, RtpHeader, RtpPacket};
use confero_media::srtp::SrtpContext;
use confero_media::transport::dtls::DtlsIdentity;
use confero_media::video::frame::I420Frame;
use confero_media::video::h264::{H264Decoder, H264Encoder, H264EncoderConfig};
use confero_media::video::h264_rtp::{H264Packetizer, PacketizationMode, RtpPayloads};
use confero_media::video::scale::Scaler;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

#[path = "loadgen/shared.rs"]
mod shared;
#[path = "loadgen/webrtc.rs"]
mod webrtc;

use shared::{cpu_ns, encode, flags, synthetic_speech, Frame, Res, Rng};

const AUDIO_FRAME_NS: u64 = 20_000_000;
/// 30 fps.
const VIDEO_FRAME_NS: u64 = 33_333_333;
/// 90 kHz ticks per video frame.
const VIDEO_TS_STEP: u32 = 3000;
/// Send buckets per frame period: each participant sends in one of them.
const AUDIO_BUCKETS: u64 = 20;
const VIDEO_BUCKETS: u64 = 10;
const AUDIO_PT: u8 = 111;
const VIDEO_PT: u8 = 96;
const LEVEL_EXT: u8 = 1;
/// Participants per room unless `--room-size` says otherwise.
const ROOM_SIZE: usize = 10;
/// Members 0..TALKERS of each room take turns talking.
const TALKERS: usize = 3;
const MAX_PAYLOAD: usize = 1100;

struct Args {
    cmd_in: String,
    cmd_out: String,
    participants: usize,
    room_size: usize,
    warmup: Duration,
    window: Duration,
    min_fps: f64,
    turn: Duration,
    sources: usize,
    frames: usize,
    layout: String,
    server_pid: Option<u32>,
    seed: u64,
    /// Participants offer TMMBR and honour it.
    tmmbr: bool,
    /// Participants join as browsers do (`join-web`): an ICE check and a
    /// DTLS handshake each, then SRTP with audio, video and RTCP on one socket.
    webrtc: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: video_loadgen --confero-in FIFO --confero-out FIFO -n N (a multiple of 10) [--room-size 10] \
         [--warmup S] [--window S] [--min-fps F] [--turn S] [--sources K] [--frames F] \
         [--layout NAME] [--server-pid PID] [--seed N] [--tmmbr on|off] [--transport rtp|webrtc]"
    );
    std::process::exit(2)
}

fn parse_args() -> Res<Args> {
    let kv = flags(usage);
    let get = |k: &str| kv.get(k).cloned();
    let secs = |k: &str, d: f64| -> Res<Duration> {
        Ok(Duration::from_secs_f64(get(k).map(|v| v.parse::<f64>()).transpose()?.unwrap_or(d)))
    };
    let participants: usize = get("n").unwrap_or_else(|| usage()).parse()?;
    let room_size: usize = get("room-size").map(|v| v.parse()).transpose()?.unwrap_or(ROOM_SIZE);
    if room_size < 2 || participants == 0 || !participants.is_multiple_of(room_size) {
        return Err(
            format!("-n {participants}: must be a positive multiple of the room size {room_size} (>= 2)").into()
        );
    }
    Ok(Args {
        cmd_in: get("confero-in").unwrap_or_else(|| usage()),
        cmd_out: get("confero-out").unwrap_or_else(|| usage()),
        participants,
        room_size,
        warmup: secs("warmup", 4.0)?,
        window: secs("window", 10.0)?,
        min_fps: get("min-fps").map(|v| v.parse()).transpose()?.unwrap_or(29.0),
        turn: secs("turn", 4.0)?,
        sources: get("sources").map(|v| v.parse()).transpose()?.unwrap_or(3).max(1),
        frames: get("frames").map(|v| v.parse()).transpose()?.unwrap_or(90).max(2),
        layout: get("layout").unwrap_or_else(|| "telepresence".into()),
        server_pid: get("server-pid").map(|v| v.parse()).transpose()?,
        seed: get("seed").map(|v| v.parse()).transpose()?.unwrap_or(1),
        tmmbr: match get("tmmbr").as_deref() {
            None | Some("on") => true,
            Some("off") => false,
            Some(other) => return Err(format!("--tmmbr {other}: on or off").into()),
        },
        webrtc: match get("transport").as_deref() {
            None | Some("rtp") => false,
            Some("webrtc") => true,
            Some(other) => return Err(format!("--transport {other}: rtp or webrtc").into()),
        },
    })
}

// ---------------------------------------------------------------- audio

// ---------------------------------------------------------------- video

/// The encodings of each camera sequence: width, height, bitrate. The first
/// is what a participant sends until it is asked for less.
const VARIANTS: [(u32, u32, u32); 3] = [(1280, 720, 1_500_000), (640, 360, 500_000), (320, 180, 150_000)];

/// The largest variant within a TMMBR limit of `bitrate` (the smallest when
/// none is).
fn variant_for(bitrate: u64) -> usize {
    VARIANTS.iter().position(|v| u64::from(v.2) <= bitrate).unwrap_or(VARIANTS.len() - 1)
}

/// One pre-encoded, pre-packetized access unit.
struct VideoFrame {
    /// RTP payloads with their marker bits; empty when the encoder skipped.
    payloads: Vec<(Vec<u8>, bool)>,
    keyframe: bool,
}

/// Frame `k` of synthetic camera sequence `source`: a shaded background in
/// the source's colour, a textured block moving across it, a "head" that
/// sways a little, and light noise everywhere, as a camera's sensor gives.
fn camera_frame(frame: &mut I420Frame, source: usize, k: usize, rng: &mut Rng) {
    const W: usize = 1280;
    const H: usize = 720;
    let (ys, cs) = frame.strides();
    let (y, u, v) = frame.planes_mut();
    let hue = [(70u8, 110u8, 150u8), (120, 160, 100), (160, 90, 140), (90, 140, 120)][source % 4];
    let base = 60 + 30 * (source % 3) as i32;
    let t = k as f64;
    // The block: 256x192, moving along a Lissajous path.
    let bw = 256usize;
    let bh = 192usize;
    let bx = ((W - bw) as f64 * (0.5 + 0.45 * (t * 0.07 + source as f64).sin())) as usize;
    let by = ((H - bh) as f64 * (0.5 + 0.45 * (t * 0.05 + 2.0 * source as f64).cos())) as usize;
    // The head: an ellipse in the middle, swaying.
    let hx = 640.0 + 40.0 * (t * 0.1 + source as f64).sin();
    let hy = 360.0 + 10.0 * (t * 0.13).cos();
    let mut noise = rng.next();
    for row in 0..H {
        let line = &mut y[row * ys..row * ys + W];
        for (col, px) in line.iter_mut().enumerate() {
            // A cheap xorshift for noise: -3..=3.
            noise ^= noise << 13;
            noise ^= noise >> 7;
            noise ^= noise << 17;
            let n = (noise & 7) as i32 - 3;
            let mut val = base + (col as i32 * 40 / W as i32) + (row as i32 * 30 / H as i32);
            let dx = (col as f64 - hx) / 160.0;
            let dy = (row as f64 - hy) / 210.0;
            if dx * dx + dy * dy < 1.0 {
                val = 150 + ((dx * 20.0) as i32);
            }
            if (bx..bx + bw).contains(&col) && (by..by + bh).contains(&row) {
                let (lx, ly) = (col - bx, row - by);
                let checker = ((lx / 16) + (ly / 16)) % 2 == 0;
                let stripes = ((lx as f64 * 0.3 + ly as f64 * 0.1 + t).sin() * 30.0) as i32;
                val = if checker { 200 } else { 70 } + stripes;
            }
            *px = (val + n).clamp(16, 235) as u8;
        }
    }
    let (cw, ch) = (W / 2, H / 2);
    for row in 0..ch {
        for col in 0..cw {
            let in_block = (bx / 2..(bx + bw) / 2).contains(&col) && (by / 2..(by + bh) / 2).contains(&row);
            let (cu, cv) = if in_block {
                (hue.2, hue.0)
            } else {
                (hue.1.wrapping_add((col * 16 / cw) as u8), hue.2.wrapping_sub((row * 16 / ch) as u8))
            };
            u[row * cs + col] = cu;
            v[row * cs + col] = cv;
        }
    }
}

/// Encodes and packetizes `frames` frames of each of `sources` sequences,
/// in each of the [`VARIANTS`] (source, then variant, then frame). Also
/// returns what one 720p encode and one decode of these streams cost on
/// this machine, in ms, as a yardstick for the server's figures.
#[allow(clippy::type_complexity)]
fn encode_video(sources: usize, frames: usize, rng: &mut Rng) -> Res<(Vec<Vec<Vec<VideoFrame>>>, f64, f64)> {
    let packetizer = H264Packetizer::new(MAX_PAYLOAD, PacketizationMode::NonInterleaved)?;
    let mut picture = I420Frame::new(1280, 720)?;
    let mut smaller: Vec<I420Frame> =
        VARIANTS[1..].iter().map(|&(w, h, _)| I420Frame::new(w, h)).collect::<Result<_, _>>()?;
    let mut scaler = Scaler::new();
    let mut payloads = RtpPayloads::new();
    let mut all = Vec::with_capacity(sources);
    let mut encode_time = Duration::ZERO;
    let mut units: Vec<Vec<u8>> = Vec::new();
    for s in 0..sources {
        let mut encoders = VARIANTS
            .iter()
            .map(|&(width, height, bitrate)| {
                H264Encoder::new(H264EncoderConfig { width, height, bitrate, max_fps: 30.0, max_nal_size: None })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let origin = Instant::now();
        let mut seqs: Vec<Vec<VideoFrame>> = (0..VARIANTS.len()).map(|_| Vec::with_capacity(frames)).collect();
        for k in 0..frames {
            camera_frame(&mut picture, s, k, rng);
            for small in &mut smaller {
                let rect = small.rect();
                scaler.scale_into(&picture, small, rect);
            }
            let at = origin + Duration::from_nanos(k as u64 * VIDEO_FRAME_NS);
            for (v, enc) in encoders.iter_mut().enumerate() {
                let input = if v == 0 { &picture } else { &smaller[v - 1] };
                let t = Instant::now();
                let unit = enc.encode(at, input)?;
                if v == 0 {
                    encode_time += t.elapsed();
                    if s == 0 {
                        units.push(unit.data.to_vec());
                    }
                }
                if k == 0 && !unit.keyframe {
                    return Err("the encoder's first frame is not an IDR".into());
                }
                let keyframe = unit.keyframe;
                let mut frame = VideoFrame { payloads: Vec::new(), keyframe };
                if !unit.data.is_empty() {
                    packetizer.packetize_annex_b(unit.data, &mut payloads)?;
                    frame.payloads = payloads.iter().map(|(p, m)| (p.to_vec(), m)).collect();
                }
                seqs[v].push(frame);
            }
        }
        all.push(seqs);
    }
    let mut decoder = H264Decoder::new()?;
    let t = Instant::now();
    for unit in &units {
        decoder.decode(unit, &mut picture)?;
    }
    let decode_ms = t.elapsed().as_secs_f64() * 1e3 / units.len().max(1) as f64;
    let encode_ms = encode_time.as_secs_f64() * 1e3 / (sources * frames) as f64;
    Ok((all, encode_ms, decode_ms))
}

// ---------------------------------------------------------------- receiving

/// What one receiver's video socket saw.
#[derive(Default)]
struct VideoRx {
    last_seq: Option<u16>,
    /// No packet missing since the previous marker.
    frame_intact: bool,
    last_counted_ts: Option<u32>,
    /// Complete frames whose last packet arrived inside the window.
    frames_in_window: u64,
    /// All complete frames, and all frames ending with a marker.
    frames_total: u64,
    frames_broken: u64,
    packets: u64,
    first_frame_at: Option<Instant>,
    ssrc: Option<u32>,
    ssrc_changes: u64,
    /// RTCP from the server: keyframe requests about our stream, bitrate
    /// limits, and others.
    plis: u64,
    firs: u64,
    tmmbrs: u64,
    rtcp_other: u64,
}

struct Participant {
    asock: UdpSocket,
    vsock: UdpSocket,
    room: usize,
    member: usize,
    // Audio.
    assrc: u32,
    aseq: u16,
    ats0: u32,
    speech_offset: usize,
    silence_offset: usize,
    sent_last: bool,
    audio_rx: u64,
    /// Audio packets received inside the window.
    audio_rx_window: u64,
    // Video.
    vssrc: u32,
    vseq: u16,
    vts0: u32,
    source: usize,
    /// The next frame of its sequence to send.
    position: usize,
    /// A PLI/FIR came: the next frame sent is the sequence's IDR.
    want_idr: bool,
    /// Which of the [`VARIANTS`] it sends.
    variant: usize,
    /// TMMBRs that moved it to another variant.
    switches: u64,
    idr_jumps: u64,
    vrx: VideoRx,
    /// WebRTC: everything goes on `asock`, protected with `srtp_out`;
    /// the server's RTCP is unprotected with `srtp_in`.
    srtp_out: Option<SrtpContext>,
    srtp_in: Option<SrtpContext>,
}

impl Participant {
    /// Where its video goes: its own socket, or the bundle's.
    fn video_sock(&self) -> &UdpSocket {
        if self.srtp_out.is_some() {
            &self.asock
        } else {
            &self.vsock
        }
    }
}

/// Per-room talk schedule: which member (0..TALKERS) talks in audio frame k.
/// Turns of `turn` ± 0.5 s, never the same speaker twice in a row.
fn schedule(frames: usize, turn: Duration, room_size: usize, rng: &mut Rng) -> Vec<u8> {
    let talkers = TALKERS.min(room_size) as u64;
    let turn_frames = (turn.as_nanos() / u128::from(AUDIO_FRAME_NS)) as u64;
    let mut s = Vec::with_capacity(frames);
    let mut who = rng.below(talkers) as u8;
    while s.len() < frames {
        let len = rng.range(turn_frames.saturating_sub(25).max(10), turn_frames + 25) as usize;
        s.extend(std::iter::repeat_n(who, len));
        who = ((u64::from(who) + 1 + rng.below(talkers - 1)) % talkers) as u8;
    }
    s.truncate(frames);
    s
}

/// A process's user + system CPU time in clock ticks (100 Hz on Linux).
fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// The kernel's count of datagrams dropped on the loopback UDP sockets bound
/// to these ports (the last column of /proc/net/udp).
fn udp_drops(ports: &HashSet<u16>) -> u64 {
    let Ok(table) = std::fs::read_to_string("/proc/net/udp") else { return 0 };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let port = u16::from_str_radix(f.get(1)?.rsplit_once(':')?.1, 16).ok()?;
            ports.contains(&port).then(|| f.last()?.parse::<u64>().ok()).flatten()
        })
        .sum()
}

/// The server's counters at the window's start and end, and its CPU ticks
/// then (when its pid is known).
type ServerWindow = ([u64; 5], [u64; 5], Option<(u64, u64)>);

/// The server's control channel (`media_server`'s stdin/stdout protocol).
struct Control {
    w: File,
    r: BufReader<File>,
}

impl Control {
    fn ask(&mut self, line: &str) -> Res<String> {
        writeln!(self.w, "{line}")?;
        self.w.flush()?;
        let mut answer = String::new();
        if self.r.read_line(&mut answer)? == 0 {
            return Err("media_server closed its output".into());
        }
        Ok(answer.trim().to_string())
    }

    /// (video_ticks, video_decodes, video_encodes, ticks, late_ticks).
    fn video_stats(&mut self) -> Res<[u64; 5]> {
        let line = self.ask("stats")?;
        let json = line.strip_prefix("stats ").ok_or_else(|| format!("media_server: {line}"))?;
        let v: serde_json::Value = serde_json::from_str(json)?;
        let get = |k: &str| v[k].as_u64().unwrap_or(0);
        Ok([get("video_ticks"), get("video_decodes"), get("video_encodes"), get("ticks"), get("late_ticks")])
    }
}

fn main() -> Res<()> {
    let args = parse_args()?;
    let n = args.participants;
    let rooms = n / args.room_size;
    let mut rng = Rng(args.seed.wrapping_mul(0x2545_f491_4f6c_dd1d));

    // Pre-encode once.
    let t0 = Instant::now();
    let speech = encode(&synthetic_speech(20, &mut rng), true)?;
    // Digital silence: libopus then sends one DTX packet about every 400 ms.
    let silence: Vec<Frame> = encode(&vec![0i16; 10 * 48_000], false)?.into_iter().skip(50).collect();
    let (video, encode_ms, decode_ms) = encode_video(args.sources, args.frames, &mut rng)?;
    {
        let sent = |f: &[Frame]| f.iter().filter(|x| x.payload.is_some()).count();
        let frames: Vec<&VideoFrame> = video.iter().flat_map(|s| &s[0]).collect();
        let bytes: usize = frames.iter().flat_map(|f| f.payloads.iter()).map(|(p, _)| p.len()).sum();
        let packets: usize = frames.iter().map(|f| f.payloads.len()).sum();
        let skipped = frames.iter().filter(|f| f.payloads.is_empty()).count();
        let idr: Vec<String> =
            video.iter().map(|s| s[0][0].payloads.iter().map(|(p, _)| p.len()).sum::<usize>().to_string()).collect();
        eprintln!(
            "loadgen: pre-encoded in {:.1} s: speech {} frames ({} sent), silence {} frames ({} sent: DTX); \
             video {} sequences x {} frames, {:.2} Mbit/s mean, {:.1} packets/frame, {} skipped, IDR bytes {}; \
             on this core one 720p encode takes {encode_ms:.2} ms, one decode {decode_ms:.2} ms",
            t0.elapsed().as_secs_f64(),
            speech.len(),
            sent(&speech),
            silence.len(),
            sent(&silence),
            video.len(),
            args.frames,
            bytes as f64 * 8.0 * 30.0 / frames.len() as f64 / 1e6,
            packets as f64 / frames.len() as f64,
            skipped,
            idr.join("/"),
        );
    }

    let mut poll = Poll::new()?;
    let mut parts = Vec::with_capacity(n);
    for room in 0..rooms {
        for member in 0..args.room_size {
            let i = parts.len();
            let mut asock = UdpSocket::bind("127.0.0.1:0".parse()?)?;
            let mut vsock = UdpSocket::bind("127.0.0.1:0".parse()?)?;
            poll.registry().register(&mut asock, Token(2 * i), Interest::READABLE)?;
            poll.registry().register(&mut vsock, Token(2 * i + 1), Interest::READABLE)?;
            let source = i % args.sources;
            parts.push(Participant {
                asock,
                vsock,
                room,
                member,
                assrc: rng.next() as u32,
                aseq: rng.next() as u16,
                ats0: rng.next() as u32,
                speech_offset: rng.below(speech.len() as u64) as usize,
                silence_offset: rng.below(silence.len() as u64) as usize,
                sent_last: false,
                audio_rx: 0,
                audio_rx_window: 0,
                vssrc: rng.next() as u32,
                vseq: rng.next() as u16,
                vts0: rng.next() as u32,
                source,
                position: rng.below(video[source][0].len() as u64) as usize,
                want_idr: false,
                variant: 0,
                switches: 0,
                idr_jumps: 0,
                vrx: VideoRx::default(),
                srtp_out: None,
                srtp_in: None,
            });
        }
    }

    let t_join = Instant::now();
    let mut control = Control {
        w: OpenOptions::new().write(true).open(&args.cmd_in)?,
        r: BufReader::new(File::open(&args.cmd_out)?),
    };
    let mut server_ports = HashSet::new();
    let identity = if args.webrtc { Some(DtlsIdentity::generate()?) } else { None };
    let mut joined = Vec::new();
    for (i, p) in parts.iter_mut().enumerate() {
        let aport = p.asock.local_addr()?.port();
        let vport = p.vsock.local_addr()?.port();
        let tmmbr = if args.tmmbr { "/tmmbr" } else { "" };
        let layout = &args.layout;
        let command = match &identity {
            Some(identity) => format!(
                "join-web room{} {AUDIO_PT} lg{i} {} {LEVEL_EXT} video={VIDEO_PT}/{layout}{tmmbr}",
                p.room,
                webrtc::digest(identity)
            ),
            None => format!(
                "join room{} 127.0.0.1:{aport} {AUDIO_PT} {LEVEL_EXT} video=127.0.0.1:{vport}/{VIDEO_PT}/{layout}{tmmbr}",
                p.room
            ),
        };
        let answer = control.ask(&command)?;
        let f: Vec<&str> = answer.split_whitespace().collect();
        if f.first() != Some(&"joined") || f.len() < 5 {
            return Err(format!("media_server: {answer}").into());
        }
        let audio: SocketAddr = f[3].parse()?;
        p.asock.connect(audio)?;
        server_ports.insert(audio.port());
        if identity.is_some() {
            joined.push(webrtc::WebJoined::parse(&f)?);
        } else {
            let video: SocketAddr = f[4].parse()?;
            p.vsock.connect(video)?;
            server_ports.insert(video.port());
        }
    }
    if let Some(identity) = &identity {
        let socks: Vec<&UdpSocket> = parts.iter().map(|p| &p.asock).collect();
        let index_of = |token: usize| token.is_multiple_of(2).then_some(token / 2);
        let (keys, took) = webrtc::connect(&mut poll, &socks, index_of, &joined, identity)?;
        for (p, k) in parts.iter_mut().zip(keys) {
            p.srtp_out = Some(k.outbound);
            p.srtp_in = Some(k.inbound);
        }
        eprintln!("loadgen: {n} ICE checks and DTLS handshakes in {:.2} s", took.as_secs_f64());
    }
    eprintln!(
        "loadgen: {n} participants in {rooms} rooms ({}) joined in {:.1} s",
        args.layout,
        t_join.elapsed().as_secs_f64()
    );

    // The server's counters at the window's edges, asked from a thread of
    // its own so that a slow answer never delays a send.
    let start = Instant::now() + Duration::from_millis(5);
    let win_start = start + args.warmup;
    let win_end = win_start + args.window;
    let run_end = win_end + Duration::from_millis(100);
    let server_pid = args.server_pid;
    let stats_thread = std::thread::spawn(move || -> Option<ServerWindow> {
        std::thread::sleep(win_start.saturating_duration_since(Instant::now()));
        let cpu0 = server_pid.and_then(process_ticks);
        let a = control.video_stats().ok()?;
        std::thread::sleep(win_end.saturating_duration_since(Instant::now()));
        let cpu1 = server_pid.and_then(process_ticks);
        let b = control.video_stats().ok()?;
        Some((a, b, cpu0.zip(cpu1)))
    });

    let audio_frames = ((run_end - start).as_nanos() / u128::from(AUDIO_FRAME_NS)) as usize + 2;
    let schedules: Vec<Vec<u8>> =
        (0..rooms).map(|_| schedule(audio_frames, args.turn, args.room_size, &mut rng)).collect();
    let mut audio_buckets: Vec<Vec<usize>> = vec![Vec::new(); AUDIO_BUCKETS as usize];
    let mut video_buckets: Vec<Vec<usize>> = vec![Vec::new(); VIDEO_BUCKETS as usize];
    for i in 0..n {
        audio_buckets[rng.below(AUDIO_BUCKETS) as usize].push(i);
        video_buckets[rng.below(VIDEO_BUCKETS) as usize].push(i);
    }
    let abucket_ns = AUDIO_FRAME_NS / AUDIO_BUCKETS;
    let vbucket_ns = VIDEO_FRAME_NS / VIDEO_BUCKETS;
    let mut next_abucket: u64 = 0;
    let mut next_vbucket: u64 = 0;
    let mut events = Events::with_capacity(1024);
    let mut pkt = Vec::with_capacity(1500);
    let mut rbuf = [0u8; 2048];
    let mut late_ns: Vec<u64> = Vec::new();
    let mut sends: u64 = 0;
    let mut send_errors: u64 = 0;
    let mut cpu_at_window: Option<u64> = None;
    let mut cpu_at_end: Option<u64> = None;
    loop {
        let now = Instant::now();
        // Audio sends that are due.
        loop {
            let due = start + Duration::from_nanos(next_abucket * abucket_ns);
            let k = (next_abucket / AUDIO_BUCKETS) as usize;
            if due > now || k >= audio_frames - 1 {
                break;
            }
            let lateness = now.saturating_duration_since(due).as_nanos() as u64;
            let in_window = due >= win_start && due < win_end;
            for &i in &audio_buckets[(next_abucket % AUDIO_BUCKETS) as usize] {
                let p = &mut parts[i];
                let talking = usize::from(schedules[p.room][k]) == p.member;
                let frame = if talking {
                    &speech[(p.speech_offset + k) % speech.len()]
                } else {
                    &silence[(p.silence_offset + k) % silence.len()]
                };
                let payload = match (&frame.payload, k) {
                    (Some(pl), _) => pl.as_slice(),
                    (None, 0) => &[0xf8u8, 0xff, 0xfe][..],
                    (None, _) => {
                        p.sent_last = false;
                        continue;
                    }
                };
                let level = [frame.level];
                let ext = [HeaderExtension::new(LEVEL_EXT, &level)];
                let header = RtpHeader {
                    marker: !p.sent_last,
                    payload_type: AUDIO_PT,
                    sequence_number: p.aseq,
                    timestamp: p.ats0.wrapping_add(k as u32 * FRAME_SAMPLES as u32),
                    ssrc: p.assrc,
                    extensions: &ext,
                    ..RtpHeader::default()
                };
                pkt.clear();
                header.write_packet(payload, &mut pkt)?;
                if let Some(srtp) = &mut p.srtp_out {
                    srtp.protect_rtp(&mut pkt)?;
                }
                match p.asock.send(&pkt) {
                    Ok(_) => sends += 1,
                    Err(_) => send_errors += 1,
                }
                p.aseq = p.aseq.wrapping_add(1);
                p.sent_last = true;
                if in_window {
                    late_ns.push(lateness);
                }
            }
            next_abucket += 1;
        }
        // Video sends that are due: a frame's packets together.
        loop {
            let due = start + Duration::from_nanos(next_vbucket * vbucket_ns);
            if due > now || due >= win_end {
                break;
            }
            let k = next_vbucket / VIDEO_BUCKETS;
            let lateness = now.saturating_duration_since(due).as_nanos() as u64;
            let in_window = due >= win_start && due < win_end;
            for &i in &video_buckets[(next_vbucket % VIDEO_BUCKETS) as usize] {
                let p = &mut parts[i];
                let seq = &video[p.source][p.variant];
                if p.want_idr {
                    p.want_idr = false;
                    if p.position != 0 {
                        p.idr_jumps += 1;
                    }
                    p.position = 0;
                }
                let frame = &seq[p.position];
                p.position = (p.position + 1) % seq.len();
                debug_assert!(p.position != 1 || frame.keyframe);
                let timestamp = p.vts0.wrapping_add(k as u32 * VIDEO_TS_STEP);
                for (payload, marker) in &frame.payloads {
                    let header = RtpHeader {
                        marker: *marker,
                        payload_type: VIDEO_PT,
                        sequence_number: p.vseq,
                        timestamp,
                        ssrc: p.vssrc,
                        ..RtpHeader::default()
                    };
                    pkt.clear();
                    header.write_packet(payload, &mut pkt)?;
                    if let Some(srtp) = &mut p.srtp_out {
                        srtp.protect_rtp(&mut pkt)?;
                    }
                    match p.video_sock().send(&pkt) {
                        Ok(_) => sends += 1,
                        Err(_) => send_errors += 1,
                    }
                    p.vseq = p.vseq.wrapping_add(1);
                }
                if in_window {
                    late_ns.push(lateness);
                }
            }
            next_vbucket += 1;
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
        let adue = start + Duration::from_nanos(next_abucket * abucket_ns);
        let vdue = start + Duration::from_nanos(next_vbucket * vbucket_ns);
        let vdue = if vdue >= win_end { run_end } else { vdue };
        let timeout = adue.min(vdue).min(run_end).saturating_duration_since(Instant::now());
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
        for ev in events.iter() {
            let i = ev.token().0 / 2;
            let socket_is_video = ev.token().0 % 2 == 1;
            let p = &mut parts[i];
            loop {
                let got = if socket_is_video { p.vsock.recv(&mut rbuf) } else { p.asock.recv(&mut rbuf) };
                let mut len = match got {
                    Ok(len) => len,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                    Err(e) => return Err(e.into()),
                };
                let arrival = Instant::now();
                // On a bundle, RTCP (the server's, about our video) and
                // video RTP come on the audio socket; RTCP is SRTCP.
                let mut is_video = socket_is_video;
                if let Some(srtp) = &mut p.srtp_in {
                    let datagram = &rbuf[..len];
                    if is_rtcp(datagram) {
                        let mut bytes = datagram.to_vec();
                        if srtp.unprotect_rtcp(&mut bytes).is_err() {
                            continue;
                        }
                        rbuf[..bytes.len()].copy_from_slice(&bytes);
                        len = bytes.len();
                        is_video = true;
                    } else if datagram.get(1).is_some_and(|b| b & 0x7f == VIDEO_PT) {
                        is_video = true;
                    }
                }
                if !is_video {
                    if !is_rtcp(&rbuf[..len]) {
                        p.audio_rx += 1;
                        if arrival >= win_start && arrival < win_end {
                            p.audio_rx_window += 1;
                        }
                    }
                    continue;
                }
                let buf = &rbuf[..len];
                if is_rtcp(buf) {
                    for packet in rtcp::compound(buf).flatten() {
                        match packet {
                            RtcpPacket::PictureLossIndication(pli) if pli.media_ssrc == p.vssrc => {
                                p.vrx.plis += 1;
                                p.want_idr = true;
                            }
                            RtcpPacket::FullIntraRequest(fir) if fir.entries.iter().any(|e| e.ssrc == p.vssrc) => {
                                p.vrx.firs += 1;
                                p.want_idr = true;
                            }
                            RtcpPacket::Tmmbr(t) if args.tmmbr => {
                                let Some(entry) = t.entries.iter().find(|e| e.ssrc == p.vssrc) else { continue };
                                p.vrx.tmmbrs += 1;
                                let variant = variant_for(entry.bitrate_bps);
                                if variant != p.variant {
                                    // An endpoint's encoder restarts at the new size with an IDR.
                                    p.variant = variant;
                                    p.want_idr = true;
                                    p.switches += 1;
                                }
                                let ack = [
                                    RtcpPacket::ReceiverReport(ReceiverReport { ssrc: p.vssrc, reports: Vec::new() }),
                                    RtcpPacket::Tmmbn(Tmmbn {
                                        sender_ssrc: p.vssrc,
                                        entries: vec![TmmbrEntry { ssrc: t.sender_ssrc, ..*entry }],
                                    }),
                                ];
                                let mut bytes = Vec::with_capacity(64);
                                if RtcpPacket::write_compound(&ack, &mut bytes).is_ok() {
                                    if let Some(srtp) = &mut p.srtp_out {
                                        srtp.protect_rtcp(&mut bytes)?;
                                    }
                                    if p.video_sock().send(&bytes).is_err() {
                                        send_errors += 1;
                                    }
                                }
                            }
                            _ => p.vrx.rtcp_other += 1,
                        }
                    }
                    continue;
                }
                let Ok(rtp) = RtpPacket::parse(buf) else { continue };
                let rx = &mut p.vrx;
                rx.packets += 1;
                if rx.ssrc.is_some_and(|s| s != rtp.ssrc()) {
                    rx.ssrc_changes += 1;
                }
                rx.ssrc = Some(rtp.ssrc());
                let seq = rtp.sequence_number();
                match rx.last_seq {
                    // The server sends whole frames: its first packet starts one.
                    None => rx.frame_intact = true,
                    Some(l) if l.wrapping_add(1) != seq => rx.frame_intact = false,
                    Some(_) => {}
                }
                rx.last_seq = Some(seq);
                if rtp.marker() {
                    if rx.frame_intact && rx.last_counted_ts != Some(rtp.timestamp()) {
                        rx.frames_total += 1;
                        rx.first_frame_at.get_or_insert(arrival);
                        rx.last_counted_ts = Some(rtp.timestamp());
                        if arrival >= win_start && arrival < win_end {
                            rx.frames_in_window += 1;
                        }
                    } else if !rx.frame_intact {
                        rx.frames_broken += 1;
                    }
                    // The next packet starts a new frame.
                    rx.frame_intact = true;
                }
            }
        }
    }
    let server = stats_thread.join().ok().flatten();
    // Datagrams the kernel dropped because a socket's buffer was full: the
    // server's (it did not read in time) and ours (we did not).
    let mut own_ports = HashSet::new();
    for p in &parts {
        own_ports.insert(p.asock.local_addr()?.port());
        own_ports.insert(p.vsock.local_addr()?.port());
    }
    let server_drops = udp_drops(&server_ports);
    let gen_drops = udp_drops(&own_ports);

    // Verdict.
    let window_s = args.window.as_secs_f64();
    let mut fps: Vec<f64> = parts.iter().map(|p| p.vrx.frames_in_window as f64 / window_s).collect();
    fps.sort_by(f64::total_cmp);
    let min_fps = fps.first().copied().unwrap_or(0.0);
    let median_fps = fps.get(fps.len() / 2).copied().unwrap_or(0.0);
    let max_fps = fps.last().copied().unwrap_or(0.0);
    let failing = fps.iter().filter(|&&f| f < args.min_fps).count();
    let never = parts.iter().filter(|p| p.vrx.frames_total == 0).count();
    let sum = |f: fn(&Participant) -> u64| parts.iter().map(f).sum::<u64>();
    let plis = sum(|p| p.vrx.plis);
    let firs = sum(|p| p.vrx.firs);
    let idr_jumps = sum(|p| p.idr_jumps);
    let tmmbrs = sum(|p| p.vrx.tmmbrs);
    let switches = sum(|p| p.switches);
    let broken = sum(|p| p.vrx.frames_broken);
    let ssrc_changes = sum(|p| p.vrx.ssrc_changes);
    let video_packets = sum(|p| p.vrx.packets);
    let audio_rx = sum(|p| p.audio_rx);
    // The mixer sends every receiver a 20 ms frame 50 times a second (its
    // encoders' DTX is off): fewer means its audio ticks were dropped.
    let mut audio_pps: Vec<f64> = parts.iter().map(|p| p.audio_rx_window as f64 / window_s).collect();
    audio_pps.sort_by(f64::total_cmp);
    let audio_pps_min = audio_pps.first().copied().unwrap_or(0.0);
    let audio_pps_median = audio_pps.get(audio_pps.len() / 2).copied().unwrap_or(0.0);
    let first_frame_s = parts
        .iter()
        .filter_map(|p| p.vrx.first_frame_at)
        .map(|t| t.saturating_duration_since(start).as_secs_f64())
        .fold(0.0f64, f64::max);
    late_ns.sort_unstable();
    let pct = |q: f64| late_ns.get(((late_ns.len() as f64 * q) as usize).min(late_ns.len().saturating_sub(1)));
    let late_p99 = pct(0.99).copied().unwrap_or(0) as f64 / 1e6;
    let late_max = late_ns.last().copied().unwrap_or(0) as f64 / 1e6;
    let cpu_at_end = cpu_at_end.unwrap_or_else(cpu_ns);
    let busy = (cpu_at_end - cpu_at_window.unwrap_or(cpu_at_end)) as f64 / args.window.as_nanos() as f64;
    let (vticks, vdec, venc, late_ticks, server_cpu) = match server {
        Some((a, b, cpu)) => (
            b[0] - a[0],
            b[1] - a[1],
            b[2] - a[2],
            b[4] - a[4],
            cpu.map(|(c0, c1)| (c1 - c0) as f64 / 100.0 / window_s),
        ),
        None => (0, 0, 0, 0, None),
    };
    let per_tick = |x: u64| if vticks > 0 { x as f64 / vticks as f64 } else { 0.0 };
    // The generator is behind when more than 1 % of its sends slip by over
    // 10 ms, when it stalled once for over 50 ms, or when it used nearly all
    // of its core, or when its own sockets dropped datagrams (its frame
    // counts would then blame the server).
    let valid = late_p99 <= 10.0 && late_max <= 50.0 && busy < 0.9 && send_errors == 0 && gen_drops == 0;
    let pass = valid && failing == 0 && min_fps >= args.min_fps;
    println!(
        "result n={n} rooms={rooms} pass={} valid={} min_fps={min_fps:.2} median_fps={median_fps:.2} \
         max_fps={max_fps:.2} failing_receivers={failing} never_received={never} server_udp_drops={server_drops} gen_udp_drops={gen_drops} first_frame_s={first_frame_s:.2} \
         broken_frames={broken} ssrc_changes={ssrc_changes} video_packets_rx={video_packets} audio_rx={audio_rx} \
         audio_pps_min={audio_pps_min:.1} audio_pps_median={audio_pps_median:.1} \
         plis={plis} firs={firs} idr_jumps={idr_jumps} tmmbrs={tmmbrs} variant_switches={switches} video_fps_server={:.2} video_decodes_per_tick={:.2} \
         video_encodes_per_tick={:.2} audio_late_ticks={late_ticks} server_cpu={} sent={sends} \
         send_errors={send_errors} encode_ms={encode_ms:.2} decode_ms={decode_ms:.2} gen_busy={busy:.3} gen_late_p99_ms={late_p99:.2} gen_late_max_ms={late_max:.2}",
        u8::from(pass),
        u8::from(valid),
        vticks as f64 / rooms as f64 / window_s,
        per_tick(vdec),
        per_tick(venc),
        server_cpu.map_or("n/a".to_string(), |c| format!("{c:.2}")),
    );
    Ok(())
}
