#!/usr/bin/env bash
# bench/load_s3.sh -- put a benchmark dataset into an S3-compatible bucket,
# fast: one curl process, signed PUTs (SigV4), 32 at a time.
#
#   bench/load_s3.sh [--parallel N] DATA_ROOT   # every
#       DATA_ROOT/actors/{name}/training_data/{file}  ->
#       s3://$TDM_BUCKET/$TDM_PREFIX/{name}/{file}
#   bench/load_s3.sh [--parallel N] --empty KEYS_FILE
#       a zero-byte object at every key listed (one a line)
#
# Needs AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
# AWS_REGION (tests/lib/s3rver.sh exports them). TDM_BUCKET defaults to
# story-boards-assets, TDM_PREFIX to system_actors/training_data. Sends
# x-amz-content-sha256 (s3rver requires it). Exits non-zero when any PUT
# fails.
set -u
PAR=32 EMPTY=
while [ $# -gt 0 ]; do
  case $1 in
    --parallel) PAR=$2; shift 2 ;;
    --empty) EMPTY=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) break ;;
  esac
done
: "${AWS_ENDPOINT_URL:?load_s3.sh: AWS_ENDPOINT_URL is not set}"
BUCKET=${TDM_BUCKET:-story-boards-assets}
PREFIX=${TDM_PREFIX:-system_actors/training_data}
BASE="${AWS_ENDPOINT_URL%/}/$BUCKET"

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cfg=$tmp/put.cfg
if [ -n "$EMPTY" ]; then
  : > "$tmp/empty"
  awk -v f="$tmp/empty" -v b="$BASE" \
    '{ printf "upload-file = \"%s\"\nurl = \"%s/%s\"\n", f, b, $0 }' \
    "$EMPTY" > "$cfg"
else
  root=${1:?usage: load_s3.sh [--parallel N] DATA_ROOT}
  root=$(cd "$root" && pwd) || exit 1
  (cd "$root/actors" && find . -path './*/training_data/*' -type f) |
    LC_ALL=C sort |
    awk -v r="$root/actors" -v b="$BASE" -v p="$PREFIX" -F/ '
      { printf "upload-file = \"%s/%s/training_data/%s\"\n", r, $2, $4
        printf "url = \"%s/%s/%s/%s\"\n", b, p, $2, $4 }' > "$cfg"
fi
n=$(grep -c '^url' "$cfg")
codes=$tmp/codes
curl -s --no-progress-meter --parallel --parallel-max "$PAR" \
  --aws-sigv4 "aws:amz:${AWS_REGION:-us-west-1}:s3" \
  --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
  -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
  -w '%{http_code}\n' -o /dev/null -K "$cfg" > "$codes"
ok=$(grep -c '^200$' "$codes")
if [ "$ok" -ne "$n" ]; then
  echo "load_s3.sh: $ok of $n PUTs succeeded" >&2
  sort "$codes" | uniq -c >&2
  exit 1
fi
echo "load_s3.sh: $n objects put into $BASE" >&2
