#!/usr/bin/env bash
# test_credentials_chain.sh -- every credential provider of botocore's
# chain, each checked against botocore itself: loopback stand-ins for
# IMDSv2, the container endpoint, STS and the SSO portal
# (tests/lib/cred_standin.py), a credential_process script, the AWS CLI's
# SSO token cache; tdm (core.credentials) and botocore
# (tests/oracle/botocore_creds.py) read the same environment and files
# and must print the same "ACCESS_KEY_ID|method". Then precedence between
# providers, failures, and that no secret is ever printed.
. "$(dirname "$0")/../lib/e2e.sh"
ALL="$tmp/all-output"; : >"$ALL"
home="$tmp/home"; mkdir -p "$home/.aws/sso/cache"
SECRET="FAKEsecretKEYnever/shown+0123456789abcdef"

LOG="$tmp/standin.log"
python3 tests/lib/cred_standin.py --port-file "$tmp/port" --log "$LOG" \
  --container-token "CTOKENvalue" --sso-token "SSOTOKENvalue" &
STANDIN=$!
at_exit 'kill $STANDIN 2>/dev/null'
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.05; done
BASE="http://127.0.0.1:$(cat "$tmp/port")"
CLOSED="http://127.0.0.1:$(free_port)"

# The environment of every case: only these variables (plus PATH, Lua
# paths, HOME=$home), never the real instance metadata or the user's files.
clean_env() {
  printf '%s\0' PATH="$PATH" HOME="$home" LUA_PATH="${LUA_PATH:-}" \
    LUA_CPATH="${LUA_CPATH:-}" TDM_TEST_ROOT="${TDM_TEST_ROOT:-}" \
    AWS_CONFIG_FILE="$tmp/none" AWS_SHARED_CREDENTIALS_FILE="$tmp/none" \
    AWS_EC2_METADATA_DISABLED=true "$@"
}
# run_clean VAR=VALUE... -- CMD...: CMD in that environment; output is
# also kept for the leak check.
run_clean() {
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  local all; mapfile -d '' all < <(clean_env "${envs[@]}")
  env -i "${all[@]}" "$@" 2>&1 | tee -a "$ALL"
}
TDM_LUA='local c, msg, code = require("tdm.core").credentials()
if c then print(c.access_key_id .. "|" .. c.method)
else print("ERR " .. code .. "|" .. msg) end'
tdm_cred() { run_clean "$@" -- tdm-lua -e "$TDM_LUA"; }
boto_cred() { run_clean "$@" -- python3 tests/oracle/botocore_creds.py; }

# same NAME METHOD VAR=VALUE...: tdm and botocore resolve the same key,
# by the provider METHOD (botocore's name). tdm runs now; botocore runs
# once for all cases at the end (same_check), python's start-up being
# most of its cost.
CASES=() NAMES=() WANT=() TDM=()
same() {
  local name=$1 method=$2; shift 2
  local f="$tmp/case.${#CASES[@]}"
  clean_env "$@" >"$f"
  CASES+=("$f") NAMES+=("$name") WANT+=("$method") TDM+=("$(tdm_cred "$@")")
}
same_check() {
  local i=0 b
  while IFS= read -r b; do
    local t=${TDM[$i]}
    if [ "$t" == "$b" ] && [ "${t#*|}" == "${WANT[$i]}" ]; then pass
    else fail "${NAMES[$i]}: expected tdm = botocore = 'KEY|${WANT[$i]}', got tdm '$t', botocore '$b'"; fi
    i=$((i + 1))
  done < <(python3 tests/oracle/botocore_creds.py "${CASES[@]}" | tee -a "$ALL")
  [ "$i" -eq "${#CASES[@]}" ] && pass || fail "botocore answered $i of ${#CASES[@]} cases"
}
# tdm_is NAME REGEX VAR=VALUE...: tdm alone (botocore 1.29 lacks it).
tdm_is() {
  local name=$1 re=$2; shift 2
  check_grep "$name" "$re" tdm_cred "$@"
}

cf="$tmp/credentials" cc="$tmp/config"
FILES=(AWS_SHARED_CREDENTIALS_FILE="$cf" AWS_CONFIG_FILE="$cc")
printf 'eyJhbGciOiJSUzI1NiJ9.web-identity-token.sig\n' >"$tmp/webtoken"
cat >"$tmp/process.sh" <<EOS
#!/bin/sh
# a credential_process: prints the AWS CLI's JSON (arguments echoed into
# the key so the test sees they were split right)
printf '{"Version": 1, "AccessKeyId": "AKPROC%s%s", "SecretAccessKey": "$SECRET", "SessionToken": "STANDINtokenPROC", "Expiration": "2099-01-01T00:00:00Z"}\n' "\$1" "\$2"
EOS
chmod +x "$tmp/process.sh"
cat >"$tmp/badprocess.sh" <<'EOS'
#!/bin/sh
echo '{"Version": 2, "AccessKeyId": "AK", "SecretAccessKey": "S"}'
EOS
chmod +x "$tmp/badprocess.sh"
cat >"$cf" <<EOF2
[default]
aws_access_key_id = AKFILEDEFAULT
aws_secret_access_key = $SECRET

[base]
aws_access_key_id = AKBASE
aws_secret_access_key = $SECRET

[self]
aws_access_key_id = AKSELF
aws_secret_access_key = $SECRET
role_arn = arn:aws:iam::123456789012:role/self
source_profile = self
EOF2
cat >"$cc" <<EOF2
[profile cfgkeys]
aws_access_key_id = AKCONFIGKEYS
aws_secret_access_key = $SECRET

[profile role]
role_arn = arn:aws:iam::123456789012:role/tdm-role
source_profile = base
role_session_name = tdm-test
external_id = ext-42

[profile chained]
role_arn = arn:aws:iam::123456789012:role/second
source_profile = role

[profile fromimds]
role_arn = arn:aws:iam::123456789012:role/from-imds
credential_source = Ec2InstanceMetadata

[profile fromecs]
role_arn = arn:aws:iam::123456789012:role/from-ecs
credential_source = EcsContainer

[profile webprof]
web_identity_token_file = $tmp/webtoken
role_arn = arn:aws:iam::123456789012:role/web-from-profile
role_session_name = webprof

[profile proc]
credential_process = "$tmp/process.sh" 'A B' C

[profile proc_and_keys]
credential_process = $tmp/process.sh X Y
aws_access_key_id = AKCONFIGLOSES
aws_secret_access_key = $SECRET

[profile srcproc]
role_arn = arn:aws:iam::123456789012:role/from-process
source_profile = proc_and_keys

[profile ssonew]
sso_session = corp
sso_account_id = 111122223333
sso_role_name = ReadOnly

[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
sso_region = eu-west-1
sso_registration_scopes = sso:account:access

[profile ssolegacy]
sso_start_url = https://legacy.awsapps.com/start
sso_region = us-east-2
sso_account_id = 444455556666
sso_role_name = Admin

[profile ssoexpired]
sso_start_url = https://expired.awsapps.com/start
sso_region = us-east-2
sso_account_id = 444455556666
sso_role_name = Admin

[profile ssowrong]
sso_start_url = https://wrong.awsapps.com/start
sso_region = us-east-2
sso_account_id = 444455556666
sso_role_name = Admin

[profile denied]
role_arn = arn:aws:iam::123456789012:role/denied
source_profile = base

[profile loop1]
role_arn = arn:aws:iam::123456789012:role/l1
source_profile = loop2

[profile loop2]
role_arn = arn:aws:iam::123456789012:role/l2
source_profile = loop1

[profile rolesvc]
role_arn = arn:aws:iam::123456789012:role/tdm-role
source_profile = base
services = via-standin

[services via-standin]
sts =
  endpoint_url = $BASE

[profile nosource]
role_arn = arn:aws:iam::123456789012:role/x
EOF2
# The AWS CLI's SSO token cache: sha1(session name) / sha1(start URL).
sso_cache() {
  local key=$1 exp=$2
  local f="$home/.aws/sso/cache/$(printf '%s' "$key" | sha1sum | cut -c1-40).json"
  printf '{"startUrl": "x", "region": "eu-west-1", "accessToken": "%s", "expiresAt": "%s"}\n' "${3:-SSOTOKENvalue}" "$exp" >"$f"
}
sso_cache corp 2099-01-01T00:00:00Z
sso_cache https://legacy.awsapps.com/start 2099-01-01T00:00:00UTC
sso_cache https://expired.awsapps.com/start 2001-01-01T00:00:00Z
sso_cache https://wrong.awsapps.com/start 2099-01-01T00:00:00Z SSOTOKENrevoked

# botocore 1.29 signs STS calls only with a region set (and does not
# read AWS_REGION)
STS=(AWS_ENDPOINT_URL_STS="$BASE" AWS_DEFAULT_REGION=us-east-1)
IMDS=(AWS_EC2_METADATA_DISABLED=false AWS_EC2_METADATA_SERVICE_ENDPOINT="$BASE/")
CONT=(AWS_CONTAINER_CREDENTIALS_FULL_URI="$BASE/container/v2/creds"
      AWS_CONTAINER_AUTHORIZATION_TOKEN=CTOKENvalue)
WEB=(AWS_WEB_IDENTITY_TOKEN_FILE="$tmp/webtoken"
     AWS_ROLE_ARN=arn:aws:iam::123456789012:role/web AWS_ROLE_SESSION_NAME=pod-1)

# --- each provider, tdm = botocore -------------------------------------
same "environment" env AWS_ACCESS_KEY_ID=AKENV AWS_SECRET_ACCESS_KEY="$SECRET"
same "web identity from the environment" assume-role-with-web-identity \
  "${WEB[@]}" "${STS[@]}"
same "web identity from the profile" assume-role-with-web-identity \
  "${FILES[@]}" "${STS[@]}" AWS_PROFILE=webprof
same "credentials file" shared-credentials-file "${FILES[@]}"
same "config file keys" config-file "${FILES[@]}" AWS_PROFILE=cfgkeys
same "role_arn + source_profile (AssumeRole signed with the source's key)" \
  assume-role "${FILES[@]}" "${STS[@]}" AWS_PROFILE=role
check_grep "the AssumeRole was signed with profile base's key, session and external id passed" \
  "sts AssumeRole role=arn:aws:iam::123456789012:role/tdm-role source=AKBASE session=tdm-test ext=ext-42" \
  cat "$LOG"
same "chained roles (role -> role -> static)" assume-role \
  "${FILES[@]}" "${STS[@]}" AWS_PROFILE=chained
same "a profile that is its own source_profile" assume-role \
  "${FILES[@]}" "${STS[@]}" AWS_PROFILE=self
same "credential_source = Ec2InstanceMetadata" assume-role \
  "${FILES[@]}" "${STS[@]}" "${IMDS[@]}" AWS_PROFILE=fromimds
same "credential_source = EcsContainer" assume-role \
  "${FILES[@]}" "${STS[@]}" "${CONT[@]}" AWS_PROFILE=fromecs
same "credential_process (quoted words)" custom-process \
  "${FILES[@]}" AWS_PROFILE=proc
tdm_is "credential_process got its words split as a shell would" \
  "^AKPROCA BC\|custom-process$" "${FILES[@]}" AWS_PROFILE=proc
same "a role whose source_profile uses credential_process" assume-role \
  "${FILES[@]}" "${STS[@]}" AWS_PROFILE=srcproc
same "SSO with sso_session (token cache by session name)" sso \
  "${FILES[@]}" AWS_ENDPOINT_URL_SSO="$BASE" AWS_PROFILE=ssonew
same "legacy SSO (token cache by start URL)" sso \
  "${FILES[@]}" AWS_ENDPOINT_URL_SSO="$BASE" AWS_PROFILE=ssolegacy
same "container endpoint, FULL_URI + authorization token" container-role \
  "${CONT[@]}"
same "EC2 instance metadata (IMDSv2)" iam-role "${IMDS[@]}"
check_grep "IMDSv2: the session token was fetched before the role" \
  "imds-token" cat "$LOG"

# Newer settings botocore 1.29 does not know; the stand-in checks them.
printf 'CTOKENvalue\n' >"$tmp/ctoken"
ecs_key=$(tdm_cred "${CONT[@]}")
tdm_is "container: AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (same key as the token)" \
  "^${ecs_key%|*}\|container-role$" \
  AWS_CONTAINER_CREDENTIALS_FULL_URI="$BASE/container/v2/creds" \
  AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="$tmp/ctoken"
tdm_is "container: RELATIVE_URI goes to 169.254.170.2 (through http_proxy)" \
  "^ASIAECS.*\|container-role$" \
  AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/container/v2/rel http_proxy="$BASE" \
  AWS_CONTAINER_AUTHORIZATION_TOKEN=CTOKENvalue
check_grep "container: the relative URI was asked of 169.254.170.2" \
  "container-creds 169.254.170.2 " cat "$LOG"

tdm_is "STS endpoint from the profile's services section" \
  "^ASIAROLE.*\|assume-role$" "${FILES[@]}" AWS_PROFILE=rolesvc

# Which AWS endpoint is chosen without an override: the stand-in as
# HTTPS_PROXY records the host of the tunnel asked for (and refuses it).
# connects_to NAME HOST VAR=VALUE...
connects_to() {
  local name=$1 host=$2; shift 2
  : >"$LOG"
  tdm_cred HTTPS_PROXY="$BASE" "$@" >/dev/null
  check_out "$name" "connect $host:443" grep '^connect ' "$LOG"
}
connects_to "STS: regional endpoint by default" sts.eu-west-1.amazonaws.com \
  "${FILES[@]}" AWS_PROFILE=role AWS_DEFAULT_REGION=eu-west-1
connects_to "STS: legacy mode, a region that used the global endpoint" \
  sts.amazonaws.com "${FILES[@]}" AWS_PROFILE=role AWS_REGION=us-west-2 \
  AWS_STS_REGIONAL_ENDPOINTS=legacy
connects_to "STS: legacy mode, a newer region stays regional" \
  sts.eu-south-1.amazonaws.com "${FILES[@]}" AWS_PROFILE=role \
  AWS_REGION=eu-south-1 AWS_STS_REGIONAL_ENDPOINTS=legacy
connects_to "STS: no region, the global endpoint" sts.amazonaws.com \
  "${FILES[@]}" AWS_PROFILE=role
connects_to "SSO: the portal of sso_region" portal.sso.eu-west-1.amazonaws.com \
  "${FILES[@]}" AWS_PROFILE=ssonew
S3_LIST='local c = assert(require("tdm.s3").client())
print(select(2, c:list_page("x/", 1)))'
: >"$LOG"
run_clean HTTPS_PROXY="$BASE" AWS_ACCESS_KEY_ID=AKENV AWS_SECRET_ACCESS_KEY="$SECRET" \
  -- tdm-lua -e "$S3_LIST" >/dev/null
check_out "S3 requests go through HTTPS_PROXY" \
  "connect story-boards-assets.s3.us-west-1.amazonaws.com:443" \
  sh -c 'grep "^connect " "$1" | sort -u' _ "$LOG"
: >"$LOG"
run_clean HTTPS_PROXY="$BASE" NO_PROXY=.amazonaws.com AWS_ACCESS_KEY_ID=AKENV \
  AWS_SECRET_ACCESS_KEY="$SECRET" -- tdm-lua -e "$S3_LIST" >/dev/null
check_out "NO_PROXY keeps them off the proxy" "0" grep -c '^connect ' "$LOG"
# s3_host WANT VAR=VALUE...: the S3 host a client tunnels to.
s3_host() {
  local want=$1; shift
  : >"$LOG"
  run_clean HTTPS_PROXY="$BASE" AWS_ACCESS_KEY_ID=AKENV \
    AWS_SECRET_ACCESS_KEY="$SECRET" "$@" -- tdm-lua -e "$S3_LIST" >/dev/null
  check_out "S3 host with $*" "connect $want:443" \
    sh -c 'grep "^connect " "$1" | sort -u' _ "$LOG"
}
printf '[profile dual]\nuse_dualstack_endpoint = true\n' >"$tmp/dualconf"
s3_host story-boards-assets.s3-fips.us-west-1.amazonaws.com \
  AWS_USE_FIPS_ENDPOINT=true
s3_host story-boards-assets.s3.dualstack.eu-west-1.amazonaws.com \
  AWS_CONFIG_FILE="$tmp/dualconf" AWS_PROFILE=dual AWS_REGION=eu-west-1
s3_host story-boards-assets.s3-fips.dualstack.us-west-1.amazonaws.com \
  AWS_USE_FIPS_ENDPOINT=true AWS_USE_DUALSTACK_ENDPOINT=TRUE

# --- precedence, as botocore orders them ---------------------------------
same "environment beats web identity" env \
  AWS_ACCESS_KEY_ID=AKENV AWS_SECRET_ACCESS_KEY="$SECRET" "${WEB[@]}" "${STS[@]}"
same "environment beats the profile" env "${FILES[@]}" AWS_PROFILE=role \
  AWS_ACCESS_KEY_ID=AKENV AWS_SECRET_ACCESS_KEY="$SECRET" "${STS[@]}"
same "a role profile beats web identity" assume-role \
  "${FILES[@]}" AWS_PROFILE=role "${WEB[@]}" "${STS[@]}"
same "web identity beats the credentials file" assume-role-with-web-identity \
  "${FILES[@]}" "${WEB[@]}" "${STS[@]}"
same "SSO beats ... the credentials file has no [ssonew]; process beats config keys" \
  custom-process "${FILES[@]}" AWS_PROFILE=proc_and_keys
same "the credentials file beats the container" shared-credentials-file \
  "${FILES[@]}" "${CONT[@]}" "${IMDS[@]}"
same "the container beats instance metadata" container-role \
  "${CONT[@]}" "${IMDS[@]}"

# --- failures: one line, the reason, never a secret ----------------------
check_out "nothing anywhere: botocore finds none" NONE boto_cred \
  AWS_EC2_METADATA_DISABLED=false AWS_EC2_METADATA_SERVICE_ENDPOINT="$CLOSED"
tdm_is "nothing anywhere: ENOCREDS listing where it looked" \
  "^ERR ENOCREDS\|no AWS credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set, AWS_WEB_IDENTITY_TOKEN_FILE is not set, profile 'default' has none in $tmp/none \(missing\) or $tmp/none \(missing\), AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/FULL_URI are not set, EC2 instance metadata \(.*$CLOSED" \
  AWS_EC2_METADATA_DISABLED=false AWS_EC2_METADATA_SERVICE_ENDPOINT="$CLOSED"
tdm_is "instance metadata disabled is said so" \
  "^ERR ENOCREDS\|.*EC2 instance metadata \(disabled by AWS_EC2_METADATA_DISABLED\)$"
check_grep "the CLI exits 2 with the same line when no credentials exist" \
  "^tdm-lua: .*no AWS credentials: .*EC2 instance metadata.*; exit 2$" \
  sh -c 'run() { "$@"; echo "; exit $?"; }; run "$@" 2>&1 | tr -d "\n"' _ \
  env -i PATH="$PATH" HOME="$home" AWS_CONFIG_FILE="$tmp/none" \
  AWS_SHARED_CREDENTIALS_FILE="$tmp/none" AWS_EC2_METADATA_DISABLED=true \
  TDM_DATA_ROOT="$tmp/data" tdm-lua pull-all
tdm_is "STS refusing the role: its code and message" \
  "^ERR ESTS\|STS AssumeRole arn:aws:iam::123456789012:role/denied: AccessDenied: User is not authorized" \
  "${FILES[@]}" "${STS[@]}" AWS_PROFILE=denied
tdm_is "STS unreachable: the URL and curl's reason" \
  "^ERR EHTTP\|STS AssumeRole: $CLOSED" "${FILES[@]}" AWS_ENDPOINT_URL_STS="$CLOSED" AWS_PROFILE=role
tdm_is "role_arn without a source" \
  "^ERR EBADCREDS\|profile 'nosource' has role_arn but neither source_profile nor credential_source" \
  "${FILES[@]}" AWS_PROFILE=nosource
tdm_is "a source_profile loop" "^ERR EBADCREDS\|.*source_profile chain longer than" \
  "${FILES[@]}" "${STS[@]}" AWS_PROFILE=loop1
check_out "a source_profile loop: botocore refuses too" \
  "ERROR|InfiniteLoopConfigError" boto_cred "${FILES[@]}" "${STS[@]}" AWS_PROFILE=loop1
tdm_is "web identity token file without a role" \
  "^ERR EBADCREDS\|web identity: a token file is configured" \
  AWS_WEB_IDENTITY_TOKEN_FILE="$tmp/webtoken"
tdm_is "web identity token file missing" \
  "^ERR ENOENT\|web identity: cannot read token file $tmp/nope" \
  AWS_WEB_IDENTITY_TOKEN_FILE="$tmp/nope" AWS_ROLE_ARN=arn:aws:iam::1:role/r "${STS[@]}"
tdm_is "expired SSO token: run aws sso login" \
  "^ERR ENOCREDS\|SSO profile 'ssoexpired': the token in .* has expired; run aws sso login --profile ssoexpired" \
  "${FILES[@]}" AWS_ENDPOINT_URL_SSO="$BASE" AWS_PROFILE=ssoexpired
tdm_is "SSO portal refusing the token" \
  "^ERR ENOCREDS\|SSO profile 'ssowrong': GetRoleCredentials for role Admin in account 444455556666: HTTP 401; run aws sso login$" \
  "${FILES[@]}" AWS_ENDPOINT_URL_SSO="$BASE" AWS_PROFILE=ssowrong
printf '[profile badproc]\ncredential_process = %s\n[profile noproc]\ncredential_process = %s/nonexistent-helper\n' \
  "$tmp/badprocess.sh" "$tmp" >"$tmp/procconf"
tdm_is "credential_process with an unknown Version" \
  "^ERR EBADCREDS\|credential_process of profile 'badproc': .*Version" \
  AWS_CONFIG_FILE="$tmp/procconf" AWS_PROFILE=badproc
printf '#!/bin/sh\nhead -c 100000 /dev/zero | tr "\\0" x 2>/dev/null\n' >"$tmp/bigprocess.sh"
chmod +x "$tmp/bigprocess.sh"
printf '[profile bigproc]\ncredential_process = %s\n' "$tmp/bigprocess.sh" >>"$tmp/procconf"
tdm_is "credential_process printing too much" \
  "^ERR EBADCREDS\|credential_process of profile 'bigproc': .* wrote more than 65536 bytes" \
  AWS_CONFIG_FILE="$tmp/procconf" AWS_PROFILE=bigproc
tdm_is "credential_process that cannot run" \
  "^ERR ENOENT\|credential_process of profile 'noproc': cannot run" \
  AWS_CONFIG_FILE="$tmp/procconf" AWS_PROFILE=noproc
tdm_is "container FULL_URI to a host that is not allowed" \
  "^ERR EBADCREDS\|container credentials: AWS_CONTAINER_CREDENTIALS_FULL_URI must be https" \
  AWS_CONTAINER_CREDENTIALS_FULL_URI=http://example.com/creds
tdm_is "container endpoint refusing the token" \
  "^ERR EBADCREDS\|container credentials: .* answered HTTP 401" \
  AWS_CONTAINER_CREDENTIALS_FULL_URI="$BASE/container/v2/creds" \
  AWS_CONTAINER_AUTHORIZATION_TOKEN=wrong

check_grep "tdm-lua config names a configured source that fails, and why" \
  "^credentials +\(failed\) +STS AssumeRole arn:aws:iam::123456789012:role/denied: AccessDenied" \
  run_clean "${FILES[@]}" "${STS[@]}" AWS_PROFILE=denied -- tdm-lua config
check_grep "tdm-lua config shows credentials from the chain (masked key, source)" \
  "^credentials +\*\*\*\*[0-9A-F]{4} +profile 'role': role arn:aws:iam::123456789012:role/tdm-role$" \
  run_clean "${FILES[@]}" "${STS[@]}" AWS_PROFILE=role -- tdm-lua config

same_check

# --- the leak check over everything printed above -----------------------
n=$(grep -c -e STANDINsecret -e STANDINtoken -e FAKEsecret -e SSOTOKEN -e CTOKENvalue -e web-identity-token "$ALL")
[ "$n" -eq 0 ] && pass || fail "a secret or token was printed $n times: $(grep -e STANDIN -e FAKEsecret -e TOKENvalue "$ALL" | head -3)"
finish
