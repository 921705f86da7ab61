//! Real SIP endpoints for the tests: baresip and linphonec, each in its own
//! directory, sending a tone from a WAV file and recording what it hears.
//! Every process is killed by PID when dropped.

#![allow(dead_code)]

use std::io::Write;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Writes `seconds` of a stereo 48 kHz sine at `amplitude` (of 32767).
pub fn write_tone(path: &Path, hz: f64, seconds: u32, amplitude: f64) {
    let frames = 48_000 * seconds as usize;
    let mut data = Vec::with_capacity(frames * 4);
    for i in 0..frames {
        let v = (amplitude * 32767.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / 48_000.0).sin()) as i16;
        data.extend_from_slice(&v.to_le_bytes());
        data.extend_from_slice(&v.to_le_bytes());
    }
    let mut f = std::fs::File::create(path).expect("tone file");
    let mut header = Vec::new();
    header.extend_from_slice(b"RIFF");
    header.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    header.extend_from_slice(b"WAVEfmt ");
    header.extend_from_slice(&16u32.to_le_bytes());
    header.extend_from_slice(&1u16.to_le_bytes());
    header.extend_from_slice(&2u16.to_le_bytes());
    header.extend_from_slice(&48_000u32.to_le_bytes());
    header.extend_from_slice(&(48_000u32 * 4).to_le_bytes());
    header.extend_from_slice(&4u16.to_le_bytes());
    header.extend_from_slice(&16u16.to_le_bytes());
    header.extend_from_slice(b"data");
    header.extend_from_slice(&(data.len() as u32).to_le_bytes());
    f.write_all(&header).and_then(|()| f.write_all(&data)).expect("tone file");
}

/// A WAV file's first channel and its sample rate.
pub fn read_wav(path: &Path) -> (Vec<i16>, u32) {
    let bytes = std::fs::read(path).expect("wav");
    let (mut channels, mut rate, mut pos) = (1usize, 8000u32, 12usize);
    let mut samples = Vec::new();
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let mut len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        // A writer that was stopped before it closed the file leaves the data
        // size at 0 (or all ones): the samples are the rest of the file.
        if id == b"data" && (len == 0 || len == u32::MAX as usize) {
            len = bytes.len() - (pos + 8);
        }
        let body = &bytes[pos + 8..(pos + 8 + len).min(bytes.len())];
        if id == b"fmt " {
            channels = u16::from_le_bytes([body[2], body[3]]) as usize;
            rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
        } else if id == b"data" {
            samples = body.chunks_exact(2 * channels).map(|c| i16::from_le_bytes([c[0], c[1]])).collect();
        }
        pos += 8 + len + (len & 1);
    }
    (samples, rate)
}

/// The amplitude of `hz` in `samples` (Goertzel), relative to full scale.
pub fn tone_level_db(samples: &[i16], hz: f64, rate: u32) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let amplitude = 2.0 * power.max(0.0).sqrt() / samples.len().max(1) as f64;
    20.0 * (amplitude / 32767.0).max(1e-9).log10()
}

/// An 8-bit RGB picture read from a PNG (baresip's snapshots).
pub struct Picture {
    pub width: u32,
    pub height: u32,
    rgb: Vec<u8>,
}

impl Picture {
    /// Reads a PNG; `None` if it is missing or not complete yet.
    pub fn read(path: &Path) -> Option<Picture> {
        let file = std::fs::File::open(path).ok()?;
        let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info().ok()?;
        let mut buf = vec![0; reader.output_buffer_size()?];
        let info = reader.next_frame(&mut buf).ok()?;
        let channels = info.color_type.samples();
        let rgb = buf[..info.buffer_size()].chunks_exact(channels).flat_map(|p| [p[0], p[1], p[2]]).collect();
        Some(Picture { width: info.width, height: info.height, rgb })
    }

    /// The colour at (x, y).
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y * self.width + x) as usize * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// The colour at the middle of a rectangle (x, y, width, height).
    pub fn centre_of(&self, (x, y, w, h): (u32, u32, u32, u32)) -> [u8; 3] {
        self.pixel(x + w / 2, y + h / 2)
    }
}

/// Whether two colours are within `tolerance` on every channel.
pub fn similar(a: [u8; 3], b: [u8; 3], tolerance: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tolerance)
}

/// A baresip instance that dials one URI and hangs up after `seconds`.
pub struct Baresip {
    pub dir: PathBuf,
    child: Option<Child>,
}

/// How a baresip endpoint is set up.
pub struct BaresipSetup<'a> {
    /// Its name (the account user).
    pub name: &'a str,
    /// The tone it sends.
    pub tone_hz: f64,
    /// Its SIP port.
    pub sip_port: u16,
    /// First of 20 RTP ports of its own: keep it below 32768, where the
    /// kernel's ephemeral range starts, so no socket bound to port 0 (the
    /// bridge's media sockets, `free_pair`) can take one first.
    pub rtp_base: u16,
    /// `srtp-mand` for mandatory SDES-SRTP.
    pub mediaenc: Option<&'a str>,
    /// The audio codec(s) it offers.
    pub codecs: &'a str,
    /// Its `video_codecs` account setting: `Some("H264")` makes it offer H.264
    /// in packetization mode 0 only, as many room systems do; `None`: the
    /// module's defaults (mode 1 and 0).
    pub video_codecs: Option<&'a str>,
    /// Its ctrl_tcp port (commands while running, e.g. DTMF); baresip's
    /// own SIP TLS takes `sip_port + 1`.
    pub ctrl_port: u16,
}

impl BaresipSetup<'_> {
    /// An Opus endpoint without SRTP, on free SIP and control ports, with its
    /// own block of 20 RTP ports from `rtp_base`.
    pub fn opus(name: &str, tone_hz: f64, rtp_base: u16) -> BaresipSetup<'_> {
        BaresipSetup {
            name,
            tone_hz,
            sip_port: free_pair(),
            rtp_base,
            mediaenc: None,
            codecs: "opus/48000/2",
            video_codecs: None,
            ctrl_port: free_pair(),
        }
    }
}

impl Baresip {
    /// The config: `account.so` comes last, since it resolves the
    /// account's codecs and media encryption against the modules loaded
    /// before it.
    fn configure(base: &Path, s: &BaresipSetup) -> PathBuf {
        Self::configure_with(base, s, "")
    }

    /// The config with `extra` lines (modules and their settings) before
    /// `account.so`.
    fn configure_with(base: &Path, s: &BaresipSetup, extra: &str) -> PathBuf {
        let dir = base.join(s.name);
        std::fs::create_dir_all(dir.join("rec")).unwrap();
        let tone = dir.join("tone.wav");
        write_tone(&tone, s.tone_hz, 60, 0.25);
        let config = format!(
            "sip_listen 127.0.0.1:{sip}\nnet_interface 127.0.0.1\naudio_player aufile,{rec}/out.wav\n\
             audio_source aufile,{tone}\nrtp_ports {a}-{b}\nmodule_path /usr/lib/baresip/modules\n\
             module aufile.so\nmodule opus.so\nmodule g711.so\nmodule g722.so\nmodule srtp.so\nmodule sndfile.so\n\
             snd_path {rec}\nctrl_tcp_listen 127.0.0.1:{ctrl}\nmodule ctrl_tcp.so\nmodule menu.so\n\
             {extra}module account.so\n",
            sip = s.sip_port,
            rec = dir.join("rec").display(),
            tone = tone.display(),
            a = s.rtp_base,
            b = s.rtp_base + 19,
            ctrl = s.ctrl_port,
        );
        std::fs::write(dir.join("config"), config).unwrap();
        let mut enc = s.mediaenc.map(|m| format!(";mediaenc={m}")).unwrap_or_default();
        if let Some(video) = s.video_codecs {
            enc.push_str(&format!(";video_codecs={video}"));
        }
        let account = format!(
            "<sip:{name}@127.0.0.1:{port}>;regint=0;answermode=auto;audio_codecs={codecs}{enc}\n",
            name = s.name,
            port = s.sip_port,
            codecs = s.codecs
        );
        std::fs::write(dir.join("accounts"), account).unwrap();
        dir
    }

    /// Starts an endpoint that dials `uri` at once and quits after `seconds`.
    pub fn dial(base: &Path, setup: &BaresipSetup, uri: &str, seconds: u32) -> Baresip {
        let dir = Self::configure(base, setup);
        Self::spawn(dir, &["-t", &seconds.to_string(), "-e", &format!("/dial {uri}")])
    }

    /// Starts a video endpoint that dials `uri` at once and quits after
    /// `seconds`: its camera is a solid `rgb` colour (ffmpeg's lavfi
    /// generator through the avformat module, 320x180 at 15 fps), H.264 by
    /// libx264, and what it receives is decoded for `snapshot`.
    pub fn dial_video(base: &Path, setup: &BaresipSetup, rgb: u32, uri: &str, seconds: u32) -> Baresip {
        let dir = Self::configure_with(base, setup, &Self::video_lines(rgb));
        Self::spawn(dir, &["-t", &seconds.to_string(), "-e", &format!("/dial {uri}")])
    }

    /// A video endpoint (as [`Baresip::dial_video`]) that answers calls.
    pub fn answer_video(base: &Path, setup: &BaresipSetup, rgb: u32, seconds: u32) -> Baresip {
        let dir = Self::configure_with(base, setup, &Self::video_lines(rgb));
        Self::spawn(dir, &["-t", &seconds.to_string()])
    }

    /// A video endpoint (as [`Baresip::dial_video`]) whose one video codec
    /// is VP8 (baresip's `vp8` module, libvpx), not H.264.
    pub fn dial_vp8_video(base: &Path, setup: &BaresipSetup, rgb: u32, uri: &str, seconds: u32) -> Baresip {
        let lines = Self::video_lines(rgb).replace("module avcodec.so\n", "module vp8.so\n");
        let dir = Self::configure_with(base, setup, &lines);
        Self::spawn(dir, &["-t", &seconds.to_string(), "-e", &format!("/dial {uri}")])
    }

    fn video_lines(rgb: u32) -> String {
        format!(
            "video_source avformat,lavfi,color=c=0x{rgb:06X}:s=320x180:r=15\nvideo_display fakevideo,nil\n\
             video_size 320x180\nvideo_bitrate 300000\nvideo_fps 15.00\nmodule avcodec.so\nmodule avformat.so\n\
             module fakevideo.so\nmodule snapshot.so\navcodec_h264enc libx264\navcodec_h264dec h264\n"
        )
    }

    /// Asks it to save the next picture it decodes (`recv`) or sends
    /// (`send`) as a PNG at `path`, and waits for the file.
    pub fn snapshot(&self, ctrl_port: u16, which: &str, path: &Path) -> Option<Picture> {
        let _ = std::fs::remove_file(path);
        self.command(ctrl_port, &format!("snapshot_{which}"), &path.display().to_string());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            // libpng writes the file in one go; a partial read just retries.
            if let Some(p) = Picture::read(path) {
                return Some(p);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// An answering endpoint (as [`Baresip::answer`]) with `extra` config
    /// lines, e.g. `sip_certificate` for SIP over TLS on `sip_port + 1`.
    pub fn answer_with_config(base: &Path, setup: &BaresipSetup, extra: &str, seconds: u32) -> Baresip {
        let dir = Self::configure_with(base, setup, extra);
        Self::spawn(dir, &["-t", &seconds.to_string()])
    }

    /// Starts an endpoint that answers calls and quits after `seconds`.
    pub fn answer(base: &Path, setup: &BaresipSetup, seconds: u32) -> Baresip {
        let dir = Self::configure(base, setup);
        Self::spawn(dir, &["-t", &seconds.to_string()])
    }

    fn spawn(dir: PathBuf, args: &[&str]) -> Baresip {
        let log = std::fs::File::create(dir.join("baresip.log")).unwrap();
        let child = Command::new("baresip")
            .arg("-f")
            .arg(&dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("baresip (apt-get install baresip)");
        Baresip { dir, child: Some(child) }
    }

    /// Runs one baresip command over its control socket.
    pub fn command(&self, ctrl_port: u16, command: &str, params: &str) {
        let body = format!("{{\"command\":\"{command}\",\"params\":\"{params}\",\"token\":\"t\"}}");
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", ctrl_port)) {
            let _ = s.write_all(format!("{}:{},", body.len(), body).as_bytes());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Sends DTMF digits over its control socket (RFC 4733 in the call).
    pub fn send_dtmf(&self, ctrl_port: u16, digits: &str) {
        for d in digits.chars() {
            let body = format!("{{\"command\":\"sndcode\",\"params\":\"{d}\",\"token\":\"t\"}}");
            let netstring = format!("{}:{},", body.len(), body);
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", ctrl_port)) {
                let _ = s.write_all(netstring.as_bytes());
                std::thread::sleep(Duration::from_millis(300));
            }
        }
    }

    /// Waits until it has loaded its modules and accounts and listens.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline && !self.log().contains("baresip is ready") {
            std::thread::sleep(Duration::from_millis(50));
        }
        // It prints that line just before its main loop runs.
        std::thread::sleep(Duration::from_millis(300));
    }

    /// Waits for it to quit (killing it after `limit`).
    pub fn wait(&mut self, limit: Duration) {
        if let Some(child) = self.child.take() {
            wait_or_kill(child, limit);
        }
    }

    /// What it heard (first channel) and the rate.
    pub fn heard(&self) -> (Vec<i16>, u32) {
        let rec = std::fs::read_dir(self.dir.join("rec")).unwrap();
        let file = rec
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
            .unwrap_or_else(|| panic!("no recording in {}; log:\n{}", self.dir.display(), self.log()));
        read_wav(&file)
    }

    /// What it heard in its newest recording (a re-INVITE starts a new one).
    pub fn heard_latest(&self) -> (Vec<i16>, u32) {
        let rec = std::fs::read_dir(self.dir.join("rec")).unwrap();
        let mut files: Vec<PathBuf> = rec
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
            .collect();
        files.sort();
        read_wav(files.last().unwrap_or_else(|| panic!("no recording in {}", self.dir.display())))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("baresip.log")).unwrap_or_default()
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            wait_or_kill(child, Duration::ZERO);
        }
    }
}

/// Waits up to `limit` for a peer to quit on its own, then kills it (by
/// its PID, through `Child`) and reaps it.
fn wait_or_kill(mut child: Child, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A free UDP+TCP port pair base (the port and the next are free now), out
/// of the ephemeral range (`common::chosen_port`).
pub fn free_pair() -> u16 {
    crate::common::chosen_port(|p| {
        p % 2 == 0
            && UdpSocket::bind(("127.0.0.1", p)).is_ok()
            && UdpSocket::bind(("127.0.0.1", p + 1)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok()
    })
}

/// A linphonec (liblinphone) endpoint: a second, independent SIP and media
/// stack. It plays a tone file and records what it hears.
pub struct Linphone {
    pub dir: PathBuf,
    child: Option<Child>,
}

impl Linphone {
    /// Calls `uri` from SIP port `sip_port`, sending a tone.
    pub fn call(base: &Path, name: &str, sip_port: u16, rtp_port: u16, tone_hz: f64, uri: &str) -> Linphone {
        let dir = base.join(name);
        let home = dir.join("home");
        std::fs::create_dir_all(home.join(".local/share/linphone")).unwrap();
        let tone = dir.join("tone.wav");
        write_tone(&tone, tone_hz, 60, 0.25);
        let rc = format!(
            "[sip]\nsip_port={sip_port}\nsip_tcp_port=0\nsip_tls_port=0\nuse_ipv6=0\nipv6_migration_done=1\n\
             [net]\nnat_address=127.0.0.1\nfirewall_policy=1\n[rtp]\naudio_rtp_port={rtp_port}\n"
        );
        std::fs::write(dir.join("rc"), rc).unwrap();
        let log = std::fs::File::create(dir.join("linphonec.log")).unwrap();
        let mut child = Command::new("linphonec")
            .arg("-c")
            .arg(dir.join("rc"))
            .env("HOME", &home)
            .stdin(Stdio::piped())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("linphonec (apt-get install linphone-cli)");
        let commands = format!(
            "soundcard use files\nplay {}\nrecord {}\ncall {uri}\n",
            tone.display(),
            dir.join("rec.wav").display()
        );
        child.stdin.as_mut().unwrap().write_all(commands.as_bytes()).unwrap();
        Linphone { dir, child: Some(child) }
    }

    /// Hangs up and quits.
    pub fn hang_up(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if let Some(stdin) = child.stdin.as_mut() {
            let _ = stdin.write_all(b"terminate\nquit\n");
        }
        // It closes its recording on the way out; on a loaded machine that
        // can take a while.
        wait_or_kill(child, Duration::from_secs(30));
    }

    /// What it heard.
    pub fn heard(&self) -> (Vec<i16>, u32) {
        read_wav(&self.dir.join("rec.wav"))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("linphonec.log")).unwrap_or_default()
    }
}

impl Drop for Linphone {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            wait_or_kill(child, Duration::ZERO);
        }
    }
}

/// A SIP phone made of a UDP socket.
pub struct RawPhone {
    pub socket: UdpSocket,
    bridge: u16,
}

impl RawPhone {
    pub fn new(bridge: u16) -> RawPhone {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        RawPhone { socket, bridge }
    }

    pub fn port(&self) -> u16 {
        self.socket.local_addr().unwrap().port()
    }

    pub fn send(&self, text: &str) {
        self.socket.send_to(text.as_bytes(), ("127.0.0.1", self.bridge)).unwrap();
    }

    /// The next message whose first line contains `what`, within `limit`.
    pub fn expect(&self, what: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 65_536];
        while Instant::now() < deadline {
            if let Ok((n, _)) = self.socket.recv_from(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                if text.lines().next().is_some_and(|l| l.contains(what)) {
                    return Some(text);
                }
            }
        }
        None
    }

    /// INVITEs `user` offering PCMU at our port + 2.
    pub fn invite(&self, call_id: &str, user: &str) {
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
            self.port() + 2
        );
        self.invite_with(call_id, user, &sdp);
    }

    /// INVITEs `user` with this SDP offer.
    pub fn invite_with(&self, call_id: &str, user: &str, sdp: &str) {
        let port = self.port();
        self.send(&format!(
            "INVITE sip:{user}@127.0.0.1:{b} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{call_id}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:raw@127.0.0.1:{port}>;tag=t{call_id}\r\nTo: <sip:{user}@127.0.0.1>\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:raw@127.0.0.1:{port}>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len(),
            b = self.bridge
        ));
    }

    /// Acknowledges a 2xx (its To tag and Contact).
    pub fn ack(&self, ok: &str, call_id: &str, user: &str) {
        let port = self.port();
        let to = header(ok, "To");
        self.send(&format!(
            "ACK sip:{user}@127.0.0.1:{b} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKack{call_id}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:raw@127.0.0.1:{port}>;tag=t{call_id}\r\nTo: {to}\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
            b = self.bridge
        ));
    }
}

/// A header's value in a SIP message (first occurrence, any case).
pub fn header(message: &str, name: &str) -> String {
    message
        .lines()
        .find_map(|l| l.split_once(':').filter(|(n, _)| n.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()))
        .unwrap_or_default()
        .to_string()
}

/// Runs a script of `tests/peers/browser` (headless Chromium through
/// playwright-core) with one JSON argument; panics with its output on failure.
pub fn run_browser(script: &str, arg: &dyn std::fmt::Display) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run scripts/test (or `npm ci --prefix tests/peers/browser`)"
    );
    let out = Command::new("node").arg(dir.join(script)).arg(arg.to_string()).current_dir(&dir).output().expect("node");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{script} failed:\n{text}");
    text
}

/// Python's http.server serving a directory on loopback (branding files,
/// invitation templates), ended by PID when dropped.
pub struct FileServer {
    child: std::process::Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl FileServer {
    /// Serves `dir`; waits until it listens.
    pub fn start(dir: &Path) -> FileServer {
        let port = free_pair();
        let child = std::process::Command::new("/usr/bin/python3")
            .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 http.server");
        let server = FileServer { child, port };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "http.server did not listen on {port}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        server
    }

    /// The URL of `file` (or the directory, for "").
    pub fn url(&self, file: &str) -> String {
        format!("http://127.0.0.1:{}/{file}", self.port)
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
