--- tdm.sync_run -- part of tdm.Sync (lua/tdm/sync.lua installs these
-- methods): the bulk engine behind sync-manifests, pull-all, pull and
-- push. It walks the listing, the local folders and the manifests, and
-- for each actor refreshes its manifest and queues its transfers.
local core = require "tdm.core"
local report = require "tdm.sync_report"

local emit, fail = report.emit, report.fail
local sorted_keys, new_totals = report.sorted_keys, report.new_totals
local report_refresh = report.report_refresh

local Sync = {}

-- The summary's counts and the manifest statistics they sum.
local COUNTS = { synced = "training_synced_count", local_only = "training_local_only_count",
                 s3_only = "training_s3_only_count", out_of_sync = "training_out_of_sync_count",
                 missing = "training_missing_count" }

local function add_counts(T, c)
  for k in pairs(COUNTS) do T[k] = T[k] + (c[k] or 0) end
end

--- Record actor's manifest statistics for the summary: summed at once
-- when they are final, else (transfers or a manifest save still to come,
-- which may replace or drop them) kept as five numbers until the end, so
-- a run holds nothing per actor it is done with.
function Sync:keep_final(state, actor, stats, pending)
  local c = {}
  for k, field in pairs(COUNTS) do c[k] = stats[field] end
  if pending then state.final[actor] = c else add_counts(state.totals, c) end
end

local function manifest_mod() return require "tdm.manifest" end

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
  -- This run's claim on the actor's transfers (see Sync:claim_path),
  -- taken under the manifest's lock: first to see whether another run
  -- holds it (only when its file exists: a run that never transfers
  -- creates none), then, if it plans transfers, to keep.
  local claim
  local want_claim = o.direction and not o.dry_run
  local ok, res = pcall(function()
    if want_claim and core.stat(self:claim_path(m)) then
      local cmsg, ccode
      claim, cmsg, ccode = self:take_claim(m)
      if not claim and ccode == "LOCKED" then
        T.busy_skipped = T.busy_skipped + 1
        emit(r, { actor = name, action = "claim", result = "busy, skipped",
                  error = "another run is transferring this actor's files ("
                          .. cmsg .. ")" })
        return { true }
      end
      if not claim then return { nil, cmsg, ccode } end
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
      T.held_back = T.held_back + 1   -- in the summary, so -q still shows it
      emit(r, { actor = name, file = h.file, action = "hold", result = "skipped",
                error = h.reason })
    end
    if not o.dry_run then
      for _, f in ipairs(self:remove_stale_temps(name)) do
        emit(r, { actor = name, file = f, action = "clean", result = "removed stale temp file" })
      end
    end
    -- Kept until the actor's last transfer is recorded (release_claim).
    if want_claim and #jobs > 0 then
      if not claim then
        local cmsg, ccode
        claim, cmsg, ccode = self:take_claim(m)
        if not claim then return { nil, cmsg, ccode } end
      end
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
    self:keep_final(state, name, m:statistics(),
                    (#jobs > 0 and not o.dry_run) or state.counted[name] ~= nil)
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
  if claim and state.claims[name] ~= claim then claim:release() end
  if not ok then error(res, 0) end
  if not res[1] then
    T.actor_errors = T.actor_errors + 1
    fail(r, name, nil, res[2], res[3])
    return nil, res[2], res[3]
  end
  return true
end

--- Apply the finished transfers `done` (list of { job, result }) of actor

local function selected(o, name)
  if o.select then return o.select(name) end
  return true
end

-- "42" / "0042" / "00042" -> "0042": the id as manifests spell it.
local function norm_id(id)
  return id and (core.layout.id(id))
end

local function manifest_ids(dir)
  local ids = {}
  for _, f in ipairs(core.listdir(dir) or {}) do
    local _, digits = core.layout.manifest_id(f)
    if digits then ids[#ids + 1] = digits end
  end
  table.sort(ids)
  return ids
end

--- A core.prehash over the local actor folders that a run over all
-- actors will have to hash (selected, and without a manifest unless
-- o.verify), sorted as the listing delivers them; nil when there are none.
function Sync:prehash_for(o)
  local actors_dir = self.data_root .. "/actors"
  local names = {}
  for _, name in ipairs(core.listdir(actors_dir) or {}) do
    if self.check_actor_name(name) and selected(o, name) and (o.verify or not
       core.stat(assert(core.layout.manifest_path(self.data_root,
                                                  core.layout.actor_id(name))))) then
      names[#names + 1] = name
    end
  end
  if #names == 0 then return nil end
  -- keys are {prefix}/{name}/{file}: S3 sorts by the name followed by "/"
  table.sort(names, function(a, b) return a .. "/" < b .. "/" end)
  local dirs = {}
  for i, name in ipairs(names) do
    dirs[i] = assert(core.layout.actor_dir(self.data_root, name))
  end
  return core.prehash(dirs, self:hash_jobs(), 32)
end

--- The bulk engine behind sync-manifests, pull-all, pull and push.
-- o = { direction = nil | "pull" | "push" | "both", repair, overwrite,
--   dry_run, verify, prune, reporter (tdm.cli reporter or nil),
--   actors = { names/ids } (list each one's prefix) or nil (all actors:
--   one listing of the whole prefix + local folders + manifests),
--   select = function(name) -> bool (--shard etc.), only = { file set },
--   batch = transfers waiting for a slot before the listing pauses for
--   them (default 1000) }
-- Returns the totals (a flat table for the summary).
function Sync:run(o)
  -- Manifest saves are written by background threads (their fsyncs off
  -- this thread); <close> waits for them however the run ends.
  local saver <close> = core.manifest_saver(4)
  local state = { totals = new_totals(), queue = {}, final = {}, dirs = {},
                  saver = saver, counted = {},
                  planned = 0, bytes_total = 0, claims = {} }
  -- A run that raises closes its transfer queue (what is in flight is
  -- aborted, no temp file left, the client is free again) and gives up
  -- its claims. After a normal end both are already done.
  local _ <close> = setmetatable({}, { __close = function()
    if state.tx then state.tx:close(); state.tx = nil end
    for actor in pairs(state.claims) do self:release_claim(state, actor) end
    -- the s3_urls written are built on the bucket's region the run's
    -- client learned: remember it once manifests carry it or the whole
    -- bucket listed (a no-op run must not ask again every time); a dry
    -- run or a failed run changes nothing under the data root
    if not o.dry_run and (state.totals.manifests_written > 0
                          or state.listed_whole) then
      require("tdm.s3").remember_bucket_region(self.cfg)
    end
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
    -- A key outside any actor folder (another tool's README, a nested
    -- "folder", a name that is no safe file name) is never turned into a
    -- path: skipped with a warning naming the whole key, counted, and no
    -- error -- one stray object must not fail every run. audit reports
    -- it as a finding (bad_key).
    report.warn(r, { file = key, action = "skip", result = "stray key", error = why,
                     code = "EBADKEY" })
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
    -- Resolve every actor named, then list their folders concurrently,
    -- a bounded number at a time, and process them in the order given.
    local names, named = {}, {}
    for _, a in ipairs(o.actors) do
      if core.interrupted() then break end
      local name, msg, code = self:resolve_actor(a)
      if not name then
        T.actor_errors = T.actor_errors + 1
        fail(r, tostring(a), nil, msg, code)
      elseif not named[name] then
        named[name] = true
        names[#names + 1] = name
      end
    end
    local chunk = 4 * self:list_width()
    for first = 1, #names, chunk do
      if core.interrupted() then break end
      local some = table.move(names, first, math.min(first + chunk - 1, #names), 1, {})
      local listed, lmsg, lcode = self:list_actors(some, skip)
      for _, name in ipairs(some) do
        local objects = listed and listed[name]
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
      -- Without the complete listing nobody else can be judged: report and
      -- stop (an interrupt is no failure: the exit code says it).
      if code ~= "EINTR" then
        T.actor_errors = T.actor_errors + 1
        fail(r, nil, nil, "listing s3://" .. self.cfg.bucket .. "/" .. self.list_root
             .. ": " .. tostring(msg), code)
      end
    else
      state.listed_whole = true
      local actors_dir = self.data_root .. "/actors"
      local names = core.listdir(actors_dir) or {}
      table.sort(names)
      for _, name in ipairs(names) do
        local st = core.stat(actors_dir .. "/" .. name)
        if st and st.type == "dir" and not processed[name] then
          if self.check_actor_name(name) then
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
          elseif type(name) ~= "string" or not self.check_actor_name(name)
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
  for _, c in pairs(state.final) do add_counts(T, c) end
  if o.dry_run then T.planned = state.planned end
  T.listings = self.listings or 0   -- S3 listings made (one for a whole run)
  return T
end

return Sync
