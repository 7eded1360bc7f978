--- tdm.s3: S3 I/O for tdm (see docs/lua-api.md, "tdm.s3").
--
--   local c = assert(tdm.s3.client())            -- settings from tdm.config
--   for obj, err, code in c:list("system_actors/training_data/0042_") do
--     if not obj then error(err) end
--     print(obj.key, obj.size, obj.md5)
--   end
--   local r = c:get(key, "data/actors/.../0042_x_1.jpg")  -- verified MD5
--   local results, interrupted = c:transfer(jobs, { jobs = 32,
--     on_complete = function(i, r) ... end })
--   local q <close> = c:queue { on_complete = function(id, r) ... end }
--   q:add { op = "get", key = key, path = path }   -- runs as q:pump() turns
--
-- Failures of the world return nil, message, code ("S3_NoSuchKey",
-- "S3_AccessDenied", "S3_BadDigest", "ECONNREFUSED", ...); misuse raises.
-- The transfer engine is C (src/tdm_s3_*.c): one libcurl multi loop,
-- reused connections, retries with jittered backoff, no partial files.
local core = require "tdm.core"

local s3 = {}

local Client = {}
Client.__index = Client
Client.__name = "tdm.s3.Client"

-- Transport tuning accepted by tdm.s3.client's second argument.
local tuning = {
  path_style = "boolean", max_attempts = "number", part_size = "number",
  connect_timeout = "number", stall_timeout = "number",
  backoff_base = "number", backoff_cap = "number", jobs = "number",
  multipart_threshold = "number",
}

-- A Config, or a plain table of overrides / nil resolved by tdm.config.
local function resolve(cfg)
  return require("tdm.config").resolve(cfg)
end

--- tdm.s3.client([cfg [, opts]]) -> client | nil, msg, code.
-- `opts` tunes the transport: path_style (default: cfg.s3_addressing,
-- whose "auto" means path-style when an endpoint is set), max_attempts (5), part_size (8 MiB), connect_timeout
-- (10 s), stall_timeout (30 s), backoff_base (0.1 s), backoff_cap (20 s);
-- jobs and multipart_threshold override cfg's.
function s3.client(cfg, opts)
  cfg = resolve(cfg)
  local settings = {
    bucket = cfg.bucket, region = cfg.region, endpoint = cfg.endpoint,
    ca_bundle = cfg.ca_bundle, profile = cfg.profile, jobs = cfg.jobs,
    multipart_threshold = cfg.multipart_threshold,
  }
  local addressing = cfg.s3_addressing or "auto"
  if addressing == "path" then settings.path_style = true
  elseif addressing == "virtual" then settings.path_style = false
  elseif addressing ~= "auto" then
    return nil, "s3_addressing (TDM_S3_ADDRESSING) must be auto, path "
           .. "or virtual, got '" .. addressing .. "'", "ECONFIG"
  end
  if cfg.sse and cfg.sse ~= "" then
    settings.sse, settings.sse_kms_key_id = cfg.sse, cfg.sse_kms_key_id
  end
  -- an additional checksum with uploads: AWS takes it; other servers may
  -- refuse headers they do not know, so with an endpoint only when asked
  local ck = cfg.s3_checksum or "auto"
  if ck == "auto" then
    settings.checksum = (cfg.endpoint == nil or cfg.endpoint == "")
                        and "crc32c" or nil
  elseif ck == "crc32c" or ck == "sha256" or ck == "crc32" or ck == "sha1"
         or ck == "crc64nvme" then
    settings.checksum = ck
  elseif ck ~= "off" then
    return nil, "s3_checksum (TDM_S3_CHECKSUM) must be auto, crc32c, crc32, "
           .. "crc64nvme, sha256, sha1 or off, got '" .. ck .. "'", "ECONFIG"
  end
  for k, v in pairs(opts or {}) do
    if not tuning[k] then
      error("tdm.s3.client: unknown option '" .. tostring(k) .. "'", 2)
    end
    if type(v) ~= tuning[k] then
      error(string.format("tdm.s3.client: option '%s' must be a %s", k,
                          tuning[k]), 2)
    end
    settings[k] = v
  end
  local c, msg, code = core.s3_client(settings)
  if not c then return nil, msg, code end
  -- The first client of a configuration whose public URL follows the
  -- bucket's region asks S3 for it (once per cfg, before any s3_url is
  -- built by the code that wanted this client).
  if rawget(cfg, "_derive_url_base") and not rawget(cfg, "_region_asked") then
    rawset(cfg, "_region_asked", true)
    s3.learn_bucket_region(cfg)
  end
  return setmetatable({ _c = c, cfg = cfg }, Client)
end

--- c:list(prefix [, { max_keys = n, start_after = key }]) -> iterator of
-- objects { key, size, etag, md5, last_modified }. Pages (ListObjectsV2,
-- up to max_keys, default 1000) are fetched as the previous one is
-- consumed. A failure yields false, message, code once, then ends.
function Client:list(prefix, opts)
  opts = opts or {}
  local c = self._c
  local max_keys = opts.max_keys
  if max_keys ~= nil and (math.type(max_keys) ~= "integer" or
                          max_keys < 1 or max_keys > 1000) then
    error("list: max_keys must be an integer 1..1000", 2)
  end
  local page, pos, token, last, failed = nil, 0, nil, false, false
  return function()
    while not failed do
      if page and pos < #page then
        pos = pos + 1
        return page[pos]
      end
      if last then return nil end
      local objs, nxt, code = c:list_page(prefix or "", max_keys, token,
                                          token == nil and opts.start_after
                                          or nil)
      if not objs then
        failed = true
        return false, nxt, code
      end
      page, pos, token = objs, 0, nxt
      if not nxt then last = true end
    end
    return nil
  end
end

--- c:region() -> the region requests are signed for, and the configured
-- one when S3 said the bucket is in another and the client switched to
-- it (nil while it did not).
function Client:region() return self._c:region() end

-- Say once per client that S3 put the bucket in another region than the
-- configuration (the core re-signs for it): c.on_notice(message), by
-- default a line on stderr.
local function say_region(self)
  if self._region_said then return end
  local now, configured = self._c:region()
  if not configured then return end
  self._region_said = true
  local msg = string.format("tdm: bucket %s is in region %s, not %s as "
    .. "configured; signing for %s (set AWS_REGION=%s to skip the retry)",
    self._c:bucket(), now, configured, now, now)
  if self.on_notice then self.on_notice(msg)
  else io.stderr:write(msg, "\n") end
end

-- Call the core client's method and say a region switch it caused.
local function call(self, method, ...)
  local function pass(...)
    say_region(self)
    return ...
  end
  return pass(self._c[method](self._c, ...))
end

--- c:list_page(prefix, max_keys, token [, start_after]) -> objects,
-- next_token | nil, msg, code: one ListObjectsV2 page. c:list_page_async(...) -> listing: the
-- same page fetched on a thread (listing:wait(), listing:ready()).
function Client:list_page(prefix, max_keys, token, start_after)
  return call(self, "list_page", prefix, max_keys, token, start_after)
end
function Client:list_page_async(prefix, max_keys, token, start_after)
  return self._c:list_page_async(prefix, max_keys, token, start_after)
end
function Client:head(key) return call(self, "head", key) end
function Client:get(key, path) return call(self, "get", key, path) end
function Client:put(path, key, opts) return call(self, "put", path, key, opts) end
function Client:delete(key) return call(self, "delete", key) end
function Client:delete_many(keys) return call(self, "delete_many", keys) end
function Client:presign(method, key, seconds)
  return self._c:presign(method, key, seconds)
end
function Client:transfer(jobs, opts) return call(self, "transfer", jobs, opts) end
--- c:queue(opts) -> a transfer queue: q:add(job) -> id, q:pump(ms) ->
-- jobs unfinished, q:wait() -> interrupted, q:pending(), q:close().
function Client:queue(opts)
  opts = opts or {}
  local done = opts.on_complete
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  if done == nil or type(done) == "function" then
    o.on_complete = function(...)
      say_region(self)
      if done then return done(...) end
    end
  end
  return self._c:queue(o)
end
function Client:bucket() return self._c:bucket() end
--- c:stats() -> { requests = n, connections = n }: every request attempt
-- completed and every new connection opened by this client so far.
function Client:stats() return self._c:stats() end
function Client:close() self._c:close() end
Client.__close = Client.close

function Client:__tostring() return tostring(self._c) end

-- Names that go into keys are single path components.
local function check(name, what)
  local ok, msg = core.check_name(name, what)
  if not ok then error(msg, 3) end
end

--- tdm.s3.key_for(cfg, actor_name, filename) -> "{prefix}/{actor}/{file}".
function s3.key_for(cfg, actor_name, filename)
  cfg = resolve(cfg)
  check(actor_name, "actor name")
  check(filename, "filename")
  local prefix = (cfg.prefix or ""):gsub("^/+", ""):gsub("/+$", "")
  if prefix == "" then return actor_name .. "/" .. filename end
  return prefix .. "/" .. actor_name .. "/" .. filename
end

--- tdm.s3.url_for(cfg, actor_name, filename) -> the public s3_url
-- ("{public_url_base}/{key}", key URI-encoded as the manifest writes it).
function s3.url_for(cfg, actor_name, filename)
  cfg = resolve(cfg)
  check(actor_name, "actor name")
  check(filename, "filename")
  local prefix = (cfg.prefix or ""):gsub("^/+", ""):gsub("/+$", "")
  local parts = { cfg.public_url_base }
  if prefix ~= "" then parts[#parts + 1] = core.uri_encode(prefix, true) end
  parts[#parts + 1] = core.uri_encode(actor_name)
  parts[#parts + 1] = core.uri_encode(filename)
  return table.concat(parts, "/")
end

-- Where the bucket's region is remembered: beside the actors, one file
-- per bucket (and endpoint: another server's bucket of the same name is
-- another bucket).
local function region_file(cfg)
  local id = (cfg.bucket or "") .. "@" .. (cfg.endpoint or "aws")
  return string.format("%s/.tdm-bucket-region.%s", cfg.data_root,
                       (id:gsub("[^%w%.%-_@]", "_")))
end

-- The region remembered for cfg's bucket (this process, else the file
-- under the data root), or nil.
local function known_region(cfg)
  local known = rawget(cfg, "_bucket_region")
  if known then return known[1], known[2] end
  local f = io.open(region_file(cfg), "r")
  if f then
    local r = f:read("l")
    f:close()
    if r and r:match("^[a-z0-9%-]+$") then
      rawset(cfg, "_bucket_region", { r, false })
      return r, false
    end
  end
  return nil
end

--- tdm.s3.bucket_region(cfg) -> region, known: the bucket's own region as
-- far as it is known without asking S3: what tdm.s3.learn_bucket_region
-- learned in this process or remembered under the data root; else the
-- configured region with `known` nil (a local-only operation never
-- reaches the network for it). The public URL depends on it and never on
-- the region requests are signed for (AWS_REGION, a profile's).
function s3.bucket_region(cfg)
  cfg = resolve(cfg)
  local r, learned = known_region(cfg)
  if r then return r, learned end
  return cfg.region, nil
end

--- tdm.s3.learn_bucket_region(cfg) -> region: ask S3 for the bucket's
-- region (x-amz-bucket-region of a HEAD of the bucket) unless it is known
-- already; a run that talks to S3 calls it before it builds any s3_url.
-- A server that answers without saying (s3rver) gets the configured
-- region; when S3 cannot be reached or refuses, nothing is learned (the
-- configured region is used, not remembered).
function s3.learn_bucket_region(cfg)
  cfg = resolve(cfg)
  local r = known_region(cfg)
  if r then return r end
  rawset(cfg, "_region_asked", true)
  local c = s3.client(cfg, { max_attempts = 2, connect_timeout = 5,
                             stall_timeout = 10 })
  if not c then return cfg.region end
  c.on_notice = function() end
  local said = c._c:bucket_region()
  c:close()
  if said == nil then return cfg.region end
  local region = said or cfg.region
  rawset(cfg, "_bucket_region", { region, true })
  return region
end

--- tdm.s3.remember_bucket_region(cfg): write what tdm.s3.learn_bucket_region
-- learned under the data root (a run that wrote manifests calls it; a
-- dry run or a failed run does not, so they change nothing).
function s3.remember_bucket_region(cfg)
  cfg = resolve(cfg)
  local region, learned = known_region(cfg)
  if region and learned and core.stat(cfg.data_root) then
    core.atomic_write(region_file(cfg), region .. "\n")
    rawset(cfg, "_bucket_region", { region, false })
  end
end

--- tdm.s3.etag_match(path, etag [, md5]) -> bool | nil, msg, code: does
-- the local file have this S3 ETag (plain MD5, or a multipart ETag for the
-- part sizes clients use: 5, 8, 16, 64 MiB, ...)?
s3.etag_match = core.etag_match

--- tdm.s3.checksum_file(path, algo) -> value | nil, msg, code: the
-- additional checksum S3 would keep for the file ("crc32", "crc32c",
-- "crc64nvme", "sha1", "sha256"; base64, as in x-amz-checksum-*), to
-- compare with a HEAD's checksum when no MD5 is known.
s3.checksum_file = core.checksum_file

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h)
    return string.char(tonumber(h, 16))
  end))
end

--- tdm.s3.parse_url(cfg, url) -> key | nil, msg. Understands the public
-- base, virtual-hosted (bucket.s3[.-]region.amazonaws.com), path-style
-- (s3.region.amazonaws.com/bucket, or the endpoint) and s3://bucket/key.
function s3.parse_url(cfg, url)
  cfg = resolve(cfg)
  if type(url) ~= "string" then
    error("parse_url: url must be a string", 2)
  end
  local bucket = cfg.bucket
  local function fail(why)
    return nil, string.format("parse_url: %s: %s", url, why)
  end
  local function done(key)
    key = unescape((key:gsub("[?#].*$", "")))
    if key == "" then return fail("no object key") end
    return key
  end
  local b, rest = url:match("^s3://([^/]+)/(.*)$")
  if b then
    if b ~= bucket then
      return fail("bucket '" .. b .. "' is not the configured '" ..
                  bucket .. "'")
    end
    return done(rest)
  end
  local base = cfg.public_url_base
  if base and url:sub(1, #base + 1) == base .. "/" then
    return done(url:sub(#base + 2))
  end
  local host, path = url:match("^https?://([^/]+)/(.*)$")
  if not host then return fail("not an S3 URL") end
  host = host:lower()
  local vb = host:match("^(.-)%.s3[%.%-][%w%.%-]*amazonaws%.com$") or
             host:match("^(.-)%.s3%.amazonaws%.com$")
  if vb and vb ~= "" then
    if vb ~= bucket then
      return fail("bucket '" .. vb .. "' is not the configured '" ..
                  bucket .. "'")
    end
    return done(path)
  end
  local pb, key = path:match("^([^/]+)/(.*)$")
  if pb and (host:match("^s3[%.%-][%w%.%-]*amazonaws%.com$") or
             (cfg.endpoint and url:sub(1, #cfg.endpoint) == cfg.endpoint)) then
    if pb ~= bucket then
      return fail("bucket '" .. pb .. "' is not the configured '" ..
                  bucket .. "'")
    end
    return done(key)
  end
  return fail("not a URL of bucket '" .. bucket .. "'")
end

return s3
