#!/usr/bin/env bash
# test_hostile.sh -- odd and hostile input as an operator or an attacker
# would give it, on the real binary against the harness's s3rver: each is
# one line naming the file and the reason, the documented exit code, and
# nothing written.
. "$(dirname "$0")/../lib/e2e.sh"
e2e_world t-hostile
D=$TDM_DATA_ROOT
a=0003_cat
mkdir -p "$D/actors/$a/training_data"
printf '\377\330\377%s' "$a" > "$D/actors/$a/training_data/${a}_0.jpg"
check_rc "set-up: a manifest" 0 tdm-lua sync-manifests -q
M=$D/actor_manifests/0003_manifest.json
cp "$M" "$tmp/good.json"
snap() { find "$D" -type f -printf '%p %s %T@\n' | sort; }

# An endpoint with a path (or query) is refused before any request, with
# the file and line that set it (it used to fail the listing, exit 1,
# naming AWS_ENDPOINT_URL).
printf 'endpoint = %s/foo\n' "$AWS_ENDPOINT_URL" > "$tmp/e.conf"
before=$(snap)
run_ep() { env -u AWS_ENDPOINT_URL -u AWS_ENDPOINT_URL_S3 TDM_CONFIG="$tmp/e.conf" tdm-lua "$@"; }
check_rc "endpoint with a path in tdm.conf exits 2" 2 run_ep sync-manifests
check_grep "endpoint with a path: file, line and reason" \
  "e.conf:1: endpoint '.*/foo' \(file .*e.conf:1\): a path or query after the host" \
  run_ep sync-manifests
check_rc "endpoint with a query in the environment exits 2" 2 \
  env AWS_ENDPOINT_URL="$AWS_ENDPOINT_URL?x=1" tdm-lua audit
[ "$(snap)" == "$before" ] && pass || fail "a refused endpoint changed files under the data root"
check_rc "an endpoint ending in / still works" 0 \
  env AWS_ENDPOINT_URL="$AWS_ENDPOINT_URL/" tdm-lua sync-manifests -q

# Malformed manifests: one line with the file, where, and what was found.
bad_manifest() { # NAME PATTERN PYTHON-EDIT
  python3 -c "import json,sys;d=json.load(open(sys.argv[1]));$3;json.dump(d,open(sys.argv[1],'w'))" "$M"
  local before out rc
  before=$(snap)
  out=$(tdm-lua pull 3 2>&1); rc=$?
  [ "$rc" -eq 1 ] && pass || fail "$1: expected exit 1, got $rc: $out"
  if grep -qE "0003_manifest.json: line [0-9]+ column [0-9]+: $2" <<<"$out"; then pass
  else fail "$1: expected /$2/ naming the manifest, got: $out"; fi
  [ "$(snap)" == "$before" ] && pass || fail "$1: files changed"
  cp "$tmp/good.json" "$M"
}
bad_manifest "negative size" "expected a non-negative integer for 'size_bytes' of training_data\[0\], got -5" \
  'd["training_data"][0]["size_bytes"]=-5'
bad_manifest "filename with a path" "training_data\[0\]: filename '../../x.jpg' contains a path separator" \
  'd["training_data"][0]["filename"]="../../x.jpg"'
bad_manifest "local_path outside the root" "training_data\[0\]: local_path '../../x.jpg' contains '..'" \
  'd["training_data"][0]["local_path"]="../../x.jpg"'
bad_manifest "ids of two actors" "character_id '0003' .* name different actors" \
  'd["character_name"]="0004_dan"'

# Names with '..' on the command line are refused as usage errors.
check_rc "push ../../etc exits 2" 2 tdm-lua push ../../etc
check_grep "pull ACTOR/..: the reason" "contains a path separator" tdm-lua pull "$a/../.."

# Credentials S3 refuses are the configuration's fault: exit 2, the reason
# and the advice, never the secret (was exit 1, as for one failed actor).
check_rc "an access key S3 does not know exits 2" 2 \
  env AWS_ACCESS_KEY_ID=NOSUCHKEY4711 AWS_SECRET_ACCESS_KEY=hush-hush-0815 tdm-lua sync-manifests -q
out=$(env AWS_ACCESS_KEY_ID=NOSUCHKEY4711 AWS_SECRET_ACCESS_KEY=hush-hush-0815 tdm-lua pull-all 2>&1)
grep -q "InvalidAccessKeyId.*check AWS_ACCESS_KEY_ID" <<<"$out" && pass || fail "unknown key: expected InvalidAccessKeyId and advice, got: $out"
grep -q "hush-hush-0815" <<<"$out" && fail "the secret was printed: $out" || pass
# md5 takes files only: an option is a usage error, not a file it cannot
# open (was: "hash -q: open: No such file or directory", exit 1).
check_rc "md5 -q exits 2" 2 tdm-lua md5 -q "$M"
check_grep "md5 -q: names the option" "md5: unknown option '-q'" tdm-lua -q md5 "$M"
check_rc "md5 ./-name is a file" 1 tdm-lua md5 ./-nosuch
# A file push holds back (not an image) is counted in the summary, so a
# -q run (cron) still shows that not everything went up.
printf 'not an image' > "$D/actors/$a/training_data/${a}_1.jpg"
check_grep "push -q: held_back in the summary" "^push: .*held_back=1 " tdm-lua push 3 -q
# A data root that is a file is one configuration error, not one error
# per actor (was: "stat FILE/actors/0001_...: Not a directory" x N, exit 1);
# a data root reached through a symlink is fine.
printf 'x' > "$tmp/afile"
check_rc "data root that is a file exits 2" 2 tdm-lua sync-manifests --data-root "$tmp/afile"
check_grep "data root that is a file: one line, the reason" \
  "^tdm-lua: data_root '.*afile' \(argument\): not a directory$" tdm-lua audit --data-root "$tmp/afile"
ln -s "$D" "$tmp/link"
check_rc "data root through a symlink" 0 tdm-lua sync-manifests -q --data-root "$tmp/link"
# A malformed actor named with --actor is a usage error, as with push
# ACTOR (was exit 1 for --actor, 2 for push).
check_rc "pull-all --actor ../x exits 2" 2 tdm-lua pull-all -n --actor ../x
check_rc "sync-manifests --actor -1 exits 2" 2 tdm-lua sync-manifests -n --actor -1
# A bad s3_checksum names every value that is accepted (it left out three).
check_grep "bad s3_checksum: the accepted values" \
  "must be auto, crc32c, crc32, crc64nvme, sha256, sha1 or off, got 'md4'" \
  env TDM_S3_CHECKSUM=md4 tdm-lua sync-manifests -n
check_rc "s3_checksum crc64nvme is accepted" 0 env TDM_S3_CHECKSUM=crc64nvme tdm-lua sync-manifests -n -q
finish
