# Shared set-up for scripts/run and scripts/test: installs what is missing on a
# fresh Debian machine that has only the Rust toolchain. Sourced, not run.

# apt-get update runs at most once per script run.
_apt_updated=""
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  if [ -z "$_apt_updated" ]; then
    $sudo apt-get update -qq
    _apt_updated=1
  fi
  echo "setup: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Build tools: cmake for libopus (opusic-sys), nasm for OpenH264's assembly;
# libvpx-dev (found by pkg-config) for VP8 (env-libvpx-sys links Debian's
# libvpx, whose version must be one the crate ships bindings for).
ensure_build_tools() {
  apt_install cmake nasm pkg-config libvpx-dev
}

# The SIP peers the integration tests call and are called by (tests/peers):
# baresip (baresip-core carries the audio modules; baresip-ffmpeg the avcodec
# and avformat modules the video test's H.264 cameras need), linphonec, and
# sipp for scripted SIP and scripts/bench-sip; dnsmasq as the DNS server with the
# SRV records dial-out and XMPP tests locate their targets by; prosody, the XMPP
# server the call bridge attaches to as a component, and slixmpp, a web user's
# XMPP client, for Debian's /usr/bin/python3 (tests/xmpp.rs); coturn, the TURN
# server whose reachability turnServers/<id>/status probes (tests/api_paths.rs).
ensure_test_peers() {
  apt_install baresip-core baresip-ffmpeg linphone-cli sip-tester prosody dnsmasq-base python3-slixmpp coturn
}

# The scheduler's peers (tests/scheduler.rs): aiosmtpd receives the
# invitations, python3-icalendar parses their calendars (run with Debian's
# /usr/bin/python3, whatever python3 is first on PATH).
ensure_scheduler_peers() {
  apt_install python3-aiosmtpd python3-icalendar
}

# The LDAP directory the LDAP tests import users from and bind to
# (tests/ldap.rs): OpenLDAP's slapd, which the tests configure and start
# themselves in a temporary directory (never the system service), and
# ldap-utils' ldapmodify to change entries between syncs.
ensure_ldap_peers() {
  apt_install slapd ldap-utils
}

# Only for scripts/bench-audio: Janus (the AudioBridge it is measured against),
# espeak-ng for the speech it replays, sox to resample that to 48 kHz, curl to
# see when Janus is up.
# Kept apart so that scripts/test never depends on them.
ensure_bench_peers() {
  apt_install janus sox espeak-ng curl
}

# The browser the web app's tests drive (tests/web.rs): Debian's chromium,
# and playwright-core (pinned in tests/peers/browser/package-lock.json) to
# drive it. playwright-core never downloads a browser; /usr/bin/chromium is
# the one used.
ensure_browser_peers() {
  apt_install chromium
  # A machine may have Node from elsewhere (with its own npm, which Debian's
  # npm package conflicts with): install Debian's only when there is none.
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
  fi
  if [ ! -d tests/peers/browser/node_modules/playwright-core ]; then
    echo "setup: installing playwright-core"
    npm ci --prefix tests/peers/browser --no-audit --no-fund --silent
  fi
}
