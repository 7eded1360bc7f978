#!/usr/bin/env bash
# scripts/install-deps.sh -- install what tdm needs to build, run and test.
#
# Idempotent and quiet when everything is already there. Debian packages
# for the build, runtime and tests; npm only for the test-only S3 server
# (s3rver, pinned by package-lock.json). Run as root (or with sudo).
#
#   scripts/install-deps.sh          # build + runtime + tests
#   scripts/install-deps.sh --bench  # also the benchmark peers
#   scripts/install-deps.sh --fuzz   # also clang + libFuzzer (make fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_PKGS="build-essential pkg-config liblua5.4-dev lua5.4 lua-cjson
  libcurl4-openssl-dev libssl-dev libexpat1-dev libjansson-dev
  libmicrohttpd-dev"
# radosgw + ceph-mon + ceph-osd: Ceph's RADOS Gateway, the second S3 server
# of the tests (tests/lib/rgw.sh; ~270 MB, no daemon is started).
TEST_PKGS="python3 python3-botocore curl ca-certificates
  valgrind awscli luarocks wrk time procps bc man-db
  radosgw ceph-mon ceph-osd"
BENCH_PKGS="rclone s3cmd hyperfine"
FUZZ_PKGS="clang libclang-rt-14-dev"

want="$BUILD_PKGS $TEST_PKGS"
# Node may come from elsewhere than Debian (a newer nodejs package with its
# own npm); take Debian's only when there is none.
command -v node >/dev/null || want="$want nodejs"
command -v npm >/dev/null || want="$want npm"
[ "${1:-}" = "--bench" ] && want="$want $BENCH_PKGS"
[ "${1:-}" = "--fuzz" ] && want="$want $FUZZ_PKGS"

missing=()
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "install-deps: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# The test-only S3 server, exactly as pinned by package-lock.json.
if [ ! -f node_modules/s3rver/package.json ] ||
   ! grep -q '"version": "3.7.1"' node_modules/s3rver/package.json; then
  echo "install-deps: installing s3rver (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
