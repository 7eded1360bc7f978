#!/usr/bin/env bash
# test_credentials.sh -- the AWS credential chain and region
# (tdm_credentials_resolve / tdm_region_resolve through core.credentials,
# core.region, core.sigv4_sign and `tdm-lua config`): the static sources
# (environment, shared credentials file, config file), AWS_PROFILE,
# AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE, INI details, and failure
# paths (the other providers: test_credentials_chain.sh). Every output
# of every case is collected and must never contain
# the fake secret key or session token.
. "$(dirname "$0")/../lib/e2e.sh"
ALL="$tmp/all-output"; : >"$ALL"

SECRET="FAKEsecretKEYnever/shown+0123456789abcdef"
TOKEN="FAKEsessionTOKENnever/shown+zzzzzzzz="
home="$tmp/home"; mkdir -p "$home/.aws"

# run_clean VAR=VALUE... -- CMD...: run CMD with only the given
# environment (plus PATH and Lua paths), HOME=$home; output is also
# appended to $ALL for the leak check.
run_clean() {
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  env -i PATH="$PATH" HOME="$home" LUA_PATH="${LUA_PATH:-}" \
    LUA_CPATH="${LUA_CPATH:-}" TDM_TEST_ROOT="${TDM_TEST_ROOT:-}" \
    AWS_EC2_METADATA_DISABLED=true "${envs[@]}" "$@" 2>&1 | tee -a "$ALL"
}

# cred [VAR=VALUE...] [-p PROFILE]: "AKID|source|token?" or
# "ERR code|message".
CRED_LUA='local core = require "tdm.core"
local p = os.getenv("T_PROFILE")
local c, msg, code = core.credentials(p ~= "" and p or nil)
if c then print(c.access_key_id .. "|" .. c.source .. "|" .. tostring(c.session_token))
else print("ERR " .. code .. "|" .. msg) end'
cred() {
  local envs=() profile=""
  while [ $# -gt 0 ]; do
    case $1 in -p) profile=$2; shift 2 ;; *) envs+=("$1"); shift ;; esac
  done
  run_clean "${envs[@]}" T_PROFILE="$profile" -- tdm-lua -e "$CRED_LUA"
}
REGION_LUA='local core = require "tdm.core"
local r, s = core.region(os.getenv("T_PROFILE"), "us-west-1")
print(r .. "|" .. tostring(s))'
region() { run_clean "$@" -- tdm-lua -e "$REGION_LUA"; }

cf="$tmp/credentials" cc="$tmp/config"
FILES=(AWS_SHARED_CREDENTIALS_FILE="$cf" AWS_CONFIG_FILE="$cc")

# --- environment ------------------------------------------------------
check_out "env credentials" "AKENV|environment|false" \
  cred AWS_ACCESS_KEY_ID=AKENV AWS_SECRET_ACCESS_KEY="$SECRET"
check_out "env credentials with a session token" "AKENV|environment|true" \
  cred AWS_ACCESS_KEY_ID=AKENV AWS_SECRET_ACCESS_KEY="$SECRET" \
  AWS_SESSION_TOKEN="$TOKEN"
check_grep "env access key without secret" \
  "^ERR EBADCREDS\|.*AWS_ACCESS_KEY_ID is set .* AWS_SECRET_ACCESS_KEY is not" \
  cred AWS_ACCESS_KEY_ID=AKENV
check_grep "env secret without access key" \
  "^ERR EBADCREDS\|.*AWS_SECRET_ACCESS_KEY is set .* AWS_ACCESS_KEY_ID is not" \
  cred AWS_SECRET_ACCESS_KEY="$SECRET"

# --- nothing anywhere ---------------------------------------------------
check_grep "no credentials: ENOCREDS naming profile and both files" \
  "^ERR ENOCREDS\|.*profile 'default'.*$home/.aws/credentials \(missing\).*$home/.aws/config \(missing\)" \
  cred

# --- shared credentials file -------------------------------------------
cat >"$cf" <<EOF
# a comment
; another comment
[default]
aws_access_key_id = AKDEFAULT
aws_secret_access_key = $SECRET

[dev]
  AWS_Access_Key_ID   =   AKDEV
aws_secret_access_key=$SECRET
aws_session_token = $TOKEN
s3 =
    max_concurrent_requests = 20
    aws_access_key_id = AKNESTED

[partial]
aws_access_key_id = AKPARTIAL
EOF
printf '[crlf]\r\naws_access_key_id = AKCRLF\r\naws_secret_access_key = %s\r\n' \
  "$SECRET" >>"$cf"
cat >"$cc" <<EOF
[default]
region = eu-west-3
aws_access_key_id = AKCONFIGDEFAULT
aws_secret_access_key = $SECRET

[profile cfgonly]
region = ap-south-1
aws_access_key_id = AKCFGONLY
aws_secret_access_key = $SECRET

[noprefix]
aws_access_key_id = AKNOPREFIX
aws_secret_access_key = $SECRET

[profile dev]
aws_access_key_id = AKDEVCONFIG
aws_secret_access_key = $SECRET
EOF

check_out "default profile from the credentials file" \
  "AKDEFAULT|profile 'default' in $cf|false" cred "${FILES[@]}"
check_out "AWS_PROFILE selects [dev] (trimmed, any-case key, token)" \
  "AKDEV|profile 'dev' in $cf|true" cred "${FILES[@]}" AWS_PROFILE=dev
check_out "explicit profile beats AWS_PROFILE" \
  "AKCFGONLY|profile 'cfgonly' in $cc|false" \
  cred "${FILES[@]}" AWS_PROFILE=dev -p cfgonly
check_out "environment beats the files" "AKENV|environment|false" \
  cred "${FILES[@]}" AWS_PROFILE=dev AWS_ACCESS_KEY_ID=AKENV \
  AWS_SECRET_ACCESS_KEY="$SECRET"
check_out "credentials file beats config file for the same profile" \
  "AKDEV|profile 'dev' in $cf|true" cred "${FILES[@]}" -p dev
check_out "[profile NAME] in the config file" \
  "AKCFGONLY|profile 'cfgonly' in $cc|false" cred "${FILES[@]}" -p cfgonly
check_grep "[NAME] without 'profile' in the config file is not a profile" \
  "^ERR ENOCREDS\|.*profile 'noprefix'" cred "${FILES[@]}" -p noprefix
check_out "CRLF line endings" "AKCRLF|profile 'crlf' in $cf|false" \
  cred "${FILES[@]}" -p crlf
check_grep "partial profile: EBADCREDS naming profile, file and the missing key" \
  "^ERR EBADCREDS\|.*profile 'partial' in $cf has aws_access_key_id but no aws_secret_access_key" \
  cred "${FILES[@]}" -p partial
check_grep "unknown profile: ENOCREDS naming both files" \
  "^ERR ENOCREDS\|.*profile 'nosuch' has none in $cf or $cc" \
  cred "${FILES[@]}" -p nosuch

# A byte order mark (Windows editors) is ignored.
printf '\xef\xbb\xbf[default]\naws_access_key_id = AKBOM\naws_secret_access_key = %s\n' \
  "$SECRET" >"$tmp/bom"
check_out "UTF-8 byte order mark" "AKBOM|profile 'default' in $tmp/bom|false" \
  cred AWS_SHARED_CREDENTIALS_FILE="$tmp/bom"
# Default locations under $HOME, and "~/" in the variables.
cp "$cf" "$home/.aws/credentials"
check_out "~/.aws/credentials by default" \
  "AKDEFAULT|profile 'default' in $home/.aws/credentials|false" cred
mkdir -p "$home/elsewhere"; cp "$cc" "$home/elsewhere/conf"
check_out "~ expanded in AWS_CONFIG_FILE" \
  "AKCFGONLY|profile 'cfgonly' in $home/elsewhere/conf|false" \
  cred AWS_CONFIG_FILE="~/elsewhere/conf" -p cfgonly
rm "$home/.aws/credentials"
check_out "config [default] when the credentials file is missing" \
  "AKCONFIGDEFAULT|profile 'default' in $cc|false" \
  cred AWS_SHARED_CREDENTIALS_FILE="$tmp/none" AWS_CONFIG_FILE="$cc"

# Malformed files: one-line errors naming file and line, never the value.
printf '[default]\naws_access_key_id = AKBAD\n%s\n' "$SECRET" >"$tmp/bad1"
check_grep "a line without '=': file and line named" \
  "^ERR EBADCREDS\|$tmp/bad1:3: expected 'key = value'" \
  cred AWS_SHARED_CREDENTIALS_FILE="$tmp/bad1"
printf '[default\naws_access_key_id = AK\n' >"$tmp/bad2"
check_grep "an unclosed section header" \
  "^ERR EBADCREDS\|$tmp/bad2:1: section header" \
  cred AWS_SHARED_CREDENTIALS_FILE="$tmp/bad2"
{ printf '[default]\naws_access_key_id = AK\naws_secret_access_key = '
  head -c 300 /dev/zero | tr '\0' 'S'; printf '%s\n' "$SECRET"; } >"$tmp/bad3"
check_grep "a too-long secret: key named, value not shown" \
  "^ERR EBADCREDS\|credentials: the secret access key from profile 'default' in $tmp/bad3 is longer than 127 bytes" \
  cred AWS_SHARED_CREDENTIALS_FILE="$tmp/bad3"
mkdir -p "$tmp/adir"
check_grep "a directory as the credentials file" "^ERR EISDIR\|.*$tmp/adir" \
  cred AWS_SHARED_CREDENTIALS_FILE="$tmp/adir"
check_grep "a too-long environment secret: variable named" \
  "^ERR EBADCREDS\|.*AWS_SECRET_ACCESS_KEY is longer than 127 bytes" \
  cred AWS_ACCESS_KEY_ID=AK AWS_SECRET_ACCESS_KEY="$(head -c 200 /dev/zero | tr '\0' 'x')$SECRET"

# --- the chain feeds the signer: same signature as explicit credentials --
SIGN_LUA='local core = require "tdm.core"
local req = { method = "GET", host = "h", path = "/k", region = "us-east-1",
  when = 1369353600, payload_hash = ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
  profile = os.getenv("T_PROFILE") }
local a, msg = core.sigv4_sign(req)
req.credentials = { access_key = os.getenv("T_AK"), secret_key = os.getenv("T_SK"),
  session_token = os.getenv("T_TOKEN") }
local b = core.sigv4_sign(req)
print(a and a.authorization == b.authorization and "same" or ("differs: " .. tostring(msg)))'
check_out "signing with profile dev (token) equals explicit credentials" \
  "same" run_clean "${FILES[@]}" T_PROFILE=dev T_AK=AKDEV T_SK="$SECRET" \
  T_TOKEN="$TOKEN" -- tdm-lua -e "$SIGN_LUA"
check_out "signing with env credentials equals explicit credentials" \
  "same" run_clean AWS_ACCESS_KEY_ID=AKENV AWS_SECRET_ACCESS_KEY="$SECRET" \
  T_AK=AKENV T_SK="$SECRET" T_TOKEN= -- tdm-lua -e "$SIGN_LUA"
check_grep "signing with no credentials anywhere fails with ENOCREDS" \
  "differs: no AWS credentials" run_clean T_AK=x T_SK=y -- tdm-lua -e "$SIGN_LUA"

# --- region -------------------------------------------------------------
check_out "AWS_REGION first" "eu-north-1|env AWS_REGION" \
  region AWS_REGION=eu-north-1 AWS_DEFAULT_REGION=sa-east-1 "${FILES[@]}"
check_out "then AWS_DEFAULT_REGION" "sa-east-1|env AWS_DEFAULT_REGION" \
  region AWS_DEFAULT_REGION=sa-east-1 "${FILES[@]}"
check_out "then the profile's region in the config file" \
  "ap-south-1|profile 'cfgonly' in $cc" \
  region "${FILES[@]}" T_PROFILE=cfgonly
check_out "default profile's region" "eu-west-3|profile 'default' in $cc" \
  region "${FILES[@]}"
check_out "else the fallback" "us-west-1|default" \
  region AWS_CONFIG_FILE="$tmp/none"

# --- tdm-lua config: key id shown masked, secret never -------------------
check_grep "tdm-lua config shows the masked key id and the source" \
  "credentials +\*\*\*\*ONLY +profile 'cfgonly' in $cc" \
  run_clean "${FILES[@]}" AWS_PROFILE=cfgonly -- tdm-lua config
check_grep "tdm-lua config --json with env credentials" \
  '"credentials":\{[^}]*"source":"environment"' \
  run_clean AWS_ACCESS_KEY_ID=AKENV1234 AWS_SECRET_ACCESS_KEY="$SECRET" \
  AWS_SESSION_TOKEN="$TOKEN" -- tdm-lua config --json

check_grep "tdm-lua config takes the profile's region from the config file" \
  "^region +ap-south-1 +profile 'cfgonly' in $cc" \
  run_clean "${FILES[@]}" AWS_PROFILE=cfgonly -- tdm-lua config
check_grep "AWS_REGION beats the profile's region" \
  "^region +us-east-2 +env AWS_REGION" \
  run_clean "${FILES[@]}" AWS_PROFILE=cfgonly AWS_REGION=us-east-2 -- tdm-lua config

# --- endpoints as the AWS CLI reads them ---------------------------------
cat >"$tmp/epconf" <<EOF
[profile svc]
services = local-stack
endpoint_url = http://127.0.0.1:7003

[services local-stack]
s3 =
  endpoint_url = http://127.0.0.1:7001
sts =
  endpoint_url = http://127.0.0.1:7002

[profile plain]
endpoint_url = http://127.0.0.1:7004
EOF
check_grep "AWS_ENDPOINT_URL_S3 beats AWS_ENDPOINT_URL" \
  "^endpoint +http://127.0.0.1:7000 +env AWS_ENDPOINT_URL_S3$" \
  run_clean AWS_ENDPOINT_URL_S3=http://127.0.0.1:7000 \
  AWS_ENDPOINT_URL=http://127.0.0.1:7999 -- tdm-lua config
check_grep "AWS_ENDPOINT_URL beats the profile" \
  "^endpoint +http://127.0.0.1:7999 +env AWS_ENDPOINT_URL$" \
  run_clean AWS_CONFIG_FILE="$tmp/epconf" AWS_PROFILE=svc \
  AWS_ENDPOINT_URL=http://127.0.0.1:7999 -- tdm-lua config
check_grep "the profile's services section, s3 part" \
  "^endpoint +http://127.0.0.1:7001 +services 'local-stack' in $tmp/epconf$" \
  run_clean AWS_CONFIG_FILE="$tmp/epconf" AWS_PROFILE=svc -- tdm-lua config
check_grep "the profile's endpoint_url" \
  "^endpoint +http://127.0.0.1:7004 +profile 'plain' in $tmp/epconf$" \
  run_clean AWS_CONFIG_FILE="$tmp/epconf" AWS_PROFILE=plain -- tdm-lua config
check_grep "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS drops the profile's endpoints" \
  "^endpoint +[^h]* +default$" \
  run_clean AWS_CONFIG_FILE="$tmp/epconf" AWS_PROFILE=plain \
  AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true -- tdm-lua config

# --- the leak check over everything printed above -----------------------
n=$(grep -c -F -e "$SECRET" -e "$TOKEN" -e "FAKEsecret" -e "FAKEsession" "$ALL")
[ "$n" -eq 0 ] && pass || fail "secret or token printed $n times: $(grep -F -e FAKEsecret -e FAKEsession "$ALL" | head -3)"
lines=$(wc -l <"$ALL")
[ "$lines" -gt 30 ] && pass || fail "leak check saw only $lines lines of output"

finish
