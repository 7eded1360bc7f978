--- tdm.config([overrides]) -> the resolved settings.
--
-- Resolution order: overrides given here > environment > config file
-- ($TDM_CONFIG, else ./tdm.conf) > defaults; the C core does the resolving
-- (include/tdm/config.h) so C embedders get the same answers.
--
--   local cfg = tdm.config { data_root = "/srv/data" }
--   cfg.data_root, cfg.bucket, cfg.prefix, cfg.region, cfg.public_url_base
--   cfg.jobs (number), cfg:source("region") --> "env AWS_REGION"
--   tostring(cfg)  -- every setting and its source, secrets masked
--
-- Fails with an error table { exit_code = 2, message = ... } on a bad
-- config file or override (a configuration error).
local core = require "tdm.core"

local numeric = { jobs = true, lock_timeout = true,
                  multipart_threshold = true, api_max_upload = true }

local Config = {}
Config.__index = Config
Config.__name = "tdm.Config"

local function config_error(msg)
  error({ exit_code = 2, message = msg }, 0)
end

--- Where setting `name` came from ("default", "env X", "file F:N",
-- "argument").
function Config:source(name)
  return rawget(self, "_sources")[name]
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

local function new(overrides)
  local loaded, err = core.config_load()
  if not loaded then config_error(err) end
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
        config_error(string.format("%s must be a positive number, got '%s'",
                                   k, tostring(self[k])))
      end
      self[k] = math.type(n) == "float" and n % 1 == 0 and math.tointeger(n)
                or n
    end
  end
  if self.public_url_base == nil then
    self.public_url_base = string.format("https://%s.s3.%s.amazonaws.com",
                                         self.bucket, self.region)
    self._sources.public_url_base = "derived from bucket and region"
  end
  self.public_url_base = self.public_url_base:gsub("/+$", "")
  return self
end

return setmetatable({ new = new, Config = Config },
                    { __call = function(_, overrides) return new(overrides) end })
