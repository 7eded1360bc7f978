--- tdm-lua config: print the resolved settings and where each came from.
local cli = require "tdm.cli"
local core = require "tdm.core"

-- The credentials line: the access key id's last 4 characters and the
-- source, never the secret. Absent credentials are not an error here;
-- a source that is configured but fails (STS refusing the role, an
-- expired SSO token) is shown with its reason.
local function credentials_row(cfg)
  if not core.credentials then return nil end
  local ok, cred, msg, code = pcall(core.credentials, cfg.profile)
  if not ok or not cred then
    if ok and code ~= "ENOCREDS" then
      return { "credentials", "(failed)", tostring(msg) }
    end
    return { "credentials", "(none found)", "" }
  end
  local id = cred.access_key_id or ""
  local shown = #id > 4 and ("****" .. id:sub(-4)) or "****"
  return { "credentials", shown, cred.source or "" }
end

-- The settings table of the help text: key, environment, default.
local function settings_table()
  local lines = { "", "settings (config file key, environment variable, default):" }
  local keys, width = core.config_keys(), 0
  for _, k in ipairs(keys) do width = math.max(width, #table.concat(k.env, ", ")) end
  for _, k in ipairs(keys) do
    local def = k.default ~= "" and k.default or "-"
    if k.name == "public_url_base" then def = "https://{bucket}.s3.{region}.amazonaws.com" end
    lines[#lines + 1] = string.format("  %-20s %-" .. width .. "s  %s", k.name,
                                      table.concat(k.env, ", "), def)
  end
  return table.concat(lines, "\n")
end

return cli.command {
  name = "config",
  summary = "print the resolved settings and where each came from",
  usage = "tdm-lua config [--json] [options]",
  description = [[
Print every setting tdm uses, its value and its source (default, config
file, environment, command line). Secrets (the API token, the AWS secret
key and session token) are never shown. Settings come from, in order of
precedence: command-line options, environment variables, the config file
($TDM_CONFIG, else ./tdm.conf: "key = value" lines), defaults.
Values in tdm.conf are written unquoted; a quoted value, a bucket name
S3 would refuse or a malformed endpoint is refused (exit 2) before any
request, naming the file and line. AWS credentials are resolved as the
AWS CLI does (docs/credentials.md); this prints which source was used,
never the secret.]] .. settings_table(),
  options = { { "--json", "json", "flag", "print one JSON object" } },
  run = function(opts)
    local cfg = cli.config(opts)  -- refuses bad values (exit 2)
    local rows = cfg:rows()
    local cred = credentials_row(cfg)
    if cred then rows[#rows + 1] = cred end
    if opts.json then
      -- Typed: numbers as numbers, unset as null, secrets masked.
      local cjson = require "cjson"
      local typed, out = cfg:typed(), {}
      for _, r in ipairs(rows) do
        local v = typed[r[1]]
        if r[1] == "credentials" then v = r[2] ~= "(none found)" and r[2] or nil end
        out[r[1]] = { value = v == nil and cjson.null or v, source = r[3] }
      end
      print(cjson.encode(out))
    else
      for _, r in ipairs(rows) do
        print(string.format("%-20s %-44s %s", r[1], r[2], r[3]))
      end
    end
    return cli.EXIT.OK
  end,
}
