# tests/lib/rgw.sh -- start Ceph's RADOS Gateway (one mon, one memstore
# OSD, one radosgw, all under one temp directory, bound to 127.0.0.1 on
# free ports) as a second real S3 server for the tests. It checks every
# SigV4 signature and Content-MD5, gives real multipart ETags and encrypts
# with SSE-KMS using its built-in test keys (HACKING.md, "Two S3 servers",
# says where it differs from AWS).
#
#   . tests/lib/rgw.sh
#   rgw_start [BUCKET...]   # exports AWS_ENDPOINT_URL, the user's keys,
#                           # AWS_REGION=us-west-1 (the zonegroup's name),
#                           # TDM_TEST_S3_SERVER=rgw, RGW_KMS_KEY_ID(2);
#                           # unsets TDM_S3_DIR;
#                           # registers a trap to stop it
#   rgw_stop                # radosgw, then the OSD, then the mon
#
# RGW_KMS_KEY_ID is the name of a test key for SSE-KMS
# (x-amz-server-side-encryption-aws-kms-key-id); RGW_KMS_KEY_ID2 another.
# Needs radosgw ceph-mon ceph-osd (scripts/install-deps.sh). Start-up takes
# a few seconds; the log of every daemon is in $RGW_DIR/log until rgw_stop.

RGW_ACCESS_KEY=TDMRGWTESTACCESSKEY0
RGW_SECRET_KEY=tdmRgwTestSecretKey0000000000000000000000
RGW_KMS_KEY_ID=tdm-test-key-1
RGW_KMS_KEY_ID2=tdm-test-key-2
RGW_REGION=us-west-1

rgw_installed() {
  command -v radosgw >/dev/null && command -v ceph-mon >/dev/null &&
    command -v ceph-osd >/dev/null
}

# A window of N consecutive free loopback ports: its first port.
rgw_free_ports() {
  python3 - "$1" <<'EOF'
import random, socket, sys
n = int(sys.argv[1])
for _ in range(200):
    base = random.randrange(20000, 60000 - n)
    socks = []
    try:
        for p in range(base, base + n):
            s = socket.socket()
            s.bind(("127.0.0.1", p))
            socks.append(s)
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(base)
    break
EOF
}

# Run CMD..., quietly; on failure show its output and fail.
rgw_run() {
  local out
  if ! out=$("$@" 2>&1); then
    echo "rgw: '$*' failed:" >&2
    echo "$out" | tail -n 20 >&2
    return 1
  fi
}

# Wait until FILE exists (at most ~30 s).
rgw_wait_file() {
  local i=0
  while [ ! -e "$1" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
  [ -e "$1" ]
}

rgw_start() {
  local buckets=("$@") dir base mon_port rgw_port fsid osd_uuid conf i
  [ ${#buckets[@]} -eq 0 ] && buckets=(story-boards-assets)
  if ! rgw_installed; then
    echo "rgw: radosgw/ceph-mon/ceph-osd not installed;" \
      "run scripts/install-deps.sh" >&2
    return 1
  fi
  dir=$(mktemp -d "${TMPDIR:-/tmp}/tdm-rgw.XXXXXX")
  RGW_DIR=$dir
  trap rgw_stop EXIT
  mkdir -p "$dir/mon" "$dir/osd" "$dir/run" "$dir/log"
  # mon, rgw, then 20 ports for the OSD's messengers (public, cluster,
  # heartbeats), so two clusters on one machine do not meet.
  base=$(rgw_free_ports 22) || return 1
  mon_port=$base rgw_port=$((base + 1))
  fsid=$(cat /proc/sys/kernel/random/uuid)
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  conf=$dir/ceph.conf
  cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
ms bind port min = $((base + 2))
ms bind port max = $((base + 21))
# auth none, yet radosgw asks the mon for secure mode unless told crc
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
run dir = $dir/run
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
keyring = $dir/keyring
# one OSD: pools of size 1 with few PGs, or pool creation fails
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 1
osd pool default pgp num = 1
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon max pg per osd = 1000
mon allow pool delete = true
# radosgw creates its pools one map change at a time: ~16 s -> ~3 s
paxos propose interval = 0.05
mon data = $dir/mon
osd data = $dir/osd
osd objectstore = memstore
memstore device bytes = 4294967296
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw dns name = localhost
rgw crypt s3 kms backend = testing
rgw crypt s3 kms encryption keys = $RGW_KMS_KEY_ID=$(head -c 32 /dev/urandom | base64) $RGW_KMS_KEY_ID2=$(head -c 32 /dev/urandom | base64)
rgw crypt require ssl = false
# with the OSD gone first radosgw would wait this long (default 120 s)
rgw exit timeout secs = 10
EOF
  rgw_run ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. \
    --cap mon 'allow *' || return 1
  rgw_run monmaptool --create --addv a "[v2:127.0.0.1:$mon_port]" \
    --fsid "$fsid" "$dir/monmap" || return 1
  rgw_run ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" || return 1
  rgw_run ceph-mon -c "$conf" -i a || return 1
  rgw_wait_file "$dir/run/mon.a.pid" || { echo "rgw: mon did not start" >&2; return 1; }
  rgw_run ceph -c "$conf" osd new "$osd_uuid" 0 || return 1
  rgw_run ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" || return 1
  rgw_run ceph-osd -c "$conf" -i 0 || return 1
  rgw_wait_file "$dir/run/osd.0.pid" || { echo "rgw: osd did not start" >&2; return 1; }
  # The region: a realm, a zonegroup named (api_name) us-west-1, a zone.
  local admin=(radosgw-admin -c "$conf" -n client.admin)
  rgw_run "${admin[@]}" realm create --rgw-realm=tdm --default || return 1
  rgw_run "${admin[@]}" zonegroup create --rgw-realm=tdm \
    --rgw-zonegroup="$RGW_REGION" --master --default \
    --endpoints="http://127.0.0.1:$rgw_port" || return 1
  rgw_run "${admin[@]}" zone create --rgw-zonegroup="$RGW_REGION" \
    --rgw-zone="$RGW_REGION-a" --master --default \
    --endpoints="http://127.0.0.1:$rgw_port" || return 1
  rgw_run "${admin[@]}" period update --commit || return 1
  # The user is made while radosgw starts (each takes a second or so).
  rgw_run "${admin[@]}" user create --uid tdm --display-name "tdm tests" \
    --access-key "$RGW_ACCESS_KEY" --secret "$RGW_SECRET_KEY" &
  local user_pid=$!
  rgw_run radosgw -c "$conf" -n client.rgw.tdm --rgw-zone="$RGW_REGION-a" ||
    return 1
  wait "$user_pid" || return 1
  i=0
  until curl -s -o /dev/null "http://127.0.0.1:$rgw_port/"; do
    i=$((i + 1))
    if [ $i -gt 300 ]; then
      echo "rgw: radosgw did not answer; log:" >&2
      tail -n 20 "$dir/log/client.rgw.tdm.log" >&2
      return 1
    fi
    sleep 0.1
  done
  export AWS_ENDPOINT_URL="http://127.0.0.1:$rgw_port"
  export AWS_ACCESS_KEY_ID=$RGW_ACCESS_KEY
  export AWS_SECRET_ACCESS_KEY=$RGW_SECRET_KEY
  export AWS_REGION=$RGW_REGION
  export TDM_TEST_S3_SERVER=rgw RGW_KMS_KEY_ID RGW_KMS_KEY_ID2
  unset AWS_SESSION_TOKEN AWS_PROFILE TDM_S3_DIR
  local code
  for b in "${buckets[@]}"; do
    # curl 7.88's --aws-sigv4 needs the payload hash header for RGW
    code=$(curl -s -o "$dir/create.xml" -w '%{http_code}' -X PUT \
      --aws-sigv4 "aws:amz:$RGW_REGION:s3" \
      --user "$RGW_ACCESS_KEY:$RGW_SECRET_KEY" \
      -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
      --data-binary "<CreateBucketConfiguration><LocationConstraint>$RGW_REGION</LocationConstraint></CreateBucketConfiguration>" \
      "$AWS_ENDPOINT_URL/$b")
    if [ "$code" != 200 ]; then
      echo "rgw: creating bucket $b: HTTP $code: $(cat "$dir/create.xml")" >&2
      return 1
    fi
  done
}

# Stop radosgw, then the OSD, then the mon (radosgw waits for the OSD
# otherwise), each by its pid file; remove the directory.
rgw_stop() {
  [ -n "${RGW_DIR:-}" ] || return 0
  local name pid i
  for name in client.rgw.tdm osd.0 mon.a; do
    pid=$(cat "$RGW_DIR/run/$name.pid" 2>/dev/null) || continue
    kill "$pid" 2>/dev/null || continue
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
      sleep 0.05; i=$((i + 1))
    done
    kill -9 "$pid" 2>/dev/null
  done
  rm -rf "$RGW_DIR"
  RGW_DIR=
}
