--- tdm.config([overrides]) -> the resolved settings, or nil, message,
-- "ECONFIG".
--
-- Resolution order: overrides given here > environment > config file
-- ($TDM_CONFIG, else ./tdm.conf) > defaults; the C core does the resolving
-- (include/tdm/config.h) so C embedders get the same answers.
--
--   local cfg = assert(tdm.config { data_root = "/srv/data" })
--   cfg.data_root, cfg.bucket, cfg.prefix, cfg.region, cfg.public_url_base
--   cfg.jobs (number), cfg:source("region") --> "env AWS_REGION"
--   tostring(cfg)  -- every setting and its source, secrets masked
--   cfg:typed()    -- { name = value }: numbers as numbers, unset as nil
--
-- A bad config file or value is the world's failure: nil, message,
-- "ECONFIG" (the message names the file and line where there is one).
-- An unknown override name is the caller's mistake and raises.
local core = require "tdm.core"

local numeric = { jobs = true, lock_timeout = true,
                  multipart_threshold = true, api_max_upload = true }

local Config = {}
Config.__name = "tdm.Config"

-- public_url_base, when not set, is derived on first use from the
-- bucket's own region (tdm.s3.bucket_region: asked of S3 once and
-- remembered under the data root), never from the signing region.
-- Until the region is known (learned from S3 or remembered) the URL is
-- built on the configured region each time and not kept, so a run that
-- learns the region later builds its URLs on the learned one.
function Config.__index(self, k)
  if k == "public_url_base" and rawget(self, "_derive_url_base") then
    local region, known = require("tdm.s3").bucket_region(self)
    local v = string.format("https://%s.s3.%s.amazonaws.com", self.bucket,
                            region)
    if known ~= nil then
      rawset(self, "_derive_url_base", nil)
      rawset(self, "public_url_base", v)
    end
    return v
  end
  return Config[k]
end

--- The error object config.resolve raises: a table with `message` and
-- `code` ("ECONFIG") that prints as its message (also in a stock lua5.4).
local ConfigError = { __name = "tdm.ConfigError" }
ConfigError.__index = ConfigError
function ConfigError.__tostring(e) return e.message end

--- Where setting `name` came from ("default", "env X", "file F:N",
-- "argument").
function Config:source(name)
  return rawget(self, "_sources")[name]
end

--- The settings as { name = value } with numbers as numbers; unset
-- settings are absent (null in JSON) and secrets are "********".
function Config:typed()
  local out = {}
  for _, name in ipairs(rawget(self, "_order")) do
    local v = self[name]
    if v ~= nil and rawget(self, "_secrets")[name] then v = "********" end
    out[name] = v
  end
  return out
end

--- The settings in display order, as { name, shown value, source } rows;
-- secrets are shown as "********" (or "(unset)").
function Config:rows()
  local rows = {}
  for _, name in ipairs(rawget(self, "_order")) do
    local v = self[name]
    local shown
    if rawget(self, "_secrets")[name] then
      shown = v and "********" or "(unset)"
    else
      shown = v == nil and "(unset)" or tostring(v)
    end
    rows[#rows + 1] = { name, shown, self:source(name) }
  end
  return rows
end

function Config:__tostring()
  local out = {}
  for _, r in ipairs(self:rows()) do
    out[#out + 1] = string.format("%-20s %-48s %s", r[1], r[2], r[3])
  end
  return table.concat(out, "\n")
end

-- "file F:N" sources read as "F:N" in messages; others as "(SOURCE)".
local function where(self, name)
  local src = self._sources[name] or "?"
  local file = src:match("^file (.*)$")
  if file then return file .. ": " end
  return ""
end

local function describe(self, name)
  local src = self._sources[name] or "?"
  if src:match("^file ") then return name end
  return string.format("%s (%s)", name, src)
end


--- Why `name` is not a valid S3 bucket name (S3's general-purpose bucket
-- naming rules), or nil when it is.
function Config.bucket_problem(name)
  if #name < 3 or #name > 63 then
    return "must be 3 to 63 characters long"
  elseif name:find("[^a-z0-9.%-]") then
    return "may contain only lowercase letters, digits, '.' and '-'"
  elseif not name:match("^[a-z0-9]") or not name:match("[a-z0-9]$") then
    return "must begin and end with a letter or digit"
  elseif name:find("..", 1, true) then
    return "must not contain two adjacent periods"
  elseif name:match("^%d+%.%d+%.%d+%.%d+$") then
    return "must not be formatted as an IP address"
  end
  for _, p in ipairs({ "xn--", "sthree-", "amzn-s3-demo-" }) do
    if name:sub(1, #p) == p then return "must not begin with '" .. p .. "'" end
  end
  for _, s in ipairs({ "-s3alias", "--ol-s3", ".mrap", "--x-s3" }) do
    if name:sub(-#s) == s then return "must not end with '" .. s .. "'" end
  end
  return nil
end

--- Why `url` is not a usable endpoint URL, or nil ("" means unset).
function Config.endpoint_problem(url)
  if url == "" then return nil end
  local scheme, host, rest = url:match("^(%a[%w+.-]*)://([^/?#]*)(.*)$")
  if not scheme or (scheme ~= "http" and scheme ~= "https") then
    return "expected http://HOST[:PORT] or https://HOST[:PORT]"
  end
  -- The S3 client signs paths from the bucket alone (tdm_s3_client.c).
  if rest ~= "" and rest ~= "/" then return "a path or query after the host is not supported" end
  if host == "" or host:find("[%s@]") then
    return "has no usable host"
  end
  local port = host:match(":(%d*)$")
  if port and (port == "" or tonumber(port) > 65535) then
    return "has a bad port"
  end
  return nil
end

--- Check the values as a run needs them (quoted file values, numbers,
-- bucket name, endpoint); returns true or nil, message.
function Config:check()
  for _, name in ipairs(rawget(self, "_order")) do
    local v = self[name]
    if type(v) == "string" and self._sources[name]:match("^file ")
       and (v:match('^".*"$') or v:match("^'.*'$")) then
      return nil, string.format("%s%s: value is quoted (%s); write %s = %s "
        .. "without quotes", where(self, name), name, v, name, v:sub(2, -2))
    end
  end
  local why = Config.bucket_problem(self.bucket or "")
  if why then
    return nil, string.format("%sbucket name '%s' (%s) is not a valid S3 "
      .. "bucket name: %s", where(self, "bucket"), self.bucket or "",
      self._sources.bucket, why)
  end
  -- "X/." stats only when X is a directory (or a link to one).
  local root = self.data_root
  if root and root ~= "" and core.stat(root) and not core.stat(root .. "/.") then
    return nil, string.format("%sdata_root '%s' (%s): not a directory",
                              where(self, "data_root"), root, self._sources.data_root)
  end
  why = self.endpoint and Config.endpoint_problem(self.endpoint)
  if why then
    return nil, string.format("%sendpoint '%s' (%s): %s", where(self, "endpoint"),
                              self.endpoint, self._sources.endpoint, why)
  end
  return true
end

local function new(overrides)
  -- A profile given here decides the endpoint and region as it would
  -- have from AWS_PROFILE (aws --profile).
  local loaded, err = core.config_load(overrides and overrides.profile
                                       and tostring(overrides.profile) or nil)
  if not loaded then return nil, err, "ECONFIG" end
  local self = setmetatable({ _sources = loaded.sources,
                              _order = loaded.order,
                              _secrets = loaded.secrets }, Config)
  for k, v in pairs(loaded.values) do self[k] = v end
  for k, v in pairs(overrides or {}) do
    if loaded.sources[k] == nil then
      error("tdm.config: unknown setting '" .. tostring(k) .. "'", 2)
    end
    self[k] = tostring(v)
    self._sources[k] = "argument"
  end
  for k in pairs(numeric) do
    if self[k] ~= nil then
      local n = tonumber(self[k])
      if not n or n <= 0 then
        return nil, string.format("%s%s must be a positive number, got '%s'",
                                  where(self, k), describe(self, k),
                                  tostring(self[k])), "ECONFIG"
      end
      self[k] = math.type(n) == "float" and n % 1 == 0 and math.tointeger(n)
                or n
    end
  end
  if self.public_url_base == nil then
    self._derive_url_base = true           -- see Config.__index
    self._sources.public_url_base = "derived from the bucket's region"
  else
    self.public_url_base = self.public_url_base:gsub("/+$", "")
  end
  return self
end

--- A Config as is; a plain table of overrides (or nil) resolved by
-- tdm.config. For modules that take either: a configuration failure
-- raises an error object { message =, code = "ECONFIG" } that prints as
-- its message.
local function resolve(cfg)
  if getmetatable(cfg) == Config then return cfg end
  local c, msg, code = new(cfg)
  if not c then
    error(setmetatable({ message = msg, code = code }, ConfigError), 3)
  end
  return c
end

return setmetatable({ new = new, resolve = resolve, Config = Config,
                      ConfigError = ConfigError },
                    { __call = function(_, overrides) return new(overrides) end })
