--- tdm.sync_transfer -- part of tdm.Sync (lua/tdm/sync.lua installs
-- these methods): the transfer pipeline of a run. One queue for the whole
-- run keeps cfg.jobs transfers in flight across actors while the listing
-- goes on; each landed file is recorded in its actor's manifest.
local core = require "tdm.core"
local report = require "tdm.sync_report"

local emit, fail = report.emit, report.fail

local function manifest_mod() return require "tdm.manifest" end

local Sync = {}

-- Transfers waiting for a slot before the listing pauses for them (the
-- queue keeps cfg.jobs in flight, across actors, as the listing goes on).
local BACKLOG = 1000
-- Save a manifest at most this often (seconds) while its files land.
local SAVE_EVERY = 2.0

-- `name` to its manifest: each landed file becomes a fact, and the
-- manifest is saved. When an entry changed since its transfer was planned
-- (another process recorded something meanwhile), the transfer's result
-- may be older than that record: the local file is hashed and the object
-- asked for (HEAD) instead. Returns true | nil, msg, code.
function Sync:apply_results(name, done, saver)
  local m <close>, mmsg, mcode = manifest_mod().open(name, self.cfg)
  if not m then return nil, mmsg, mcode end
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
      s3f = j.obj and self.s3_fact(j.obj) or { size = res.bytes }
      s3f.md5 = res.md5
    else
      s3f = { md5 = res.md5, etag = res.etag, size = res.bytes,
              mtime = core.now() }
    end
    local facts = { ["local"] = loc, s3 = s3f }
    -- what this ETag stands for, so the next listing needs no HEAD
    local etag = j.op == "get" and j.obj and j.obj.etag or res.etag
    local memo_src = j.op == "get" and (res.md5_source or "get") or "put"
    local cur = m:get_image(j.file)
    if j.was and (not cur or cur.status ~= j.was.status
                  or cur.s3_md5 ~= j.was.s3_md5 or cur.local_md5 ~= j.was.local_md5) then
      local now_s3, hmsg, hcode = self:confirm_s3(j.key)
      if now_s3 == nil then return nil, hmsg, hcode end
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
    if not okk then return nil, emsg, ecode end
    if etag and res.md5 and facts.s3 == s3f then
      m:set_s3_memo(j.file, etag, res.md5, memo_src)
    end
  end
  local saved, emsg, ecode
  if saver then saved, emsg, ecode = m:save_async(saver)
  else saved, emsg, ecode = m:save() end
  if not saved then return nil, emsg, ecode end
  return true, m:statistics()
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
      self:keep_final(state, actor, emsg, true)
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
        if j.op == "get" and res.md5_source == "none" then
          -- nothing S3 sent vouched for the bytes (an encrypted object
          -- without MD5 metadata or checksum): kept on its size, counted
          T.unverified = (T.unverified or 0) + 1
          emit(r, { actor = j.actor, file = j.file, action = "verify",
                    result = "size only",
                    error = "no MD5 or checksum from S3 to verify it" })
        end
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

return Sync
