--- tdm.audit -- the seed's "Accountability": every training image must be
-- accounted for in its actor's manifest. Finds what is not, per actor,
-- and (with fix) applies the safe fixes; never deletes data.
--
--   local audit = require "tdm.audit"
--   local summary, findings = audit.run(cfg, { fix = false, verify = false },
--                                       reporter, selected)
--
-- Finding kinds (one per file and problem; the first that applies wins,
-- in this order for an entry: missing, hash_mismatch, out_of_sync,
-- stale_manifest):
--   orphan         a local image the manifest does not list
--   untracked_s3   an S3 object (image, sound key) no manifest lists
--   missing        an entry whose file exists neither locally nor in S3
--   hash_mismatch  the local file's MD5 differs from the one the manifest
--                  recorded for it (the file changed behind tdm's back)
--   out_of_sync    local file and S3 object both exist, MD5s differ
--   stale_manifest stored values differ from what the core derives: the
--                  statistics, an entry's status given what is really on
--                  disk and in the bucket, or (facts unchanged) its
--                  size_mb, modified_date, local_path or s3_url
--   no_actor       a manifest with no local actor folder and no objects
--   legacy_file    a leftover training_data/response.json (tdm-lua migrate)
--   stray_file     a non-image file (or a non-file named like an image) in
--                  training_data/, or a non-actor entry in actors/
--   bad_key        an S3 key that cannot be mapped to an actor and an image
--                  file safely (no actor level, nested, bad or hostile
--                  names, not an image)
--   bad_manifest   a manifest that does not parse or validate, or names
--                  another actor than its file (both ids named)
--   bad_image      a local file named like an image that is empty or whose
--                  bytes are not JPEG, PNG or WebP (push holds it back)
--   foreign_file   an image named for another actor ({other id}_...) in
--                  this actor's folder or manifest (push holds it back)
--
-- One streamed listing of the whole prefix (keys come sorted, so each
-- actor's objects arrive together and only one actor is held in memory);
-- local scans reuse the manifest's hashes when size and mtime vouch for
-- them (opts.verify re-hashes everything).
--
-- Without fix nothing at all is created or written: manifests are opened
-- read-only (no lock file, no lock; see tdm.Manifest.open), brought up to
-- date in memory and closed unsaved. Actors without a manifest are judged
-- without opening one.
--
-- fix: orphans and untracked S3 objects are added, facts recorded and
-- stale fields recomputed, and the manifest saved. Nothing is deleted,
-- locally or in S3; missing, out_of_sync, legacy, stray, bad keys and bad
-- manifests are left for a person (or pull/push/migrate) to resolve.
local core = require "tdm.core"
local layout = core.layout

local audit = {}

audit.KINDS = { "orphan", "untracked_s3", "missing", "hash_mismatch",
                "out_of_sync", "stale_manifest", "no_actor", "legacy_file",
                "stray_file", "bad_key", "bad_manifest", "bad_image",
                "foreign_file" }

-- Kinds that --fix resolves in the manifest.
local FIXABLE = { orphan = true, untracked_s3 = true, stale_manifest = true }

local LEGACY_NAME = "response.json"

local function one_line(s)
  return (tostring(s):gsub("[%c]+", " "))
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

local function padded_id(name)
  return (layout.actor_id(name))
end

-- An audit run: the configuration, the Sync helper (key splitting, the
-- streamed listing, refresh), the reporter and the counts.
local Run = {}
Run.__index = Run

local function new_run(cfg, opts, reporter, selected)
  local Sync = require "tdm.sync"
  local sync = Sync.new(cfg)
  local counts = {}
  for _, k in ipairs(audit.KINDS) do counts[k] = 0 end
  return setmetatable({
    cfg = cfg, opts = opts or {}, r = reporter, sync = sync, Sync = Sync,
    root = sync.data_root, selected = selected or function() return true end,
    fix = (opts or {}).fix and not (opts or {}).dry_run,
    counts = counts, total = 0, fixed = 0, actors = 0, claimed = {},
  }, Run)
end

--- Report one finding.
function Run:finding(kind, actor, file, detail, fixed)
  assert(self.counts[kind], "unknown finding kind " .. tostring(kind))
  self.counts[kind] = self.counts[kind] + 1
  self.total = self.total + 1
  if fixed then self.fixed = self.fixed + 1 end
  if self.r then
    self.r:event({ actor = actor, file = file, action = kind, kind = kind,
                   result = one_line(detail) .. (fixed and " (fixed)" or ""),
                   fixed = fixed or false })
  end
end

function Run:manifest_path(id)
  return (assert(layout.manifest_path(self.root, id)))
end

function Run:training_dir(name)
  return (assert(layout.actor_dir(self.root, name)))
end

-- The local folder's files that are not images the manifest tracks:
-- legacy response.json and stray files. Returns the set of image names
-- that are regular files.
function Run:check_folder(name)
  local dir = self:training_dir(name)
  local images = {}
  local names = core.listdir(dir)
  if not names then return images end
  table.sort(names)
  for _, f in ipairs(names) do
    local st = core.stat(dir .. "/" .. f)
    local kind = st and st.type or "gone"
    if f == LEGACY_NAME and kind == "file" then
      self:finding("legacy_file", name, f,
                   "legacy response.json (tdm-lua migrate turns it into manifest entries)")
    elseif not layout.is_image_name(f) then
      self:finding("stray_file", name, f, kind == "file"
                   and "not an image file" or ("not an image file (" .. kind .. ")"))
    elseif kind ~= "file" then
      self:finding("stray_file", name, f,
                   "named like an image but is a " .. kind .. ", not a regular file")
    else
      images[f] = true
      self:check_image(name, f, dir .. "/" .. f)
    end
  end
  return images
end

-- A local image file's name and bytes: another actor's name, an empty
-- file or bytes that are not an image are findings (push holds them).
function Run:check_image(name, f, path)
  local id = layout.actor_id(name)
  if id and layout.foreign_file(f, id) then
    self:finding("foreign_file", name, f, string.format(
      "named for another actor (%s), in actor %s's folder", f:match("^(%d+)"), id))
  end
  local ok, msg, code = core.image_type(path)
  if not ok and code == "EBADIMAGE" then
    self:finding("bad_image", name, f, (msg:gsub("^.*/", "")))
  end
end

-- An actor with no manifest, not fixing: every local image is an orphan,
-- every object not also local is untracked. No manifest is opened.
function Run:judge_unmanifested(name, objects, images)
  for _, f in ipairs(sorted_keys(images)) do
    self:finding("orphan", name, f, objects[f]
                 and "local image (also in S3) with no manifest"
                 or "local image with no manifest")
  end
  for _, f in ipairs(sorted_keys(objects)) do
    if not images[f] then
      self:finding("untracked_s3", name, f, "S3 object with no manifest")
    end
  end
end

-- The local MD5 the manifest recorded for entry `b` (as read), or nil.
local function recorded_local_md5(b, raw_status)
  if b.local_md5 then return b.local_md5 end
  if (raw_status == "synced" or raw_status == "local_only")
     and b.md5_hash and b.md5_hash ~= "" then
    return b.md5_hash
  end
  return nil
end

-- Fields the core derives from an entry's facts. When the facts did not
-- change (same MD5, size and time), a stored value that differs from the
-- one the core derives now is stale. Returns a list of descriptions.
local DERIVED = { "size_mb", "modified_date", "local_path", "s3_url" }
local function stale_fields(b, e)
  local out = {}
  if b.md5_hash ~= e.md5_hash or b.size_bytes ~= e.size_bytes
     or b.modified_timestamp ~= e.modified_timestamp then
    return out
  end
  for _, k in ipairs(DERIVED) do
    if b[k] ~= e[k] then
      out[#out + 1] = string.format("%s %s stored, %s derived", k,
                                    tostring(b[k]), tostring(e[k]))
    end
  end
  return out
end

--- Audit one actor: its folder, its manifest and its objects (filename ->
-- listing object, the actor's complete listing).
function Run:audit_actor(name, objects)
  self.actors = self.actors + 1
  local id = padded_id(name)
  if id then self.claimed[id] = true end
  local images = self:check_folder(name)
  local mpath = id and self:manifest_path(id)
  local mfile = mpath and mpath:match("[^/]*$")
  local exists = mpath and core.stat(mpath)
  if not exists and not self.fix then
    return self:judge_unmanifested(name, objects, images)
  end
  local Manifest = require "tdm.manifest"
  local raw_status = {}
  if exists then
    local doc, err, code = Manifest.load(mpath, self.cfg)
    if not doc then
      -- --fix repairs a manifest naming another actor only when the
      -- intent is unambiguous (the core decides; see docs/manifest.md)
      local fixed = self.fix and code == "BADMANIFEST" and
        core.manifest_repair_identity(name, { data_root = self.cfg.data_root,
                                              lock_timeout = self.cfg.lock_timeout })
      self:finding("bad_manifest", name, mfile, err or code, fixed or false)
      return
    end
    for _, e in ipairs(type(doc.training_data) == "table" and doc.training_data or {}) do
      if type(e) == "table" and type(e.filename) == "string" then
        raw_status[e.filename] = e.status
      end
    end
  end
  local m, err, code = Manifest.open(name, self.cfg,
                                    { read_only = not self.fix })
  if not m then
    if code == "BADMANIFEST" or code == "ENOACTOR" then
      -- unparsable, invalid, or the manifest of another actor with the
      -- same id (character_name differs)
      self:finding("bad_manifest", name, mfile, err)
    else
      self.r:fail(name, mfile, one_line(err), code)
    end
    return
  end
  local ok, perr = pcall(self.judge_manifest, self, m, name, mfile, objects,
                         raw_status)
  m:close()
  if not ok then error(perr, 0) end
end

-- The findings of an open manifest: compare what it says with the local
-- scan and the listing; save when fixing.
function Run:judge_manifest(m, name, mfile, objects, raw_status)
  local found = {}   -- { kind, file, detail } in order
  local function note(kind, file, detail)
    found[#found + 1] = { kind, file, detail }
  end
  if m:exists() and m:stale() then
    note("stale_manifest", mfile,
         "stored statistics differ from the entries' statuses")
  end
  local before = {}
  for _, e in ipairs(m:get_all_images()) do before[e.filename] = e end
  local rep, err, code = self.sync:refresh(m, objects, { verify = self.opts.verify })
  if not rep then
    self.r:fail(name, nil, one_line(err), code)
    return
  end
  -- The scan skips entries whose facts did not change; an empty update
  -- makes the core derive every field of every entry from its facts, so
  -- stale stored values show (and --fix saves the derived ones). It marks
  -- the manifest dirty only when a value really changes.
  for _, e in ipairs(m:get_all_images()) do
    local okd, derr, dcode = m:update_image(e.filename, {})
    if not okd then
      self.r:fail(name, e.filename, one_line(derr), dcode)
      return
    end
  end
  local orphan, untracked = {}, {}
  for _, f in ipairs(rep.scan.added or {}) do orphan[f] = true end
  for _, f in ipairs(rep.s3_added or {}) do untracked[f] = true end
  for _, e in ipairs(m:get_all_images()) do
    local f, st = e.filename, e.status
    local b = before[f]
    if b and not e.local_present and layout.foreign_file(f, m:actor_id()) then
      note("foreign_file", f, string.format(
        "manifest entry named for another actor (%s), in actor %s's manifest",
        f:match("^(%d+)"), m:actor_id()))
    end
    if orphan[f] then
      note("orphan", f, (st == "synced" or st == "out_of_sync")
           and "local image (also in S3) not in the manifest"
           or "local image not in the manifest")
    elseif untracked[f] then
      note("untracked_s3", f, "S3 object not in the manifest")
    elseif b then
      local was = raw_status[f] or b.status
      local rec = recorded_local_md5(b, was)
      if st == "missing" then
        note("missing", f, "exists neither locally nor in S3 (manifest says "
             .. tostring(was) .. ")")
      elseif e.local_md5 and rec and e.local_md5 ~= rec then
        note("hash_mismatch", f, string.format(
             "local file's MD5 %s differs from the manifest's %s", e.local_md5, rec))
      elseif st == "out_of_sync" then
        note("out_of_sync", f, string.format("local MD5 %s, S3 MD5 %s",
             tostring(e.local_md5), tostring(e.s3_md5 or e.s3_etag)))
      else
        local why = {}
        if was ~= st then
          why[#why + 1] = string.format("status '%s' in the manifest, really '%s'",
                                        tostring(was), st)
        end
        for _, d in ipairs(stale_fields(b, e)) do why[#why + 1] = d end
        if #why > 0 then note("stale_manifest", f, table.concat(why, "; ")) end
      end
    end
  end
  local saved = false
  if self.fix then
    -- saved also when only the hash cache (the sidecar) has news
    local dirty = m:dirty()
    local okk, serr, scode = m:save()
    if not okk then
      self.r:fail(name, mfile, one_line(serr), scode)
    else
      saved = dirty
    end
  end
  for _, x in ipairs(found) do
    self:finding(x[1], name, x[2], x[3], saved and FIXABLE[x[1]] or false)
  end
end

-- Entries of actors/ that are not actor folders.
function Run:check_actors_dir(local_actors)
  local names = core.listdir(self.root .. "/actors")
  for _, n in ipairs(names or {}) do
    local st = core.stat(self.root .. "/actors/" .. n)
    local okname = self.Sync.check_actor_name(n)
    if st and st.type == "dir" and okname then
      local_actors[n] = true
    elseif not self.filtered then
      self:finding("stray_file", nil, "actors/" .. n, st and st.type == "dir"
                   and "not an actor folder ({actor_id}_{descriptor})"
                   or "not an actor folder")
    end
  end
end

-- Manifests no audited or existing actor claimed: no_actor (or
-- bad_manifest when they do not load).
function Run:check_unclaimed(known_ids)
  local Manifest = require "tdm.manifest"
  local dir = self.root .. "/actor_manifests"
  local files = core.listdir(dir) or {}
  table.sort(files)
  for _, f in ipairs(files) do
    local id = layout.manifest_id(f)
    if id and not self.claimed[id] and not known_ids[id] then
      local doc, err, code = Manifest.load(dir .. "/" .. f, self.cfg)
      local name = doc and type(doc.character_name) == "string"
                   and doc.character_name or id
      if self.selected(name) then
        if not doc then
          self:finding("bad_manifest", name, f, err or code)
        else
          self:finding("no_actor", name, f,
                       "manifest of an actor with no local folder and no S3 objects")
        end
      end
    end
  end
end

--- The audit command's work. opts: fix, verify, dry_run (= no fix),
-- actors/shard (through `selected(name)`), quiet/json (the reporter's).
-- Returns summary, number of findings (nil, msg, code when the listing
-- failed: then no actor is judged on a partial listing).
function audit.run(cfg, opts, reporter, selected)
  local run = new_run(cfg, opts, reporter, selected)
  opts = opts or {}
  run.filtered = (opts.actors and #opts.actors > 0) or opts.shard ~= nil
  local local_actors = {}
  run:check_actors_dir(local_actors)
  local seen, known_ids = {}, {}
  local pending = {}   -- bad keys, reported after their actor's findings
  local ok, err, code = run.sync:each_listed_actor(run.sync.list_root,
    function(actor, objects)
      seen[actor] = true
      local id = padded_id(actor)
      if id then known_ids[id] = true end
      if run.selected(actor) then run:audit_actor(actor, objects) end
      for _, p in ipairs(pending) do run:finding("bad_key", p[1], p[2], p[3]) end
      pending = {}
      if reporter then reporter:progress(run.actors, nil, 0) end
    end,
    function(key, why, actor)
      if actor == nil and run.filtered then return end
      if actor and not run.selected(actor) then return end
      -- The file part when the actor is known; the whole key otherwise.
      local file = actor and key:sub(#run.sync.list_root + #actor + 2) or key
      pending[#pending + 1] = { actor, file, (actor and ("S3 key " .. key .. ": ")
                                              or "S3 key: ") .. one_line(why) }
    end)
  for _, p in ipairs(pending) do run:finding("bad_key", p[1], p[2], p[3]) end
  if not ok then
    if reporter then reporter:fail(nil, nil, "list " .. run.sync.list_root ..
                                   ": " .. one_line(err), code) end
    return run:summary(), nil, err, code
  end
  for _, name in ipairs(sorted_keys(local_actors)) do
    if not seen[name] then
      local id = padded_id(name)
      if id then known_ids[id] = true end
      if run.selected(name) then run:audit_actor(name, {}) end
    end
  end
  run:check_unclaimed(known_ids)
  return run:summary(), run.total
end

function Run:summary()
  local s = { actors = self.actors, findings = self.total, fixed = self.fixed }
  for _, k in ipairs(audit.KINDS) do s[k] = self.counts[k] end
  return s
end

return audit
