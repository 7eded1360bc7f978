--- gen-man.lua -- write the tdm-lua(1) man page from the program's own
-- help texts (`tdm-lua --help` and `tdm-lua COMMAND --help`), so the two
-- can never disagree.
--
--   tdm-lua scripts/gen-man.lua ./tdm-lua > build/tdm-lua.1
local exe = assert(arg[1], "usage: gen-man.lua PATH-TO-TDM-LUA")
local version = require("tdm").version

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  p:close()
  return out
end

-- Escape text for troff: backslashes, leading dots/quotes, hyphens.
local function esc(line)
  line = line:gsub("\\", "\\e"):gsub("%-", "\\-")
  if line:match("^[.']") then line = "\\&" .. line end
  return line
end

local function verbatim(text)
  local out = { ".nf" }
  for line in (text .. "\n"):gmatch("(.-)\n") do out[#out + 1] = esc(line) end
  out[#out + 1] = ".fi"
  return table.concat(out, "\n")
end

local main_help = run(exe .. " --help")
local names = {}
for line in (main_help:match("commands:\n(.-)\n\n") or ""):gmatch("[^\n]+") do
  local name = line:match("^  ([%w][%w%-_]*)%s")
  if name then names[#names + 1] = name end
end

local out = {
  string.format('.TH TDM-LUA 1 "" "tdm %s" "User Commands"', version),
  ".SH NAME",
  "tdm\\-lua \\- keep AI actors' training images accounted for between local disks and S3",
  ".SH SYNOPSIS",
  ".B tdm\\-lua",
  "[\\fIoptions\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR...]",
  ".br",
  ".B tdm\\-lua",
  "[\\fIoptions\\fR] \\fISCRIPT.lua\\fR [\\fIARGS\\fR...]",
  ".SH DESCRIPTION",
  verbatim(main_help),
  ".SH COMMANDS",
}
for _, name in ipairs(names) do
  out[#out + 1] = ".SS " .. esc(name)
  out[#out + 1] = verbatim(run(exe .. " " .. name .. " --help"))
end
-- EXAMPLES, FILES, ENVIRONMENT: the settings table comes from the core
-- (tdm.core.config_keys), the same one `tdm-lua config --help` prints.
local function section(title, text) out[#out + 1] = ".SH " .. title; out[#out + 1] = verbatim(text) end
section("EXAMPLES", [[
tdm-lua config                        settings in force and their sources
tdm-lua sync-manifests --dry-run      what a manifest refresh would change
tdm-lua pull-all -q                   download everything missing, verified
tdm-lua --profile lab --endpoint-url http://127.0.0.1:4568 audit
tdm-lua pull 42 --repair              one actor; S3 wins on out_of_sync
tdm-lua push 0042_european_30_male    one actor up, Content-MD5 checked
tdm-lua pull-all --shard 2/4          this host's quarter of the actors
JOB_COMPLETION_INDEX=1 TDM_SHARDS=4 tdm-lua pull-all   the same, as a k8s Job
tdm-lua audit --json | jq -c 'select(.kind)'           findings for machines
tdm-lua serve --listen 127.0.0.1:8080 the HTTP API
tdm-lua report.lua                    an ops script with tdm loaded]])
section("FILES", [[
./tdm.conf, $TDM_CONFIG      settings, "key = value" lines (unquoted)
~/.aws/config, ~/.aws/credentials
                             AWS profiles (region, endpoint_url, keys,
                             role_arn, credential_process, sso_session)
DATA/actors/NAME/training_data/NAME_N.jpg
                             the training images (DATA: --data-root,
                             TDM_DATA_ROOT, default ./data)
DATA/actor_manifests/ID_manifest.json
                             one manifest per actor (ID: 0042)
DATA/actor_manifests/ID_manifest.json.lock, .claim
                             the manifest's lock and a run's claim (flock;
                             released when the process ends)
share/bash-completion/completions/tdm-lua
                             bash completion (commands, options, actors)]])
local env_lines = { "setting              environment variable(s)              default" }
for _, k in ipairs(require("tdm.core").config_keys()) do
  local def = k.default ~= "" and k.default or "-"
  if k.name == "public_url_base" then def = "https://{bucket}.s3.{region}.amazonaws.com" end
  env_lines[#env_lines + 1] = string.format("%-20s %-36s %s", k.name, table.concat(k.env, ", "), def)
end
for _, l in ipairs({
  "",
  "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE,",
  "AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE, AWS_ROLE_ARN,",
  "AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ENDPOINT_URL_S3: credentials and",
  "endpoints as the AWS CLI reads them.",
  "TDM_SHARD=K/N; JOB_COMPLETION_INDEX with TDM_SHARDS=N (Kubernetes",
  "Indexed Job); SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_MIN, _STEP,",
  "_COUNT (Slurm job array): the shard of a run when --shard is not given.",
}) do env_lines[#env_lines + 1] = l end
section("ENVIRONMENT", table.concat(env_lines, "\n"))
out[#out + 1] = ".SH EXIT STATUS"
out[#out + 1] = verbatim("0 done, 1 findings or partial failure, 2 usage or configuration error,\n130 interrupted (see each command's help)")
out[#out + 1] = ".SH SEE ALSO\nREADME.md and docs/ in the tdm sources; lua5.4(1)"
io.write(table.concat(out, "\n"), "\n")
