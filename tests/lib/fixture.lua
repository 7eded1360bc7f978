--- tests/lib/fixture.lua -- a deterministic sample data root and bucket
-- for tdm's end-to-end tests, the demo and the benchmarks.
--
--   local fixture = dofile(ROOT .. "/tests/lib/fixture.lua")
--   local fx = fixture.generate {
--     data_root = DIR,          -- required; created (must be new or empty)
--     prefix = "t/abc",         -- S3 key prefix (default cfg.prefix)
--     bucket = nil,             -- default cfg.bucket
--     seed = 1,                 -- PRNG seed: same seed, same bytes
--     scenarios = true,         -- the named actors below (default true)
--     bulk = 0,                 -- extra all-synced actors "1000_bulk_K"...
--     bulk_files = 17,          -- images per bulk actor
--     bulk_size = 300 * 1024,   -- bytes per bulk actor in total (about)
--     upload = true,            -- put the bucket objects (tdm.s3, else aws)
--     junk = true,              -- false: no 0008 ghost manifest, no
--                               -- non-image files, no bad keys (a tree
--                               -- that can end audit-clean, for the demo)
--   }
--
-- Returns `fx`:
--   fx.data_root, fx.prefix, fx.bucket
--   fx.actors[name] = { id =, name =, dir = local dir or nil,
--       manifest = true|false, scenario = "...",
--       files[filename] = { local_md5 =, s3_md5 =, size =, s3_size = } }
--     (local_md5/s3_md5 nil where the file is absent on that side; only
--      image files, i.e. what a manifest should track)
--   fx.objects[key] = md5 of every object put in the bucket (bad keys too)
--   fx.bad_keys = { keys that tdm must refuse to turn into paths }
--   fx.non_images = { local paths of stray non-image files }
--   fx.manifest_only = { actor names that exist only as a manifest }
--   fixture.expected_statuses(fx, name) -> filename -> status once a sync has run
--     ("synced", "local_only", "s3_only", "out_of_sync", "missing")
--
-- Scenarios (ids 0001..0011; every state the seed and DESIGN name):
--   0001_all_synced        local == S3, manifest says synced
--   0002_local_only        local files, not in S3
--   0003_s3_only           S3 objects, no local files (manifest knows them)
--   0004_out_of_sync       both sides, different bytes
--   0005_missing           manifest entries whose file exists nowhere
--   0006_orphans           local files the manifest does not list
--   0007_no_manifest       local + S3 files, no manifest yet
--   0008_ghost             a manifest with no actor dir and no objects
--   0009_non_images        images plus notes.txt, .DS_Store, a .txt in S3
--   0010_s3_only_actor     only in S3 (no dir, no manifest)
--   0011_mixed_state       one file in each state
-- plus bad keys in the bucket: "{prefix}/stray.jpg" (no actor level),
-- "{prefix}/0012_nested/sub/0012_nested_0.jpg" (too deep).
--
-- Manifests are written the way the Python system wrote them (seed key
-- order, json.dumps(indent=2)); statuses in them may be stale on purpose
-- (0004 says "synced"), which is what a sync must correct.
local fixture = {}

local TS = 1729176000.0   -- modified_timestamp written into manifests

-- xorshift64* on Lua 5.4 integers: deterministic everywhere.
local function prng(seed)
  local s = (seed or 1) * 2654435761 + 0x9E3779B97F4A7C15
  if s == 0 then s = 1 end
  return function(n)
    s = s ~ (s >> 12); s = s ~ (s << 25); s = s ~ (s >> 27)
    local v = (s * 0x2545F4914F6CDD1D) >> 33
    return n and (v % n) or v
  end
end

-- A byte maker for one seed: a 64 KiB pool of PRNG bytes, and per file a
-- JPEG-ish magic, 16 unique PRNG bytes and pool slices at PRNG offsets --
-- distinct files (distinct MD5s) without a PRNG call per byte.
local POOL = 65536
local function byte_maker(rand)
  local chunk, parts = {}, {}
  for i = 1, POOL do
    chunk[#chunk + 1] = rand(256)
    if #chunk == 4096 or i == POOL then
      parts[#parts + 1] = string.char(table.unpack(chunk))
      chunk = {}
    end
  end
  local pool = table.concat(parts)
  return function(n)
    local out = { "\255\216\255\224", string.pack("<I8I8", rand(), rand()) }
    local need = n - 20
    while need > 0 do
      local off = rand(POOL - 1024) + 1
      local len = math.min(need, POOL - off + 1)
      out[#out + 1] = pool:sub(off, off + len - 1)
      need = need - len
    end
    return table.concat(out):sub(1, n)
  end
end

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

local function mkdirs(core, dir)
  assert(core.mkdirs(dir))
end

-- JSON as Python's json.dumps(v, indent=2) writes it, for the fixed
-- shapes of a manifest: v is { "__obj", {k, v}, ... } for objects (keys in
-- order), a plain array for lists, strings, integers, floats (mark floats
-- with { "__float", x }).
local function json_str(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    local map = { ['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n',
                  ['\t'] = '\\t', ['\r'] = '\\r' }
    return map[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function float_repr(x)
  if x == math.floor(x) and math.abs(x) < 1e16 then
    return string.format("%.1f", x)
  end
  for p = 1, 17 do
    local s = string.format("%." .. p .. "g", x)
    if tonumber(s) == x then return s end
  end
  return string.format("%.17g", x)
end

local function encode(v, indent)
  indent = indent or ""
  local inner = indent .. "  "
  if type(v) == "string" then return json_str(v) end
  if math.type(v) == "integer" then return tostring(v) end
  if type(v) == "number" then return float_repr(v) end
  if type(v) == "table" and v[1] == "__float" then return float_repr(v[2]) end
  if type(v) == "table" and v[1] == "__obj" then
    if #v == 1 then return "{}" end
    local out = {}
    for i = 2, #v do
      out[#out + 1] = inner .. json_str(v[i][1]) .. ": " .. encode(v[i][2], inner)
    end
    return "{\n" .. table.concat(out, ",\n") .. "\n" .. indent .. "}"
  end
  if #v == 0 then return "[]" end
  local out = {}
  for i = 1, #v do out[#out + 1] = inner .. encode(v[i], inner) end
  return "[\n" .. table.concat(out, ",\n") .. "\n" .. indent .. "]"
end
fixture.encode_json = encode

local function round2(x)
  return math.floor(x * 100 + 0.5) / 100
end

local function utc(ts)
  return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(ts)) .. ".000000"
end

-- A manifest document for actor `name` with entries { filename, status,
-- md5, size }.
local function manifest_doc(cfg, prefix, name, entries)
  local id = name:match("^(%d+)")
  local items, counts, bytes_total = {}, {}, 0
  for _, e in ipairs(entries) do
    counts[e.status] = (counts[e.status] or 0) + 1
    bytes_total = bytes_total + e.size
    local key = (prefix ~= "" and (prefix .. "/") or "") .. name .. "/" .. e.filename
    items[#items + 1] = { "__obj",
      { "filename", e.filename },
      { "local_path", "data/actors/" .. name .. "/training_data/" .. e.filename },
      { "s3_url", cfg.public_url_base .. "/" .. key },
      { "md5_hash", e.md5 },
      { "size_bytes", e.size },
      { "size_mb", { "__float", round2(e.size / 1048576) } },
      { "modified_timestamp", { "__float", TS } },
      { "modified_date", utc(TS) },
      { "status", e.status },
    }
  end
  return { "__obj",
    { "character_id", id },
    { "character_name", name },
    { "training_data", items },
    { "training_data_updated", utc(TS + 1800) },
    { "statistics", { "__obj",
      { "training_images_count", #entries },
      { "training_data_size_mb", { "__float", round2(bytes_total / 1048576) } },
      { "training_synced_count", counts.synced or 0 },
      { "training_local_only_count", counts.local_only or 0 },
      { "training_s3_only_count", counts.s3_only or 0 },
      { "training_out_of_sync_count", counts.out_of_sync or 0 },
    } },
  }
end

-- Upload `objects` (list of { key, path }) with tdm.s3 when it is there,
-- else with the aws CLI (one recursive copy of the staging tree).
local function upload(cfg, stage, objects)
  if #objects == 0 then return end
  local ok, s3 = pcall(require, "tdm.s3")
  if ok and type(s3) == "table" and s3.client then
    local c = assert(s3.client(cfg))
    local jobs = {}
    for _, o in ipairs(objects) do
      jobs[#jobs + 1] = { op = "put", path = o.path, key = o.key }
    end
    local results = c:transfer(jobs, { jobs = 8 })
    for i, r in ipairs(results) do
      assert(r.ok, "fixture upload " .. jobs[i].key .. ": " .. tostring(r.error))
    end
    return
  end
  local endpoint = cfg.endpoint or os.getenv("AWS_ENDPOINT_URL")
  local cmd = string.format("aws %s s3 cp --recursive --only-show-errors %s s3://%s/",
    endpoint and ("--endpoint-url " .. sh_quote(endpoint)) or "",
    sh_quote(stage), cfg.bucket)
  assert(os.execute(cmd), "fixture upload failed: " .. cmd)
end

--- Generate the tree and the bucket contents; see the top of the file.
function fixture.generate(o)
  local core = require "tdm.core"
  local config = require "tdm.config"
  assert(o and o.data_root, "fixture.generate: data_root is required")
  local cfg = config({ data_root = o.data_root, prefix = o.prefix,
                       bucket = o.bucket })
  cfg.data_root_as_written = cfg.data_root:gsub("/+$", "")
  local prefix = cfg.prefix:gsub("/+$", "")
  local rand = prng(o.seed or 1)
  local make_bytes = byte_maker(rand)
  local function bytes(_, n) return make_bytes(n) end
  local root = cfg.data_root_as_written
  local fx = { data_root = root, prefix = prefix, bucket = cfg.bucket,
               actors = {}, objects = {}, bad_keys = {}, non_images = {},
               manifest_only = {} }
  local stage = root .. "/.fixture-stage"
  local uploads = {}
  mkdirs(core, root .. "/actors")
  mkdirs(core, root .. "/actor_manifests")

  local function key_of(name, fn)
    return (prefix ~= "" and (prefix .. "/") or "") .. name .. "/" .. fn
  end
  local function put_object(key, data)
    local path = stage .. "/" .. key
    mkdirs(core, path:match("^(.*)/[^/]*$"))
    write(path, data)
    uploads[#uploads + 1] = { key = key, path = path }
    fx.objects[key] = core.md5(data)
  end
  local function actor(name, scenario)
    local a = { id = name:match("^(%d+)"), name = name, scenario = scenario,
                manifest = false, files = {}, entries = {} }
    fx.actors[name] = a
    return a
  end
  local function size()
    -- mostly small, some multi-KB
    if rand(4) == 0 then return 2048 + rand(6144) end
    return 200 + rand(1200)
  end
  -- Add image `i` of actor `a`: where = "both" | "local" | "s3" | "diff"
  -- | "none"; in_manifest says whether the manifest lists it and as what.
  local function image(a, i, where, manifest_status)
    local fn = string.format("%s_%d.jpg", a.name, i)
    local data = bytes(rand, size())
    local f = { size = #data }
    if where == "both" or where == "local" or where == "diff" then
      a.dir = root .. "/actors/" .. a.name .. "/training_data"
      mkdirs(core, a.dir)
      write(a.dir .. "/" .. fn, data)
      f.local_md5 = core.md5(data)
    end
    if where == "both" or where == "s3" then
      put_object(key_of(a.name, fn), data)
      f.s3_md5 = core.md5(data)
      f.s3_size = #data
    elseif where == "diff" then
      local other = bytes(rand, size())
      put_object(key_of(a.name, fn), other)
      f.s3_md5 = core.md5(other)
      f.s3_size = #other
    end
    a.files[fn] = f
    if manifest_status then
      a.entries[#a.entries + 1] = { filename = fn, status = manifest_status,
                                    md5 = core.md5(data), size = #data }
    end
    return fn
  end
  local function save_manifest(a)
    a.manifest = true
    local doc = manifest_doc(cfg, prefix, a.name, a.entries)
    write(root .. "/actor_manifests/" .. a.id .. "_manifest.json", encode(doc))
  end

  if o.scenarios ~= false then
    local a = actor("0001_all_synced", "all synced")
    for i = 0, 3 do image(a, i, "both", "synced") end
    save_manifest(a)

    a = actor("0002_local_only", "local-only files")
    for i = 0, 2 do image(a, i, "local", "local_only") end
    save_manifest(a)

    a = actor("0003_s3_only", "S3-only files")
    for i = 0, 2 do image(a, i, "s3", "s3_only") end
    save_manifest(a)

    a = actor("0004_out_of_sync", "out-of-sync files")
    image(a, 0, "diff", "synced")      -- stale: the manifest still says synced
    image(a, 1, "diff", "out_of_sync")
    image(a, 2, "both", "synced")
    save_manifest(a)

    a = actor("0005_missing", "missing files")
    image(a, 0, "both", "synced")
    image(a, 1, "none", "synced")
    image(a, 2, "none", "local_only")
    save_manifest(a)

    a = actor("0006_orphans", "orphans")
    image(a, 0, "both", "synced")
    image(a, 1, "local", nil)
    image(a, 2, "local", nil)
    save_manifest(a)

    a = actor("0007_no_manifest", "no manifest")
    image(a, 0, "both", nil)
    image(a, 1, "local", nil)
    image(a, 2, "s3", nil)

    if o.junk ~= false then
      a = actor("0008_ghost", "manifest with no actor")
      image(a, 0, "none", "synced")
      image(a, 1, "none", "s3_only")
      save_manifest(a)
      fx.manifest_only[#fx.manifest_only + 1] = a.name
    end

    a = actor("0009_non_images", "non-image files")
    image(a, 0, "both", "synced")
    image(a, 1, "local", "local_only")
    if o.junk ~= false then
      for _, junk in ipairs({ "notes.txt", ".DS_Store" }) do
        local p = a.dir .. "/" .. junk
        write(p, "not an image\n")
        fx.non_images[#fx.non_images + 1] = p
      end
      put_object(key_of(a.name, "readme.txt"), "not an image either\n")
    end
    save_manifest(a)

    a = actor("0010_s3_only_actor", "S3-only actor")
    for i = 0, 2 do image(a, i, "s3", nil) end

    a = actor("0011_mixed_state", "one file in each state")
    image(a, 0, "both", "synced")
    image(a, 1, "local", "local_only")
    image(a, 2, "s3", "s3_only")
    image(a, 3, "diff", "out_of_sync")
    image(a, 4, "none", "synced")
    image(a, 5, "local", nil)
    save_manifest(a)

    for _, k in ipairs(o.junk == false and {} or {
                         (key_of("", "stray.jpg"):gsub("//", "/")),
                         key_of("0012_nested", "sub/0012_nested_0.jpg") }) do
      put_object(k, bytes(rand, 300))
      fx.bad_keys[#fx.bad_keys + 1] = k
    end
  end

  local nbulk = o.bulk or 0
  local nfiles = o.bulk_files or 17
  local per = math.max(64, (o.bulk_size or 300 * 1024) // nfiles)
  for k = 1, nbulk do
    local a = actor(string.format("%04d_bulk_%d", 1000 + k, k), "bulk synced")
    for i = 0, nfiles - 1 do
      local fn = string.format("%s_%d.jpg", a.name, i)
      local data = bytes(rand, per - per // 8 + rand(per // 4 + 1))
      a.dir = root .. "/actors/" .. a.name .. "/training_data"
      if i == 0 then mkdirs(core, a.dir) end
      write(a.dir .. "/" .. fn, data)
      put_object(key_of(a.name, fn), data)
      local md5 = core.md5(data)
      a.files[fn] = { size = #data, local_md5 = md5, s3_md5 = md5, s3_size = #data }
      a.entries[#a.entries + 1] = { filename = fn, status = "synced", md5 = md5,
                                    size = #data }
    end
    save_manifest(a)
  end

  if o.upload ~= false then upload(cfg, stage, uploads) end
  os.execute("rm -rf " .. sh_quote(stage))
  for _, a in pairs(fx.actors) do a.entries = nil end
  return fx
end

--- The status every tracked file of actor `name` should have after a
-- sync of the manifest with local disk and the bucket.
function fixture.expected_statuses(fx, name)
  local out = {}
  for fn, f in pairs(fx.actors[name].files) do
    if f.local_md5 and f.s3_md5 then
      out[fn] = f.local_md5 == f.s3_md5 and "synced" or "out_of_sync"
    elseif f.local_md5 then out[fn] = "local_only"
    elseif f.s3_md5 then out[fn] = "s3_only"
    else out[fn] = "missing" end
  end
  return out
end

return fixture
