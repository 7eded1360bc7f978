--- tdm.sync_reconcile -- part of tdm.Sync (lua/tdm/sync.lua installs
-- these methods): the seed's rules for one actor. The listing, the local
-- scan and the manifest are reconciled into facts (the core derives every
-- status from them), and the transfers that bring the actor in line are
-- planned. A listing never overrides newer manifest state: where the two
-- disagree, the object is asked for (HEAD).
local core = require "tdm.core"
local report = require "tdm.sync_report"

local sorted_keys = report.sorted_keys

local Sync = {}

--- Threads for hashing: hashing is CPU-bound, so more threads than CPUs
-- only add overhead (measured 3-4x slower scans with 16 threads on 2
-- CPUs), while cfg.jobs is sized for network transfers.
function Sync:hash_jobs()
  return math.min(self.cfg.jobs, core.cpu_count())
end

--- The S3 fact of a listing (or HEAD) object, as manifests record it.
-- The one place that reads a listing object's fields.
local function s3_fact(obj)
  return { md5 = obj.md5, etag = obj.etag, size = obj.size,
           mtime = obj.last_modified }
end
Sync.s3_fact = s3_fact

-- Slack (seconds) between the wall clock and file modification times
-- (the kernel stamps files from a coarser clock).
local CLOCK_SLACK = 1.0

-- Whether the listing's view of entry `e` (obj, or nil when unlisted)
-- disagrees with what the manifest knows of the S3 object. `md5`: what
-- the listed ETag stands for when a HEAD/GET showed it (the sidecar's
-- memo); else the listing's own "md5", only what a plain ETag would be.
local function listing_disagrees(e, obj, md5)
  if not e then return obj ~= nil end
  if (obj ~= nil) ~= (e.s3_present == true) then return true end
  if obj and e.s3_etag and obj.etag then return obj.etag ~= e.s3_etag end
  md5 = md5 or (obj and obj.md5)
  if obj and e.s3_md5 and md5 then return md5 ~= e.s3_md5 end
  return false
end

--- The S3 fact of `key` as it is now (HEAD): fact table, or false when
-- the object does not exist | nil, msg, code. The HEAD answer itself is
-- the second value of a fact (its md5_source, checksum).
function Sync:confirm_s3(key)
  -- Its own client: confirmations also run inside the transfer queue's
  -- on_complete, while the main client is busy.
  local c, msg, code = self:client("head")
  if not c then return nil, msg, code end
  self.confirmations = (self.confirmations or 0) + 1
  local h, hmsg, hcode = c:head(key)
  if h then return s3_fact(h), h end
  if hcode == "S3_NoSuchKey" or hcode == "S3_NotFound" then return false end
  return nil, hmsg, hcode
end

--- A listing's fact for local entry `e` of open manifest `m` (issue 18): a
-- listing shows no encryption, so its ETag is a change token, an MD5 only
-- when it equals the local file's MD5 or when a HEAD/GET has shown which
-- MD5 goes with it (remembered in the manifest's sidecar: m:s3_memo).
-- Otherwise the object is asked for once (HEAD: MD5 metadata, a checksum
-- compared with the local file's, or the ETag of an unencrypted object)
-- and the answer remembered. -> fact | nil, msg, code.
function Sync:listed_fact(m, name, obj, e)
  local fact = s3_fact(obj)
  local lmd5 = e and e.local_md5
  if not lmd5 or (obj.md5 and obj.md5 == lmd5) then return fact end
  local known = obj.etag and m:s3_memo(e.filename, obj.etag)
  if known then
    fact.md5 = known
    return fact
  end
  -- a multipart ETag the local file has (part-wise MD5s, the part sizes
  -- clients use): that is the object, remembered; else ask (HEAD), as an
  -- encrypted object's multipart ETag says nothing
  if obj.etag and obj.etag:find("-", 1, true) and
     require("tdm.s3").etag_match(self:local_path(name, e.filename),
                                  obj.etag, lmd5) then
    fact.md5 = lmd5
    m:set_s3_memo(e.filename, obj.etag, lmd5, "multipart-etag")
    return fact
  end
  local now, h, code = self:confirm_s3(self:key_for(name, e.filename))
  if now == nil then return nil, h, code end
  if not now or now.etag ~= obj.etag then return now end  -- changed since
  fact.md5 = nil
  local src = h.md5_source
  if h.md5 then
    fact.md5 = h.md5
  elseif h.checksum and src == h.checksum_algorithm then
    local mine = require("tdm.s3").checksum_file(
      self:local_path(name, e.filename), src)
    if mine == h.checksum then fact.md5 = lmd5 end
  end
  if fact.md5 and obj.etag then
    m:set_s3_memo(e.filename, obj.etag, fact.md5, src)
  end
  return fact
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
  local scan, msg, code = m:scan_local({ verify = opts.verify or false,
                                         jobs = self:hash_jobs(),
                                         prehash = opts.prehash })
  if not scan then return nil, msg, code end
  local rep = { scan = scan, s3_added = {}, s3_gone = {}, pruned = {},
                confirmed = {} }
  local name = m:actor_name()
  -- The S3 fact of `fn` as the listing has it, or as S3 has it now when
  -- the listing is older than the manifest and disagrees with entry e.
  local function s3_view(fn, e)
    local obj = objects[fn]
    local memo = e and obj and obj.etag and m:s3_memo(fn, obj.etag)
    if newer and listing_disagrees(e, obj, memo) then
      rep.confirmed[#rep.confirmed + 1] = fn
      return self:confirm_s3(self:key_for(name, fn))
    end
    if not obj then return false end
    return self:listed_fact(m, name, obj, e)
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

--- Whether a local file must not be uploaded: named for another actor,
-- empty, or not JPEG/PNG/WebP bytes (the core's rules). Such a file is
-- added to `held` with the reason, never uploaded silently.
function Sync:unfit_for_upload(m, fn, path, held)
  local layout = core.layout
  local why
  if layout.foreign_file(fn, m:actor_id()) then
    why = string.format("not uploaded: named for another actor (%s), not %s",
                        fn:match("^(%d+)"), m:actor_id())
  else
    local ok, msg, code = core.image_type(path)
    if not ok and code == "EBADIMAGE" then
      why = "not uploaded: " .. msg:gsub("^.*/", "")
    end
  end
  if why then held[#held + 1] = { file = fn, reason = why } end
  return why ~= nil
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
                                               and o.direction == "push"))
             and not self:unfit_for_upload(m, fn, path, held) then
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


return Sync
