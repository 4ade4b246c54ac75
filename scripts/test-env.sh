#!/usr/bin/env bash
# Prints `export` lines for the test services that answer on localhost, so tests that need
# them run; tests whose service is absent print "skipped: no <service>".
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -z "${QUICKTOK_TEST_POSTGRES_URL:-}" ] && port_open 5432; then
  echo "export QUICKTOK_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test"
fi
if [ -z "${QUICKTOK_TEST_REDIS_URL:-}" ] && port_open 6379; then
  echo "export QUICKTOK_TEST_REDIS_URL=redis://127.0.0.1:6379"
fi
if [ -z "${QUICKTOK_TEST_NATS_URL:-}" ] && port_open 4222; then
  echo "export QUICKTOK_TEST_NATS_URL=nats://127.0.0.1:4222"
fi
# The virtualenv scripts/deps.sh test makes, when it has the tus client (tuspy).
test_python=$(cd "$(dirname "$0")/.." && pwd)/.venv-test/bin/python
if [ -z "${QUICKTOK_TEST_PYTHON:-}" ] && "$test_python" -c 'import tusclient' >/dev/null 2>&1; then
  printf 'export QUICKTOK_TEST_PYTHON=%q\n' "$test_python"
fi
