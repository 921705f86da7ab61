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

# Build tools: cmake for libopus (opusic-sys), nasm for OpenH264's assembly.
ensure_build_tools() {
  apt_install cmake nasm pkg-config
}

# SIP peers for the SIP tests (PEERS.md): sipp, baresip and linphonec.
ensure_sip_peers() {
  apt_install sip-tester baresip baresip-core linphone-cli
}
