--- tdm: keep every actor's training images accounted for between local
-- disks and an S3 bucket.
--
--   local tdm = require "tdm"
--   tdm.md5("abc")             --> "900150983cd24fb0d6963f7d28e17f72"
--   tdm.md5_file(path)         --> hex, size | nil, message, code
--
--   for a in tdm.actors() do print(a.name, a.has_manifest) end
--
-- Larger parts (tdm.Manifest, tdm.s3, tdm.Sync, tdm.API, ...) load on
-- first use, so `require "tdm"` stays cheap for small scripts.
local core = require "tdm.core"

local tdm = {
  version = core.version,
  core = core,
  md5 = core.md5,
  sha256 = core.sha256,
  md5_file = core.md5_file,
  sha256_file = core.sha256_file,
}

-- Field name -> module that provides it, loaded when first read.
local lazy = {
  Manifest = "tdm.manifest",
  s3 = "tdm.s3",
  Sync = "tdm.sync",
  API = "tdm.api",
  audit = "tdm.audit",
  migrate = "tdm.migrate",
  config = "tdm.config",
  actors = "tdm.actors",
}

return setmetatable(tdm, {
  __index = function(t, k)
    local name = lazy[k]
    if not name then return nil end
    local mod = require(name)
    rawset(t, k, mod)
    return mod
  end,
})
