#!/usr/bin/env bash
# test_cli.sh -- the command line as aws-cli and rclone users type it, run
# on the real binary against the harness's s3rver: global options before
# the command, peers' spellings, help per command, "did you mean", exit
# code 2 for every configuration error, tdm.conf validation, typed
# config --json, bucket/endpoint in the summary, plain per-file words,
# -q, --log-file, shards from the job engine's variables.
. "$(dirname "$0")/../lib/e2e.sh"
e2e_world t-cli
D=$TDM_DATA_ROOT
for a in 0001_ann 0002_bob 0003_cat 0004_dan 0005_eve; do
  mkdir -p "$D/actors/$a/training_data"
  printf '\377\330\377%s' "$a" > "$D/actors/$a/training_data/${a}_0.jpg"
done
unset TDM_DATA_ROOT
cd "$tmp" || exit 1

# Options before the command, the peers' spellings.
check_rc "global options before the command" 0 \
  tdm-lua --data-root "$D" -q --prefix "$TDM_PREFIX" sync-manifests
[ -f "$D/actor_manifests/0003_manifest.json" ] && pass || fail "manifest written by tdm-lua --data-root D sync-manifests"
check_grep "--dryrun and -n are --dry-run" "^\(dry run\) pull-all:" \
  tdm-lua pull-all --dryrun -n --data-root "$D"
out=$(tdm-lua --data-root "$D" pull-all -q 2>/dev/null)
[ -z "$out" ] && pass || fail "-q: expected no per-file lines on stdout, got '$out'"

# Help: per command, listing only what applies.
check_rc "tdm-lua help pull" 0 tdm-lua help pull
[ "$(tdm-lua help pull)" == "$(tdm-lua pull --help)" ] && pass || fail "help pull differs from pull --help"
if tdm-lua help pull | grep -qE -- '--actor|--shard'; then fail "pull --help lists --actor/--shard"; else pass; fi
check_grep "pull-all --help lists --actor" "--actor ACTOR" tdm-lua pull-all --help
check_grep "--help lists --endpoint-url" "--endpoint-url URL" tdm-lua audit --help
check_grep "main help lists help" "help +show the help" tdm-lua help
check_out "docs/commands.md holds the current --help texts (make docs)" \
  "$TDM_TEST_ROOT/docs/commands.md is up to date" \
  tdm-lua "$TDM_TEST_ROOT/scripts/gen-commands-md.lua" tdm-lua "$TDM_TEST_ROOT/docs/commands.md" --check
cp "$TDM_TEST_ROOT/docs/commands.md" "$tmp/commands.md"
sed -i 's/^  -n, --dry-run, /  -n, --dry-runX, /' "$tmp/commands.md"
check_rc "a stale --help block is caught" 1 \
  tdm-lua "$TDM_TEST_ROOT/scripts/gen-commands-md.lua" tdm-lua "$tmp/commands.md" --check

# --profile NAME is AWS_PROFILE=NAME: the profile's endpoint_url, region
# and keys decide, as for `aws --profile` (a new user's first run).
mkdir -p "$tmp/home/.aws"
printf '[profile lab]\nregion = eu-west-3\nendpoint_url = %s\n' "$AWS_ENDPOINT_URL" > "$tmp/home/.aws/config"
printf '[lab]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
  "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" > "$tmp/home/.aws/credentials"
prof() { env -u AWS_ENDPOINT_URL -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_REGION \
           HOME="$tmp/home" "$@"; }
check_grep "--profile: endpoint from the profile" "^endpoint +$AWS_ENDPOINT_URL +profile 'lab'" \
  prof tdm-lua config --profile lab
check_grep "--profile: region from the profile" "^region +eu-west-3 +profile 'lab'" prof tdm-lua --profile lab config
check_rc "--profile: a run against the profile's endpoint" 0 \
  prof tdm-lua --profile lab sync-manifests -n -q --data-root "$D"
check_grep "without --profile: AWS" "^endpoint +\(unset\)" prof tdm-lua config

# Typos: "did you mean", exit 2.
check_rc "mistyped command exits 2" 2 tdm-lua pul-all
check_grep "mistyped command: did you mean" "did you mean 'pull-all'" tdm-lua pul-all
check_rc "mistyped option exits 2" 2 tdm-lua audit --data-rot x
check_grep "mistyped option: did you mean" "did you mean '--data-root'" tdm-lua audit --data-rot x
check_grep "mistyped global option: did you mean" "did you mean '--bucket'" tdm-lua --bukcet x audit
check_rc "pull refuses --actor with 2" 2 tdm-lua pull 1 --actor 1
check_grep "-V prints the version" "^tdm-lua [0-9]" tdm-lua -V
check_grep "-v alone: no command, and where the version is" "no command given.*--version" tdm-lua -v

# Configuration errors exit 2, each named.
cfgerr() { # NAME PATTERN CMD...
  local name=$1 re=$2; shift 2
  check_rc "$name exits 2" 2 "$@"
  check_grep "$name: message" "$re" "$@"
}
cfgerr "no credentials" "no AWS credentials" \
  env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY HOME="$tmp/nohome" \
  tdm-lua sync-manifests --data-root "$D"
cfgerr "malformed endpoint" "endpoint 'htp:/x' \(argument\): expected http" \
  tdm-lua sync-manifests --data-root "$D" --endpoint-url htp:/x
cfgerr "malformed endpoint from the environment" "env AWS_ENDPOINT_URL" \
  env AWS_ENDPOINT_URL=localhost:9000 tdm-lua audit --data-root "$D"
cfgerr "bucket that does not exist" "NoSuchBucket" \
  tdm-lua sync-manifests --data-root "$D" --bucket "no-such-bucket-$$"
cfgerr "invalid bucket name" "not a valid S3 bucket name: may contain only lowercase" \
  tdm-lua pull-all --data-root "$D" --bucket Bad_Bucket
cfgerr "unknown actor on the command line (--actor)" "unknown actor 99" \
  tdm-lua pull-all --data-root "$D" --actor 99
cfgerr "unknown actor (pull)" "unknown actor 99" tdm-lua pull 99 --data-root "$D"
cfgerr "bad --jobs" "positive whole number" tdm-lua pull-all --jobs 0
printf '# mine\nbucket = "story-boards-assets"\n' > "$tmp/q.conf"
cfgerr "quoted value in tdm.conf" "q.conf:2: bucket: value is quoted" \
  env TDM_CONFIG="$tmp/q.conf" tdm-lua config
printf 'jobs = many\n' > "$tmp/j.conf"
cfgerr "non-numeric jobs in tdm.conf" "j.conf:1: jobs must be a positive number" \
  env TDM_CONFIG="$tmp/j.conf" tdm-lua audit --data-root "$D"
check_rc "nothing written by a refused run" 0 test ! -e "$D/actor_manifests/0099_manifest.json"

# config --json: typed values.
tdm-lua config --json --data-root "$D" > "$tmp/c.json"
check_out "config --json is typed" "int str None" python3 -c '
import json,sys; c=json.load(open(sys.argv[1]))
print(type(c["jobs"]["value"]).__name__, type(c["bucket"]["value"]).__name__, c["api_token"]["value"])' "$tmp/c.json"

# Every summary says which bucket and endpoint the run used.
check_grep "summary names bucket and endpoint" \
  "^audit: .*bucket=story-boards-assets .*endpoint=$AWS_ENDPOINT_URL " tdm-lua audit --data-root "$D"
check_grep "--json summary names them too" '"bucket":"story-boards-assets"' \
  tdm-lua audit --data-root "$D" --json

# Plain words per file; the log file with ISO timestamps.
mkdir -p "$D/actors/0006_fay/training_data"; printf '\377\330\377fay' > "$D/actors/0006_fay/training_data/0006_fay_0.jpg"
out=$(tdm-lua sync-manifests --data-root "$D" --log-file "$tmp/run.log" 2>&1)
grep -q "0006_fay/0006_fay_0.jpg: new local file, added to the manifest" <<<"$out" && pass \
  || fail "plain words for a new file, got: $out"
if grep -q "scan added" <<<"$out"; then fail "terse 'scan added' in human output"; else pass; fi
check_grep "log file: ISO timestamps on every line" \
  "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z sync-manifests: " cat "$tmp/run.log"
bad=$(grep -cvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{12}Z ' "$tmp/run.log")
[ "$bad" = 0 ] && pass || fail "log lines without a timestamp: $bad"
cfgerr "--log-file in a missing directory" "log-file" \
  tdm-lua audit --data-root "$D" --log-file "$tmp/no/such/dir/x.log"

# -v: one line per S3 request (method, key, status, attempt, ms); --debug:
# also the canonical request, with no secret in it; retries say when.
out=$(tdm-lua audit --data-root "$D" -v 2>&1)
grep -qE "^s3: GET $TDM_PREFIX/ -> 200 \(attempt 1, [0-9.]+ ms\)$" <<<"$out" && pass \
  || fail "-v: expected a per-request line for the listing, got: $(head -c 600 <<<"$out")"
out=$(AWS_SESSION_TOKEN=tok-SECRET-123 tdm-lua audit --data-root "$D" --debug 2>&1)
grep -q "^s3: signing GET /, canonical request:" <<<"$out" && pass || fail "--debug: canonical request, got: $(head -c 600 <<<"$out")"
grep -q "^s3:   list-type=2" <<<"$out" && pass || fail "--debug: canonical query line"
if grep -qE "tok-SECRET-123|$AWS_SECRET_ACCESS_KEY" <<<"$out"; then fail "--debug shows a secret"; else pass; fi
port=$(free_port)
out=$(tdm-lua audit --data-root "$D" -v --endpoint-url "http://127.0.0.1:$port" 2>&1)
grep -qE "^s3: GET $TDM_PREFIX/ -> ECONNREFUSED \(attempt 1, [0-9.]+ ms, retry in [0-9.]+ s\)$" <<<"$out" \
  && pass || fail "-v: a refused connection and its retry, got: $(head -c 600 <<<"$out")"
grep -qE "\(attempt [2-9], [0-9.]+ ms\)$" <<<"$out" && pass || fail "-v: the last attempt, no retry"
tdm-lua audit --data-root "$D" -v --log-file "$tmp/v.log" >/dev/null 2>&1
grep -qE "^[0-9T:.-]+Z s3: GET $TDM_PREFIX/ -> 200 " "$tmp/v.log" && pass || fail "-v lines in the log file"

# Shards from the job engine: each index takes its part, all actors once.
all=""
for i in 0 1 2; do
  o=$(JOB_COMPLETION_INDEX=$i TDM_SHARDS=3 tdm-lua sync-manifests --dry-run --data-root "$D" --json)
  all="$all$(python3 -c 'import json,sys
for l in sys.stdin:
  e=json.loads(l)
  if e.get("action")=="manifest": print(e["actor"])' <<<"$o")"$'\n'
  s=$(python3 -c 'import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])["summary"]["shard"])' <<<"$o")
  [ "$s" = "$((i + 1))/3" ] && pass || fail "summary of index $i: expected shard $((i + 1))/3, got '$s'"
done
check_out "k8s indexes split the actors exactly" \
  "0001_ann 0002_bob 0003_cat 0004_dan 0005_eve 0006_fay" \
  bash -c "sort <<<'$all' | grep . | tr '\n' ' ' | sed 's/ \$//'"
check_grep "the run says which shard it took" "shard 2/2 \(from SLURM_ARRAY_TASK_ID\)" \
  env SLURM_ARRAY_TASK_ID=4 SLURM_ARRAY_TASK_MIN=3 SLURM_ARRAY_TASK_COUNT=2 \
  tdm-lua audit --data-root "$D"
cfgerr "index without a count" "TDM_SHARDS" env JOB_COMPLETION_INDEX=0 tdm-lua audit --data-root "$D"

# The shipped job-engine examples: the Indexed Jobs' completions equal
# their TDM_SHARDS, and the Slurm script run as each task of its array
# (--array=0-7) pulls every actor exactly once.
check_out "k8s examples: completions = TDM_SHARDS, command is tdm's" "ok ok" python3 -c '
import yaml, sys, os
root = os.environ["TDM_TEST_ROOT"] + "/examples/k8s/"
out = []
for f in ("pull-all-indexed-job.yaml", "sync-manifests-cronjob.yaml"):
    job = yaml.safe_load(open(root + f))
    spec = job["spec"].get("jobTemplate", {}).get("spec", job["spec"])
    c = spec["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in c["env"]}
    ok = (spec["completionMode"] == "Indexed" and str(spec["completions"]) == env["TDM_SHARDS"]
          and c["args"][0] in ("pull-all", "sync-manifests"))
    out.append("ok" if ok else "bad " + f)
print(" ".join(out))'
arr=$(sed -n 's/^#SBATCH --array=\([0-9]*\)-\([0-9]*\)$/\1 \2/p' "$TDM_TEST_ROOT/examples/slurm/pull-all-array.sh")
set -- $arr; amin=$1 amax=$2
mkdir -p "$tmp/bin"; ln -sf "$(command -v tdm-lua)" "$tmp/bin/tdm-lua"
check_rc "push-all for the Slurm run" 0 tdm-lua push-all -q --data-root "$D"
rm -rf "$tmp/slurm"
for id in $(seq "$amin" "$amax"); do
  o=$(TDM_DATA_ROOT="$tmp/slurm" SLURM_ARRAY_TASK_ID=$id SLURM_ARRAY_TASK_MIN=$amin \
      SLURM_ARRAY_TASK_COUNT=$((amax - amin + 1)) PATH="$tmp/bin:$PATH" \
      bash "$TDM_TEST_ROOT/examples/slurm/pull-all-array.sh" 2>&1) || fail "slurm task $id: $o"
done
got=$(cd "$tmp/slurm/actors" 2>/dev/null && ls | tr '\n' ' ')
check_out "slurm array pulls every actor once" "0001_ann 0002_bob 0003_cat 0004_dan 0005_eve 0006_fay " echo "$got"

# Module errors print as messages in a stock lua5.4.
check_grep "stock lua5.4: a config error is a message" "jobs \(argument\) must be a positive number" \
  lua5.4 -e 'local tdm = require "tdm"
             local cfg, err, code = tdm.config { jobs = "x" }
             print(cfg, code); tdm.Manifest.open(1, { jobs = "x" })'
if lua5.4 -e 'require("tdm").Manifest.open(1, { jobs = "x" })' 2>&1 \
   | grep -q "error object is a table"; then fail "stock lua5.4 prints a table error"; else pass; fi
finish
