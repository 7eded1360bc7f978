--- tdm.Sync (the seed's TrainingDataSync): bring manifests up to date with
-- local disk and the bucket, and move files between the two.
--
--   local sync = tdm.Sync.new(cfg)           -- cfg: Config, overrides or nil
--   sync:auto_initialize_manifest("0042" [, { dry_run, verify, prune }])
--       -> report | nil, msg, code            -- list S3 + scan local, save
--   sync:sync_actor_training_data("0042", { direction = "pull"|"push"|"both",
--       delete, dry_run, repair, overwrite, verify, only, reporter })
--       -> totals | nil, msg, code
--   sync:run { direction = nil|"pull"|"push"|"both", actors, select,
--       reporter, dry_run, ... } -> totals   -- the bulk engine
--   sync:refresh(m, objects [, { verify, prune, listed_at }]) -> report
-- (docs/lua-api.md, "tdm.Sync", has every field.)
--
-- A listing never overrides newer manifest state (refresh confirms
-- disagreements with HEAD), and a run claims an actor's transfers
-- ({manifest}.claim) so concurrent runs skip it as busy: no file moves
-- twice, and manifest locks are held only briefly.
-- Facts, not statuses: this module reports what it saw (a listing object,
-- a local scan, a verified transfer) and the core derives every status.
-- Every path built from an S3 key is checked: the key must be
-- {prefix}/{actor_name}/{filename} with both parts one safe name; other
-- keys are reported and skipped, never written.
--
-- Failure convention: misuse raises; failures of the world return
-- nil, message, code. Bulk runs report a bad actor and carry on.
local core = require "tdm.core"
local config = require "tdm.config"

local Sync = {}
Sync.__index = Sync
Sync.__name = "tdm.Sync"

-- Transfers waiting for a slot before the listing pauses for them (the
-- queue keeps cfg.jobs in flight, across actors, as the listing goes on).
local BACKLOG = 1000
-- Save a manifest at most this often (seconds) while its files land.
local SAVE_EVERY = 2.0

local IMAGE_EXT = { jpg = true, jpeg = true, png = true, webp = true }

--- Whether `name` is an image the manifests track (.jpg .jpeg .png .webp,
-- any case, not hidden) -- the core's rule.
local function is_image(name)
  if name:sub(1, 1) == "." then return false end
  local ext = name:match("%.([%w]+)$")
  return ext ~= nil and IMAGE_EXT[ext:lower()] == true
end
Sync.is_image = is_image

--- Whether `name` is a well-formed actor name ({digits}_{descriptor}, one
-- safe path component); returns true | nil, message.
local function check_actor_name(name)
  local ok, msg = core.check_name(name, "actor name")
  if not ok then return nil, msg end
  if not name:match("^%d+_.") then
    return nil, string.format("actor name '%s' is not {actor_id}_{descriptor}", name)
  end
  return true
end
Sync.check_actor_name = check_actor_name

-- Online CPUs (Linux /proc/cpuinfo, else getconf, else 2), read once.
local ncpu
local function cpu_count()
  if ncpu then return ncpu end
  local n = 0
  local f = io.open("/proc/cpuinfo", "r")
  if f then
    for line in f:lines() do
      if line:match("^processor%s*:") then n = n + 1 end
    end
    f:close()
  end
  if n == 0 then
    local p = io.popen("getconf _NPROCESSORS_ONLN 2>/dev/null")
    n = p and tonumber(p:read("a")) or 0
    if p then p:close() end
  end
  ncpu = n > 0 and n or 2
  return ncpu
end

local function manifest_mod() return require "tdm.manifest" end
local function s3_mod() return require "tdm.s3" end

--- tdm.Sync.new([cfg]) -> a Sync bound to one configuration. The S3
-- client is made on first use.
function Sync.new(cfg)
  if getmetatable(cfg) ~= config.Config then cfg = config(cfg) end
  local prefix = (cfg.prefix or ""):gsub("^/+", ""):gsub("/+$", "")
  local self = setmetatable({
    cfg = cfg,
    prefix = prefix,
    list_root = prefix ~= "" and (prefix .. "/") or "",
    data_root = (cfg.data_root or "data"):gsub("(.)/+$", "%1"),
  }, Sync)
  return self
end

-- The S3 client kept in self[field], made on first use | nil, msg, code.
-- A run keeps three: transfers, listings (a page fetched in the
-- background) and confirmations (HEADs made inside transfer callbacks).
local function own_client(self, field)
  if not self[field] then
    local c, msg, code = s3_mod().client(self.cfg)
    if not c then return nil, msg, code end
    self[field] = c
  end
  return self[field]
end

--- The S3 client (made once) | nil, msg, code.
function Sync:client() return own_client(self, "_client") end

--- The key of `filename` of actor `name`.
function Sync:key_for(name, filename)
  return self.list_root .. name .. "/" .. filename
end

--- The local file of `filename` of actor `name` (both checked names).
function Sync:local_path(name, filename)
  return self.data_root .. "/actors/" .. name .. "/training_data/" .. filename
end

--- Split an S3 key into actor name and filename, refusing anything that
-- cannot safely become a local path. Returns actor, filename | actor,
-- nil, reason (the actor is sound but the object is not an image) | nil,
-- nil, reason.
function Sync:split_key(key)
  local root = self.list_root
  if key:sub(1, #root) ~= root then
    return nil, nil, "outside the prefix '" .. self.prefix .. "'"
  end
  local rest = key:sub(#root + 1)
  local actor, file = rest:match("^([^/]+)/([^/]+)$")
  if not actor then
    if rest:find("/", 1, true) then
      return nil, nil, "not {actor_name}/{filename} (nested or empty part)"
    end
    return nil, nil, "not inside an actor folder"
  end
  local ok, msg = check_actor_name(actor)
  if not ok then return nil, nil, msg end
  ok, msg = core.check_name(file, "file name")
  if not ok then return nil, nil, msg end
  if not is_image(file) then return actor, nil, "not an image" end
  return actor, file
end

local function s3_fact(obj)
  return { md5 = obj.md5, etag = obj.etag, size = obj.size,
           mtime = obj.last_modified }
end

--- The client listings use: one of their own, so that the next page can
-- be fetched in the background while the main client transfers files.
function Sync:list_client() return own_client(self, "_list_client") end

--- Stream the listing under `list_prefix` and call fn(actor, objects) for
-- each actor as soon as its (contiguous) group of keys ends; objects maps
-- filename -> listing object. on_skip(key, reason, actor) gets every key
-- that is refused. Only one actor's objects are held at a time (and the
-- next page of keys, which is fetched in the background while this one
-- is worked through). While a page is awaited, idle() (optional) is
-- called for as long as it returns true. Returns true | nil, msg, code
-- (after a listing failure no later group is delivered, so no actor is
-- judged on a partial listing).
function Sync:each_listed_actor(list_prefix, fn, on_skip, idle)
  local c, msg, code = self:list_client()
  if not c then return nil, msg, code end
  local raw = c._c   -- the core client (tdm.s3 keeps it there)
  local cur, objs, done = nil, {}, {}
  self.listings = (self.listings or 0) + 1
  -- Every object of this listing was seen at this time or later: what a
  -- manifest recorded after it is newer than the listing (see refresh).
  self.listed_at = core.now()
  local per_page = self.list_page_keys or 1000   -- test seam: smaller pages
  local pending = raw:list_page_async(list_prefix, per_page)
  local ok, res, emsg, ecode = pcall(function()
    while pending do
      if idle then repeat until pending:ready() or not idle() end
      local page, nxt, pcode = pending:wait()
      pending = nil
      if not page then return nil, nxt, pcode end
      if nxt then pending = raw:list_page_async(list_prefix, per_page, nxt) end
      for _, obj in ipairs(page) do
        local actor, file, why = self:split_key(obj.key)
        if actor and actor ~= cur then
          if done[actor] then
            return nil, string.format("listing of '%s' is not sorted by key (%s seen twice)",
                                      list_prefix, actor), "S3_UNSORTED"
          end
          if cur then
            done[cur] = true
            fn(cur, objs)
          end
          cur, objs = actor, {}
        end
        if file then objs[file] = obj else on_skip(obj.key, why, actor) end
        if core.interrupted() then return nil, "interrupted", "EINTR" end
      end
    end
    if cur then fn(cur, objs) end
    return true
  end)
  -- However the listing ended, a page still being fetched is waited for,
  -- so the listing client is free for the next listing.
  if pending then pending:wait() end
  if not ok then error(res, 0) end
  return res, emsg, ecode
end

--- The objects of one actor: filename -> object | nil, msg, code.
-- Refused keys go to on_skip when given.
function Sync:list_actor(name, on_skip)
  local objects = {}
  local ok, msg, code = self:each_listed_actor(self:key_for(name, ""),
    function(actor, objs) if actor == name then objects = objs end end,
    on_skip or function() end)
  if not ok then return nil, msg, code end
  return objects
end

--- Whether actor `name` has a local folder or a manifest file.
function Sync:exists_locally(name)
  local id = name:match("^(%d+)")
  return core.stat(self.data_root .. "/actors/" .. name) ~= nil
    or (id and core.stat(self.data_root .. "/actor_manifests/" .. id .. "_manifest.json") ~= nil)
    or false
end

--- Resolve an actor given as 42, "42", "0042" or a full name to its full
-- name: the manifest or the local folder (tdm.Manifest.paths), else the
-- one actor folder in S3 with that id. -> name | nil, msg, code.
function Sync:resolve_actor(actor)
  local s = tostring(actor)
  if s:match("^%d+_.") then
    local ok, msg = check_actor_name(s)
    if not ok then return nil, msg, "EBADNAME" end
    return s
  end
  if not s:match("^%d+$") then
    return nil, string.format("'%s' is not an actor id or name", s), "EBADNAME"
  end
  local ok, p = pcall(manifest_mod().paths, s, self.cfg)
  if ok and type(p) == "table" and p.name then return p.name end
  local id = string.format("%04d", tonumber(s))
  local names = {}
  local ok, msg, code = self:each_listed_actor(self.list_root .. id .. "_",
    function(name) names[#names + 1] = name end, function() end)
  if not ok then return nil, msg, code end
  if #names == 1 then return names[1] end
  if #names > 1 then
    return nil, string.format("actor %s is ambiguous in S3: %s", id,
                              table.concat(names, ", ")), "ENOACTOR"
  end
  return nil, string.format("unknown actor %s: no manifest, no local folder, "
                            .. "no objects under %s", s, self.list_root .. id .. "_*"),
    "ENOACTOR"
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

-- Slack (seconds) between the wall clock and file modification times
-- (the kernel stamps files from a coarser clock).
local CLOCK_SLACK = 1.0

-- Whether the listing's view of entry `e` (obj, or nil when unlisted)
-- disagrees with what the manifest knows of the S3 object.
local function listing_disagrees(e, obj)
  if not e then return obj ~= nil end
  if (obj ~= nil) ~= (e.s3_present == true) then return true end
  if obj and e.s3_md5 and obj.md5 then return obj.md5 ~= e.s3_md5 end
  if obj and e.s3_etag and obj.etag then return obj.etag ~= e.s3_etag end
  return false
end

--- The S3 fact of `key` as it is now (HEAD): fact table, or false when
-- the object does not exist | nil, msg, code.
function Sync:confirm_s3(key)
  -- Its own client: confirmations also run inside the transfer queue's
  -- on_complete, while the main client is busy.
  local c, msg, code = own_client(self, "_head_client")
  if not c then return nil, msg, code end
  self.confirmations = (self.confirmations or 0) + 1
  local h, hmsg, hcode = c:head(key)
  if h then return s3_fact(h) end
  if hcode == "S3_NoSuchKey" or hcode == "S3_NotFound" then return false end
  return nil, hmsg, hcode
end

--- Bring open manifest `m` up to date: scan the local folder (hashing only
-- what size+mtime cannot vouch for), then report every listed object and
-- the absence of every unlisted one. `objects` (filename -> listing
-- object) must be the actor's complete listing, taken at opts.listed_at
-- (default: the start of this Sync's last listing; unknown = 0).
-- A listing older than the manifest's last save never overrides it:
-- where the two disagree (object absent / present / different), the
-- object is asked for (HEAD) and that answer is recorded.
-- -> report | nil, msg, code. Report: { scan = (m:scan_local report),
-- s3_added = {names}, s3_gone = {names}, pruned = {names},
-- confirmed = {names} (HEADs made) }.
function Sync:refresh(m, objects, opts)
  opts = opts or {}
  -- Manifest state recorded after the listing (another process saved it
  -- under its lock meanwhile, e.g. the HTTP API uploading a file).
  local listed_at = opts.listed_at or self.listed_at or 0
  local mst = m:exists() and core.stat(m:path())
  local newer = mst and mst.mtime >= listed_at - CLOCK_SLACK or false
  -- Hashing is CPU-bound: more threads than CPUs only add overhead
  -- (measured 3-4x slower scans with 16 threads on 2 CPUs), while
  -- cfg.jobs is sized for network transfers.
  local scan, msg, code = m:scan_local({ verify = opts.verify or false,
                                         jobs = math.min(self.cfg.jobs, cpu_count()),
                                         prehash = opts.prehash })
  if not scan then return nil, msg, code end
  local rep = { scan = scan, s3_added = {}, s3_gone = {}, pruned = {},
                confirmed = {} }
  local name = m:actor_name()
  -- The S3 fact of `fn` as the listing has it, or as S3 has it now when
  -- the listing is older than the manifest and disagrees with entry e.
  local function s3_view(fn, e)
    local obj = objects[fn]
    if newer and listing_disagrees(e, obj) then
      rep.confirmed[#rep.confirmed + 1] = fn
      return self:confirm_s3(self:key_for(name, fn))
    end
    return obj and s3_fact(obj) or false
  end
  local known = {}
  for _, e in ipairs(m:get_all_images()) do
    known[e.filename] = true
    local fact, hmsg, hcode = s3_view(e.filename, e)
    if fact == nil then return nil, hmsg, hcode end
    if not fact and e.s3_md5 == nil and e.s3_etag == nil
       and (e.status == "local_only" or e.status == "missing") then
      fact = nil   -- already known to be absent from S3
    end
    if fact ~= nil then
      local ok, emsg, ecode = m:update_image(e.filename, { s3 = fact })
      if not ok then return nil, emsg, ecode end
      if not fact and (e.status == "synced" or e.status == "s3_only"
                       or e.status == "out_of_sync") then
        rep.s3_gone[#rep.s3_gone + 1] = e.filename
      end
    end
  end
  for _, fn in ipairs(sorted_keys(objects)) do
    if not known[fn] then
      local fact, hmsg, hcode = s3_view(fn, nil)
      if fact == nil then return nil, hmsg, hcode end
      if fact then
        -- The scan added every local image already; a file it skipped (a
        -- symlink, say) is left for the core to judge, not declared absent.
        local entry = { filename = fn, s3 = fact }
        if not core.stat(self:local_path(name, fn)) then entry["local"] = false end
        local ok, emsg, ecode = m:add_image(entry)
        if not ok then return nil, emsg, ecode end
        rep.s3_added[#rep.s3_added + 1] = fn
      end
    end
  end
  if opts.prune then
    for _, e in ipairs(m:get_all_images()) do
      if e.status == "missing" then
        local ok, emsg, ecode = m:remove_image(e.filename)
        if not ok then return nil, emsg, ecode end
        rep.pruned[#rep.pruned + 1] = e.filename
      end
    end
  end
  return rep
end

--- The transfers that bring actor `name` (open manifest m, refreshed)
-- in line for `o.direction` ("pull", "push" or "both"): a list of
-- { op = "get"|"put", file =, key =, path =, size =, why = status }, and
-- a list of { file =, reason = } for entries left alone on purpose.
-- o.repair / o.overwrite let S3 / local win for out_of_sync files;
-- o.only (filename set) restricts the plan to those files.
function Sync:plan(m, name, objects, o)
  local jobs, held = {}, {}
  local pull = o.direction == "pull" or o.direction == "both"
  local push = o.direction == "push" or o.direction == "both"
  for _, e in ipairs(m:get_all_images()) do
    local fn, st = e.filename, e.status
    if not o.only or o.only[fn] then
      local key = objects[fn] and objects[fn].key or self:key_for(name, fn)
      local path = self:local_path(name, fn)
      if pull and (st == "s3_only" or (st == "out_of_sync" and o.repair
                                        and o.direction == "pull")) then
        jobs[#jobs + 1] = { op = "get", file = fn, key = key, path = path, obj = objects[fn],
                            size = objects[fn] and objects[fn].size or e.size_bytes, why = st,
                            was = { status = st, s3_md5 = e.s3_md5, local_md5 = e.local_md5 } }
      elseif push and (st == "local_only" or (st == "out_of_sync" and o.overwrite
                                               and o.direction == "push")) then
        jobs[#jobs + 1] = { op = "put", file = fn, key = key, path = path,
                            size = e.size_bytes, why = st,
                            was = { status = st, s3_md5 = e.s3_md5, local_md5 = e.local_md5 } }
      elseif st == "out_of_sync" then
        held[#held + 1] = { file = fn, reason = o.direction == "push"
          and "out_of_sync: local and S3 differ (--overwrite uploads the local file)"
          or o.direction == "pull"
          and "out_of_sync: local and S3 differ (--repair downloads the S3 object)"
          or "out_of_sync: local and S3 differ (pull --repair or push --overwrite)" }
      end
    end
  end
  return jobs, held
end

local function emit(r, ev)
  if r then r:event(ev) end
end

local function fail(r, actor, file, msg, code)
  if r then r:fail(actor, file, msg, code) end
end

-- Per-actor events of a refresh.
local function report_refresh(r, name, rep)
  if not r then return end
  for _, fn in ipairs(rep.scan.added or {}) do
    r:event({ actor = name, file = fn, action = "scan", result = "added" })
  end
  for _, fn in ipairs(rep.scan.changed or {}) do
    r:event({ actor = name, file = fn, action = "scan", result = "changed" })
  end
  for _, fn in ipairs(rep.scan.vanished or {}) do
    r:event({ actor = name, file = fn, action = "scan", result = "vanished" })
  end
  for _, s in ipairs(rep.scan.skipped or {}) do
    r:event({ actor = name, file = s.name, action = "scan", result = "skipped",
              error = s.reason })
  end
  for _, fn in ipairs(rep.s3_added) do
    r:event({ actor = name, file = fn, action = "list", result = "added" })
  end
  for _, fn in ipairs(rep.s3_gone) do
    r:event({ actor = name, file = fn, action = "list", result = "gone" })
  end
  for _, fn in ipairs(rep.pruned) do
    r:event({ actor = name, file = fn, action = "prune", result = "removed" })
  end
end

local function new_totals()
  return { actors = 0, manifests_written = 0, manifests_unchanged = 0,
           manifests_created = 0, files_hashed = 0, files_reused = 0,
           bytes_hashed = 0, downloaded = 0, uploaded = 0, deleted = 0,
           bytes_transferred = 0, transfers_failed = 0, keys_skipped = 0,
           retries = 0, busy_skipped = 0,
           actor_errors = 0, synced = 0, local_only = 0, s3_only = 0,
           out_of_sync = 0, missing = 0 }
end

--- Remove the temp files (".NAME.tmp.PID.N", see tdm_temp_path) that a
-- killed tdm process left in actor `name`'s folder: only those whose PID
-- is no longer running (checked through /proc; nothing is removed where
-- /proc is absent). Returns the names removed.
function Sync:remove_stale_temps(name)
  local dir = self.data_root .. "/actors/" .. name .. "/training_data"
  local removed = {}
  if not core.stat("/proc/self") then return removed end
  for _, f in ipairs(core.listdir(dir) or {}) do
    local pid = f:match("^%..+%.tmp%.(%d+)%.%d+$")
    if pid and not core.stat("/proc/" .. pid) then
      local st = core.stat(dir .. "/" .. f)
      if st and st.type == "file" and os.remove(dir .. "/" .. f) then
        removed[#removed + 1] = f
      end
    end
  end
  return removed
end

-- This process's pid (Linux /proc), read once; nil elsewhere.
local mypid
local function my_pid()
  if mypid == nil then
    local f = io.open("/proc/self/stat", "r")
    mypid = f and f:read("a"):match("^(%d+)") or false
    if f then f:close() end
  end
  return mypid or nil
end

--- A run's claim on an actor's transfers: the file `{manifest}.claim`
-- holding "pid token", written and checked under the manifest's lock and
-- removed by its owner when the actor's last transfer of the run has
-- landed and been recorded. Another run (another process, or another
-- Sync:run in this one) finding a live claim skips the actor ("busy"),
-- so two runs share the work and no file moves twice. A claim whose pid
-- is no longer running (a killed run) is void. Claims are per host: runs
-- on several hosts split actors with --shard.
function Sync:claim_path(m)
  return m:path() .. ".claim"
end

-- Whether the claim file at `path` belongs to another live run.
local function claim_busy(path, token)
  local f = io.open(path, "r")
  if not f then return false end
  local text = f:read("a") or ""
  f:close()
  local pid, tok = text:match("^(%d+) (%S+)")
  if not pid or tok == token then return false end
  if core.stat("/proc/self") and not core.stat("/proc/" .. pid) then return false end
  return true, pid
end

-- Write our claim to `path`: a temp file renamed into place, so a reader
-- sees all of it or none, but not fsynced -- a claim only matters while
-- its run is alive (a crash voids it), so it need not survive one.
-- -> true | nil, msg, code.
local function write_claim(path, token)
  local tmp = path .. ".tmp." .. (my_pid() or "0")
  local f, msg = io.open(tmp, "w")
  if not f then return nil, "write claim " .. path .. ": " .. tostring(msg), "EIO" end
  local ok, wmsg = f:write((my_pid() or "0") .. " " .. token .. "\n")
  local okc, cmsg = f:close()
  if not ok or not okc then
    os.remove(tmp)
    return nil, "write claim " .. path .. ": " .. tostring(wmsg or cmsg), "EIO"
  end
  local okr, rmsg = os.rename(tmp, path)
  if not okr then
    os.remove(tmp)
    return nil, "write claim " .. path .. ": " .. tostring(rmsg), "EIO"
  end
  return true
end

-- Remove `path` if it still holds our claim.
local function release_claim(path, token)
  local f = io.open(path, "r")
  if not f then return end
  local text = f:read("a") or ""
  f:close()
  if text:match("^%d+ (%S+)") == token then os.remove(path) end
end

--- Open, refresh and (unless o.dry_run) save one actor's manifest, and
-- queue its transfers into `state`. objects: the actor's full listing.
-- Failures are reported and counted; returns true | nil, msg, code.
function Sync:process_actor(name, objects, o, state)
  local r, T = o.reporter, state.totals
  -- Test seam: runs after the listing was taken, before the lock.
  if self.before_lock then self.before_lock(name) end
  -- a dry run never saves: no lock file, no lock (tdm.Manifest.open)
  local m, msg, code = manifest_mod().open(name, self.cfg,
                                           { read_only = o.dry_run })
  if not m then
    T.actor_errors = T.actor_errors + 1
    fail(r, name, nil, msg, code)
    return nil, msg, code
  end
  local claim = o.direction and not o.dry_run and self:claim_path(m)
  local ok, res = pcall(function()
    if claim then
      local busy, pid = claim_busy(claim, state.token)
      if busy then
        T.busy_skipped = T.busy_skipped + 1
        emit(r, { actor = name, action = "claim", result = "busy, skipped",
                  error = "another run (pid " .. pid .. ") is transferring this actor's files" })
        return { true }
      end
      -- A void claim (its run is gone) is removed under the lock.
      if core.stat(claim) then os.remove(claim) end
    end
    local rep, emsg, ecode = self:refresh(m, objects, { verify = o.verify, prune = o.prune,
                                                        prehash = state.prehash })
    if not rep then return { nil, emsg, ecode } end
    T.actors = T.actors + 1
    T.files_hashed = T.files_hashed + (rep.scan.hashed or 0)
    T.files_reused = T.files_reused + (rep.scan.reused or 0)
    T.bytes_hashed = T.bytes_hashed + (rep.scan.bytes_hashed or 0)
    report_refresh(r, name, rep)
    local jobs, held = {}, {}
    if o.direction then jobs, held = self:plan(m, name, objects, o) end
    if o.only then
      local have = {}
      for _, e in ipairs(m:get_all_images()) do have[e.filename] = e.status end
      for _, fn in ipairs(sorted_keys(o.only)) do
        if not have[fn] or have[fn] == "local_only" or have[fn] == "missing" then
          T.transfers_failed = T.transfers_failed + 1
          fail(r, name, fn, string.format("%s/%s: not in S3 (no object %s)", name, fn,
                                          self:key_for(name, fn)), "S3_NoSuchKey")
        elseif have[fn] == "synced" then
          emit(r, { actor = name, file = fn, action = "download", result = "already synced" })
        end
      end
    end
    for _, h in ipairs(held) do
      emit(r, { actor = name, file = h.file, action = "hold", result = "skipped",
                error = h.reason })
    end
    if not o.dry_run then
      for _, f in ipairs(self:remove_stale_temps(name)) do
        emit(r, { actor = name, file = f, action = "clean", result = "removed stale temp file" })
      end
    end
    if claim and #jobs > 0 then
      local okc, cmsg, ccode = write_claim(claim, state.token)
      if not okc then return { nil, cmsg, ccode } end
      state.claims[name] = claim
    end
    local created = not m:exists()
    if o.dry_run then
      local would = m:dirty()
      emit(r, { actor = name, action = "manifest",
                result = would and (created and "would create" or "would update")
                         or "unchanged" })
      if would then T.manifests_written = T.manifests_written + 1
      else T.manifests_unchanged = T.manifests_unchanged + 1 end
    else
      -- Written in the background (state.saver holds the lock until the
      -- new version is durable); a failed write is reported at the end.
      local saved, written, sc = m:save_async(state.saver)
      if not saved then return { nil, written, sc } end
      if written then
        T.manifests_written = T.manifests_written + 1
        if created then T.manifests_created = T.manifests_created + 1 end
        state.counted[name] = created and "created" or "written"
      else
        T.manifests_unchanged = T.manifests_unchanged + 1
      end
      emit(r, { actor = name, action = "manifest",
                result = written and (created and "created" or "updated") or "unchanged" })
    end
    local stats = m:statistics()
    state.final[name] = stats
    for _, j in ipairs(jobs) do
      j.actor = name
      if o.dry_run then
        emit(r, { actor = name, file = j.file, action = j.op == "get" and "download"
                  or "upload", result = "planned", status = j.why })
      else
        state.queue[#state.queue + 1] = j
      end
      state.planned = state.planned + 1
    end
    return { true }
  end)
  m:close()
  if not ok then error(res, 0) end
  if not res[1] then
    T.actor_errors = T.actor_errors + 1
    fail(r, name, nil, res[2], res[3])
    return nil, res[2], res[3]
  end
  return true
end

--- Apply the finished transfers `done` (list of { job, result }) of actor
-- `name` to its manifest: each landed file becomes a fact, and the
-- manifest is saved. When an entry changed since its transfer was planned
-- (another process recorded something meanwhile), the transfer's result
-- may be older than that record: the local file is hashed and the object
-- asked for (HEAD) instead. Returns true | nil, msg, code.
function Sync:apply_results(name, done, saver)
  local m, msg, code = manifest_mod().open(name, self.cfg)
  if not m then return nil, msg, code end
  local ok, res = pcall(function()
    for _, d in ipairs(done) do
      local j, res = d[1], d[2]
      -- Both sides are facts now: the bytes just moved are on both, with
      -- the MD5 the transfer verified (a reopened manifest knows an
      -- out_of_sync entry's S3 MD5 only from this report).
      local st = core.stat(j.path)
      local loc = { md5 = res.md5, size = res.bytes,
                    mtime = st and st.mtime or core.now() }
      local s3f
      if j.op == "get" then
        s3f = j.obj and s3_fact(j.obj) or { size = res.bytes }
        s3f.md5 = res.md5
      else
        s3f = { md5 = res.md5, etag = res.etag, size = res.bytes,
                mtime = core.now() }
      end
      local facts = { ["local"] = loc, s3 = s3f }
      local cur = m:get_image(j.file)
      if j.was and (not cur or cur.status ~= j.was.status
                    or cur.s3_md5 ~= j.was.s3_md5 or cur.local_md5 ~= j.was.local_md5) then
        local now_s3, hmsg, hcode = self:confirm_s3(j.key)
        if now_s3 == nil then return { nil, hmsg, hcode } end
        facts = { ["local"] = core.stat(j.path) and true or false, s3 = now_s3 }
      end
      local okk, emsg, ecode = true, nil, nil
      if cur or facts["local"] or facts.s3 then
        okk, emsg, ecode = m:update_image(j.file, facts)
      end
      if not okk and ecode == "ENOENT" then
        facts.filename = j.file
        okk, emsg, ecode = m:add_image(facts)
      end
      if not okk then return { nil, emsg, ecode } end
    end
    local saved, emsg, ecode
    if saver then saved, emsg, ecode = m:save_async(saver)
    else saved, emsg, ecode = m:save() end
    if not saved then return { nil, emsg, ecode } end
    return { true, m:statistics() }
  end)
  m:close()
  if not ok then error(res, 0) end
  return table.unpack(res, 1, 3)
end

--- The run's transfer queue (started at the first transfer; cfg.jobs in
-- flight across all actors while the listing goes on) | nil, msg, code.
-- Each actor's manifest is saved as its last file lands (and at most every
-- SAVE_EVERY seconds before that).
function Sync:transfer_queue(o, state)
  if state.tx then return state.tx end
  local c, msg, code = self:client()
  if not c then return nil, msg, code end
  local r, T = o.reporter, state.totals
  local left, done, last_save, job_of = {}, {}, {}, {}
  state.left, state.done, state.job_of = left, done, job_of
  local function apply(actor)
    local list = done[actor]
    if not list or #list == 0 then return end
    done[actor] = {}
    last_save[actor] = core.now()
    local ok, emsg, ecode = self:apply_results(actor, list, state.saver)
    if not ok then
      T.actor_errors = T.actor_errors + 1
      fail(r, actor, nil, emsg, ecode)
    elseif type(emsg) == "table" then
      state.final[actor] = emsg
    end
  end
  state.apply = apply
  state.tx = c:queue {
    jobs = self.cfg.jobs,
    on_progress = function(files_done, _, bytes_done)
      if r then r:progress(files_done, state.planned, bytes_done, state.bytes_total) end
    end,
    on_complete = function(id, res)
      local j = job_of[id]
      job_of[id] = nil
      left[j.actor] = left[j.actor] - 1
      local verb = j.op == "get" and "download" or "upload"
      -- Requests retried (503/SlowDown, resets, truncated or damaged
      -- bodies): the run's summary reports them.
      T.retries = T.retries + math.max(0, (res.attempts or 1) - 1)
      if res.ok then
        if j.op == "get" then T.downloaded = T.downloaded + 1
        else T.uploaded = T.uploaded + 1 end
        T.bytes_transferred = T.bytes_transferred + (res.bytes or 0)
        done[j.actor] = done[j.actor] or {}
        table.insert(done[j.actor], { j, res })
        emit(r, { actor = j.actor, file = j.file, action = verb, result = "ok",
                  bytes = res.bytes, md5 = res.md5 })
      elseif res.code ~= "EINTR" and not core.interrupted() then
        T.transfers_failed = T.transfers_failed + 1
        fail(r, j.actor, j.file, string.format("%s %s/%s: %s", verb, j.actor, j.file,
             tostring(res.error)), res.code)
      end
      -- An actor's clock starts at its first landed file: one save when its
      -- last file lands, more only for an actor whose files take long.
      last_save[j.actor] = last_save[j.actor] or core.now()
      if left[j.actor] == 0 or core.now() - last_save[j.actor] > SAVE_EVERY then
        apply(j.actor)
      end
      if left[j.actor] == 0 then self:release_claim(state, j.actor) end
    end,
  }
  return state.tx
end

--- Hand the planned transfers (state.queue) to the run's queue and give it
-- a turn. When more than o.batch (BACKLOG) are waiting, the run waits for
-- them to drain to half: the listing never runs far ahead of the network.
function Sync:feed(o, state)
  local planned = state.queue
  if #planned == 0 then
    -- actors with nothing to move still give running transfers a turn
    if state.tx then state.tx:pump(0) end
    return true
  end
  state.queue = {}
  local r, T = o.reporter, state.totals
  local tx, msg, code = self:transfer_queue(o, state)
  if not tx then
    for _, j in ipairs(planned) do
      T.transfers_failed = T.transfers_failed + 1
      fail(r, j.actor, j.file, msg, code)
    end
    return nil, msg, code
  end
  for _, j in ipairs(planned) do
    local ok, emsg, ecode = true, nil, nil
    if j.op == "get" then
      local dir = j.path:match("^(.*)/[^/]*$")
      if not state.dirs[dir] then
        ok, emsg, ecode = core.mkdirs(dir)
        state.dirs[dir] = ok or nil
      end
    end
    if not ok then
      T.transfers_failed = T.transfers_failed + 1
      fail(r, j.actor, j.file, "download " .. j.actor .. "/" .. j.file .. ": " .. tostring(emsg), ecode)
    else
      local id = tx:add(j.op == "get" and { op = "get", key = j.key, path = j.path }
                        or { op = "put", path = j.path, key = j.key })
      state.job_of[id] = j
      state.left[j.actor] = (state.left[j.actor] or 0) + 1
      state.bytes_total = state.bytes_total + (j.size or 0)
    end
  end
  local most = o.batch or BACKLOG
  if tx:pending() > most then
    while tx:pending() > most // 2 do tx:pump(100) end
  else
    tx:pump(0)
  end
  return true
end

--- Give the run's transfers a turn of up to `ms` while the caller waits
-- for something else; false when there are none to give it to.
function Sync:pump_transfers(state, ms)
  return state.tx ~= nil and state.tx:pending() > 0 and (state.tx:pump(ms) or true)
end

--- Run the remaining transfers to the end, save what they changed and
-- give up the claims.
function Sync:finish_transfers(o, state)
  self:feed(o, state)
  local tx = state.tx
  if not tx then return end
  tx:wait()
  tx:close()
  state.tx = nil
  for actor in pairs(state.done) do state.apply(actor) end
  for actor in pairs(state.left) do self:release_claim(state, actor) end
end

--- Give up this run's claim on `actor` (see claim_path), if it has one.
function Sync:release_claim(state, actor)
  local path = state.claims[actor]
  if path then
    state.claims[actor] = nil
    release_claim(path, state.token)
  end
end

local function selected(o, name)
  if o.select then return o.select(name) end
  return true
end

-- "42" / "0042" / "00042" -> "0042": the id as manifests spell it.
local function norm_id(id)
  if not id then return nil end
  local s = id:gsub("^0+", "")
  if #s < 4 then s = string.rep("0", 4 - #s) .. s end
  return s
end

local function manifest_ids(dir)
  local ids = {}
  for _, f in ipairs(core.listdir(dir) or {}) do
    local id = f:match("^(%d+)_manifest%.json$")
    if id then ids[#ids + 1] = id end
  end
  table.sort(ids)
  return ids
end

--- A core.prehash over the local actor folders that a run over all
-- actors will have to hash (selected, and without a manifest unless
-- o.verify), sorted as the listing delivers them; nil when there are none.
function Sync:prehash_for(o)
  local actors_dir = self.data_root .. "/actors"
  local mdir = self.data_root .. "/actor_manifests/"
  local names = {}
  for _, name in ipairs(core.listdir(actors_dir) or {}) do
    if check_actor_name(name) and selected(o, name) and (o.verify or not
       core.stat(mdir .. norm_id(name:match("^(%d+)")) .. "_manifest.json")) then
      names[#names + 1] = name
    end
  end
  if #names == 0 then return nil end
  -- keys are {prefix}/{name}/{file}: S3 sorts by the name followed by "/"
  table.sort(names, function(a, b) return a .. "/" < b .. "/" end)
  local dirs = {}
  for i, name in ipairs(names) do
    dirs[i] = actors_dir .. "/" .. name .. "/training_data"
  end
  return core.prehash(dirs, math.min(self.cfg.jobs, cpu_count()), 32)
end

--- The bulk engine behind sync-manifests, pull-all, pull and push.
-- o = { direction = nil | "pull" | "push" | "both", repair, overwrite,
--   dry_run, verify, prune, reporter (tdm.cli reporter or nil),
--   actors = { names/ids } (list each one's prefix) or nil (all actors:
--   one listing of the whole prefix + local folders + manifests),
--   select = function(name) -> bool (--shard etc.), only = { file set },
--   batch = transfers waiting for a slot before the listing pauses for
--   them (default 1000) }
-- Returns the totals (a flat table for the summary) and per-actor final
-- statistics in totals._final (name -> statistics).
function Sync:run(o)
  -- Manifest saves are written by background threads (their fsyncs off
  -- this thread); <close> waits for them however the run ends.
  local saver <close> = core.manifest_saver(4)
  local state = { totals = new_totals(), queue = {}, final = {}, dirs = {},
                  saver = saver, counted = {},
                  planned = 0, bytes_total = 0, claims = {},
                  token = string.format("%s-%.6f-%s", my_pid() or "0", core.now(),
                                        tostring({}):match("0x(%x+)") or "0") }
  -- A run that raises closes its transfer queue (what is in flight is
  -- aborted, no temp file left, the client is free again) and gives up
  -- its claims. After a normal end both are already done.
  local _ <close> = setmetatable({}, { __close = function()
    if state.tx then state.tx:close(); state.tx = nil end
    for actor in pairs(state.claims) do self:release_claim(state, actor) end
  end })
  local T, r = state.totals, o.reporter
  local processed, processed_ids = {}, {}
  local function skip(key, why, actor)
    T.keys_skipped = T.keys_skipped + 1
    if actor then
      -- a sound actor's non-image object: not tracked, not an error
      emit(r, { file = key, action = "skip", result = "ignored", error = why })
      return
    end
    -- A key tdm cannot map safely is bad input: reported (naming the
    -- whole key, which names the actor folder too), never turned into a
    -- path, and the run carries on but ends with exit 1.
    fail(r, nil, key, string.format("refused S3 key '%s': %s", key, why), "EBADKEY")
  end
  local function process(name, objects)
    if processed[name] or core.interrupted() then return end
    processed[name] = true
    processed_ids[norm_id(name:match("^(%d+)"))] = true
    if not selected(o, name) then return end
    self:process_actor(name, objects, o, state)
    if r and not o.direction then r:progress(T.actors, nil, T.bytes_hashed) end
    if not o.dry_run then self:feed(o, state) end
  end

  if o.actors then
    for _, a in ipairs(o.actors) do
      if core.interrupted() then break end
      local name, msg, code = self:resolve_actor(a)
      if not name then
        T.actor_errors = T.actor_errors + 1
        fail(r, tostring(a), nil, msg, code)
      else
        local objects, lmsg, lcode = self:list_actor(name, skip)
        if not objects then
          T.actor_errors = T.actor_errors + 1
          fail(r, name, nil, "listing " .. self:key_for(name, "") .. ": " .. tostring(lmsg), lcode)
        elseif next(objects) == nil and not self:exists_locally(name) then
          -- A name that exists nowhere (a typo) gets no empty manifest.
          T.actor_errors = T.actor_errors + 1
          fail(r, name, nil, string.format("unknown actor %s: no manifest, no local folder, "
               .. "no objects under %s", name, self:key_for(name, "")), "ENOACTOR")
        else
          process(name, objects)
        end
      end
    end
  else
    -- Hash ahead, on every core, the local actors the scans will hash
    -- (no manifest yet, or --verify), in listing order, while the listing
    -- is being fetched and between its pages.
    local prehash <close> = self:prehash_for(o)
    state.prehash = prehash
    -- Transfers already queued go on while the next page is awaited.
    local listed, msg, code = self:each_listed_actor(self.list_root, process, skip,
      function() return self:pump_transfers(state, 20) end)
    if not listed then
      -- Without the complete listing nobody else can be judged: report and stop.
      T.actor_errors = T.actor_errors + 1
      fail(r, nil, nil, "listing s3://" .. self.cfg.bucket .. "/" .. self.list_root
           .. ": " .. tostring(msg), code)
    else
      local actors_dir = self.data_root .. "/actors"
      local names = core.listdir(actors_dir) or {}
      table.sort(names)
      for _, name in ipairs(names) do
        local st = core.stat(actors_dir .. "/" .. name)
        if st and st.type == "dir" and not processed[name] then
          if check_actor_name(name) then
            process(name, {})
          elseif name:sub(1, 1) ~= "." then
            emit(r, { file = actors_dir .. "/" .. name, action = "skip",
                      result = "not an actor folder" })
          end
        end
      end
      local mdir = self.data_root .. "/actor_manifests"
      for _, id in ipairs(manifest_ids(mdir)) do
        if not processed_ids[norm_id(id)] and not core.interrupted() then
          local path = mdir .. "/" .. id .. "_manifest.json"
          local doc, lmsg, lcode = manifest_mod().load(path, self.cfg)
          local name = doc and doc.character_name
          if not doc then
            if selected(o, id) then
              T.actor_errors = T.actor_errors + 1
              fail(r, id, nil, lmsg, lcode)
            end
          elseif type(name) ~= "string" or not check_actor_name(name)
                 or norm_id(name:match("^(%d+)")) ~= norm_id(id) then
            if selected(o, id) then
              T.actor_errors = T.actor_errors + 1
              fail(r, id, nil, string.format("%s: character_name '%s' does not name actor %s",
                   path, tostring(name), id), "BADMANIFEST")
            end
          else
            process(name, {})
          end
        end
      end
    end
  end
  if not o.dry_run then self:finish_transfers(o, state) end
  for _, f in ipairs(saver:wait()) do
    local how = state.counted[f.actor]
    if how then
      T.manifests_written = T.manifests_written - 1
      if how == "created" then T.manifests_created = T.manifests_created - 1 end
      state.counted[f.actor] = nil
    end
    state.final[f.actor] = nil
    T.actor_errors = T.actor_errors + 1
    fail(r, f.actor, nil, f.message, f.code)
  end
  for actor in pairs(state.claims) do self:release_claim(state, actor) end
  for _, stats in pairs(state.final) do
    T.synced = T.synced + (stats.training_synced_count or 0)
    T.local_only = T.local_only + (stats.training_local_only_count or 0)
    T.s3_only = T.s3_only + (stats.training_s3_only_count or 0)
    T.out_of_sync = T.out_of_sync + (stats.training_out_of_sync_count or 0)
    T.missing = T.missing + (stats.training_missing_count or 0)
  end
  if o.dry_run then T.planned = state.planned end
  T.listings = self.listings or 0   -- S3 listings made (one for a whole run)
  T._final = state.final
  return T
end

--- The seed's auto_initialize_manifest: list the actor's S3 prefix, scan
-- its local folder, create or update its manifest so every object and
-- every local image has an entry. opts: { dry_run, verify, prune }.
-- -> report { actor, created, written, would_write, scan, s3_added,
-- s3_gone, statistics } | nil, msg, code.
function Sync:auto_initialize_manifest(actor, opts)
  opts = opts or {}
  local name, msg, code = self:resolve_actor(actor)
  if not name then return nil, msg, code end
  local objects
  objects, msg, code = self:list_actor(name)
  if not objects then return nil, msg, code end
  if next(objects) == nil and not self:exists_locally(name) then
    return nil, string.format("unknown actor %s: no manifest, no local folder, no objects "
                              .. "under %s", name, self:key_for(name, "")), "ENOACTOR"
  end
  if self.before_lock then self.before_lock(name) end
  local m
  m, msg, code = manifest_mod().open(name, self.cfg,
                                     { read_only = opts.dry_run })
  if not m then return nil, msg, code end
  local ok, res = pcall(function()
    local rep, emsg, ecode = self:refresh(m, objects, opts)
    if not rep then return { nil, emsg, ecode } end
    rep.actor = name
    rep.created = not m:exists()
    rep.would_write = m:dirty()
    rep.written = false
    if not opts.dry_run then
      local saved, written, sc = m:save()
      if not saved then return { nil, written, sc } end
      rep.written = written
    end
    rep.statistics = m:statistics()
    return { rep }
  end)
  m:close()
  if not ok then error(res, 0) end
  return table.unpack(res, 1, 3)
end

--- The seed's sync_actor_training_data: refresh the actor's manifest, then
-- move files: direction "pull" (S3 -> local: s3_only, and out_of_sync
-- with repair), "push" (local -> S3: local_only, and out_of_sync with
-- overwrite) or "both". delete = true also removes, after the transfers,
-- what the other side does not have (pull: local-only files; push:
-- S3-only objects) and their entries. dry_run = true changes nothing.
-- opts.only = { filenames } restricts the transfers to those files.
-- -> totals (as Sync:run) | nil, msg, code.
function Sync:sync_actor_training_data(actor, opts)
  opts = opts or {}
  local direction = opts.direction or "both"
  if direction ~= "pull" and direction ~= "push" and direction ~= "both" then
    error("sync_actor_training_data: direction must be pull, push or both, got '"
          .. tostring(direction) .. "'", 2)
  end
  if opts.delete and direction == "both" then
    error("sync_actor_training_data: delete needs direction pull or push", 2)
  end
  local name, msg, code = self:resolve_actor(actor)
  if not name then return nil, msg, code end
  local only
  if opts.only then
    only = {}
    for _, fn in ipairs(opts.only) do only[fn] = true end
  end
  local T = self:run({ direction = direction, repair = opts.repair,
                       overwrite = opts.overwrite, dry_run = opts.dry_run,
                       verify = opts.verify, actors = { name }, only = only,
                       reporter = opts.reporter })
  if opts.delete and not opts.dry_run and T.actor_errors == 0
     and T.transfers_failed == 0 then
    local ok, dmsg, dcode = self:delete_unmatched(name, direction, opts.reporter, T)
    if not ok then return nil, dmsg, dcode end
  end
  return T
end

--- After a pull (push) with delete: remove the local (S3) copies of what
-- the other side lacks, and their entries, under the manifest's lock.
function Sync:delete_unmatched(name, direction, r, T)
  local m, msg, code = manifest_mod().open(name, self.cfg)
  if not m then return nil, msg, code end
  local ok, res = pcall(function()
    local victims = {}
    for _, e in ipairs(m:get_all_images()) do
      if (direction == "pull" and e.status == "local_only")
         or (direction == "push" and e.status == "s3_only") then
        victims[#victims + 1] = e.filename
      end
    end
    if #victims == 0 then return { true } end
    if direction == "pull" then
      for _, fn in ipairs(victims) do
        local okr, rerr = os.remove(self:local_path(name, fn))
        if okr or not core.stat(self:local_path(name, fn)) then
          m:remove_image(fn)
          T.deleted = T.deleted + 1
          emit(r, { actor = name, file = fn, action = "delete-local", result = "ok" })
        else
          fail(r, name, fn, "delete " .. self:local_path(name, fn) .. ": " .. tostring(rerr), "EIO")
        end
      end
    else
      local c, cmsg, ccode = self:client()
      if not c then return { nil, cmsg, ccode } end
      local keys, by_key = {}, {}
      for _, fn in ipairs(victims) do
        local k = self:key_for(name, fn)
        keys[#keys + 1] = k
        by_key[k] = fn
      end
      local res, dmsg, dcode = c:delete_many(keys)
      if not res then return { nil, dmsg, dcode } end
      for _, k in ipairs(res.deleted or {}) do
        m:remove_image(by_key[k])
        T.deleted = T.deleted + 1
        emit(r, { actor = name, file = by_key[k], action = "delete-s3", result = "ok" })
      end
      for _, e in ipairs(res.errors or {}) do
        fail(r, name, by_key[e.key], "delete " .. tostring(e.key) .. ": " .. tostring(e.message), e.code)
      end
    end
    local saved, smsg, scode = m:save()
    if not saved then return { nil, smsg, scode } end
    return { true }
  end)
  m:close()
  if not ok then error(res, 0) end
  return table.unpack(res, 1, 3)
end

return Sync
