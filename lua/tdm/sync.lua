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
--
-- This file: the Sync object, its names and keys, and the seed's named
-- methods. The rest of tdm.Sync lives by concern in
--   tdm.sync_list       the S3 listing, cut into per-actor groups
--   tdm.sync_reconcile  listing + scan + manifest -> facts; the plan
--   tdm.sync_transfer   the run's transfer queue; recording landed files
--   tdm.sync_run        the bulk engine (Sync:run)
--   tdm.sync_claim      claims on an actor's transfers; stale temp files
--   tdm.sync_report     events, failures and totals of a run
-- whose methods are installed into tdm.Sync below.
local core = require "tdm.core"
local config = require "tdm.config"
local report = require "tdm.sync_report"

local emit, fail = report.emit, report.fail

local Sync = {}
Sync.__index = Sync
Sync.__name = "tdm.Sync"

local layout = core.layout

--- Whether `name` is an image the manifests track (.jpg .jpeg .png .webp,
-- any case, not hidden) -- the core's rule (tdm.core.layout).
local is_image = layout.is_image_name
Sync.is_image = is_image

--- Whether `name` is a well-formed actor name ({digits}_{descriptor}, one
-- safe path component); returns true | nil, message.
local function check_actor_name(name)
  local id, msg = layout.actor_id(name)
  if not id then return nil, msg end
  return true
end
Sync.check_actor_name = check_actor_name

local function manifest_mod() return require "tdm.manifest" end
local function s3_mod() return require "tdm.s3" end

--- tdm.Sync.new([cfg]) -> a Sync bound to one configuration. The S3
-- client is made on first use.
function Sync.new(cfg)
  cfg = config.resolve(cfg)
  local prefix = (cfg.prefix or ""):gsub("^/+", ""):gsub("/+$", "")
  local self = setmetatable({
    cfg = cfg,
    prefix = prefix,
    list_root = prefix ~= "" and (prefix .. "/") or "",
    data_root = (cfg.data_root or "data"):gsub("(.)/+$", "%1"),
  }, Sync)
  return self
end

--- The S3 client for `role` (nil: transfers), made on first use | nil,
-- msg, code. A run keeps three: transfers, "list" (a page fetched in
-- the background) and "head" (confirmations made inside transfer
-- callbacks, while the transfer client is busy).
function Sync:client(role)
  local field = role and ("_" .. role .. "_client") or "_client"
  if not self[field] then
    local c, msg, code = s3_mod().client(self.cfg)
    if not c then return nil, msg, code end
    self[field] = c
  end
  return self[field]
end

--- The key of `filename` of actor `name`.
function Sync:key_for(name, filename)
  return (assert(layout.key(self.prefix, name, filename)))
end

--- The local file of `filename` of actor `name` (both checked names).
function Sync:local_path(name, filename)
  return (assert(layout.file_path(self.data_root, name, filename)))
end

--- Split an S3 key into actor name and filename, refusing anything that
-- cannot safely become a local path. Returns actor, filename | actor,
-- nil, reason (the actor is sound but the object is not an image) | nil,
-- nil, reason.
function Sync:split_key(key)
  return layout.split_key(self.prefix, key)
end

--- Whether actor `name` has a local folder or a manifest file.
function Sync:exists_locally(name)
  local id = layout.actor_id(name)
  return core.stat(self.data_root .. "/actors/" .. name) ~= nil
    or (id and core.stat(assert(layout.manifest_path(self.data_root, id))) ~= nil)
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
  local id, imsg = layout.id(s)
  if not id then return nil, imsg, "ENOACTOR" end
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
  local m <close>, mmsg, mcode = manifest_mod().open(name, self.cfg,
                                                     { read_only = opts.dry_run })
  if not m then return nil, mmsg, mcode end
  local rep, emsg, ecode = self:refresh(m, objects, opts)
  if not rep then return nil, emsg, ecode end
  rep.actor = name
  rep.created = not m:exists()
  rep.would_write = m:dirty()
  rep.written = false
  if not opts.dry_run then
    local saved, written, sc = m:save()
    if not saved then return nil, written, sc end
    rep.written = written
  end
  rep.statistics = m:statistics()
  return rep
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
  local m <close>, mmsg, mcode = manifest_mod().open(name, self.cfg)
  if not m then return nil, mmsg, mcode end
  local victims = {}
  for _, e in ipairs(m:get_all_images()) do
    if (direction == "pull" and e.status == "local_only")
       or (direction == "push" and e.status == "s3_only") then
      victims[#victims + 1] = e.filename
    end
  end
  if #victims == 0 then return true end
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
    if not c then return nil, cmsg, ccode end
    local keys, by_key = {}, {}
    for _, fn in ipairs(victims) do
      local k = self:key_for(name, fn)
      keys[#keys + 1] = k
      by_key[k] = fn
    end
    local res, dmsg, dcode = c:delete_many(keys)
    if not res then return nil, dmsg, dcode end
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
  if not saved then return nil, smsg, scode end
  return true
end

for _, part in ipairs { "tdm.sync_list", "tdm.sync_reconcile", "tdm.sync_transfer",
                        "tdm.sync_run", "tdm.sync_claim" } do
  for k, f in pairs(require(part)) do
    assert(Sync[k] == nil, "tdm.Sync: two parts define " .. k)
    Sync[k] = f
  end
end

return Sync
