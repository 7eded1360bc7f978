--- repull_out_of_sync.lua -- an ops maintenance script on tdm's public Lua
-- API: every image that is out_of_sync and whose local copy is older than
-- N days is replaced by S3's version (S3 is the source of truth): the
-- stale local file is discarded only once the verified download is in
-- place, and the manifest records the new facts.
--
--   tdm-lua examples/repull_out_of_sync.lua [--days N] [--dry-run] [ACTOR...]
--
-- Exit: 0 done, 1 some image could not be re-pulled, 2 usage error.
local tdm = require "tdm"

local days, dry_run, only = 7, false, {}
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "--days" then
    i = i + 1
    days = tonumber(arg[i])
    if not days then io.stderr:write("--days needs a number\n"); os.exit(2) end
  elseif a == "--dry-run" then
    dry_run = true
  elseif a:sub(1, 1) == "-" then
    io.stderr:write("unknown option ", a, "\n"); os.exit(2)
  else
    only[#only + 1] = a
  end
  i = i + 1
end

local cfg = tdm.config()
local cutoff = tdm.core.now() - days * 86400

-- The actors to look at: those named, else every manifest's actor.
local actors = only
if #actors == 0 then
  for _, f in ipairs(tdm.core.listdir(cfg.data_root .. "/actor_manifests") or {}) do
    local id = f:match("^(%d+)_manifest%.json$")
    if id then actors[#actors + 1] = id end
  end
  table.sort(actors)
end

local s3 = assert(tdm.s3.client(cfg))
local failed, repulled = 0, 0
for _, actor in ipairs(actors) do
  local m, err = tdm.Manifest.open(actor, cfg)
  if not m then
    io.stderr:write(err, "\n")
    failed = failed + 1
  else
    for _, img in ipairs(m:get_all_images()) do
      local path = m:file_path(img.filename)
      local st = img.status == "out_of_sync" and tdm.core.stat(path)
      if st and st.mtime < cutoff then
        local key = tdm.s3.key_for(cfg, m:actor_name(), img.filename)
        if dry_run then
          print(string.format("would re-pull %s (local copy %.0f days old)",
                              key, (tdm.core.now() - st.mtime) / 86400))
        else
          -- get() writes a verified temp file and renames it over the old
          -- copy, so the stale file is gone only when the good one is in.
          local got, gerr = s3:get(key, path)
          if got then
            m:update_image(img.filename, { ["local"] = true, s3 = { md5 = got.md5, etag = got.etag, size = got.bytes } })
            repulled = repulled + 1
            print("re-pulled " .. key)
          else
            io.stderr:write(gerr, "\n")
            failed = failed + 1
          end
        end
      end
    end
    local ok, serr = m:save()
    if not ok then io.stderr:write(serr, "\n"); failed = failed + 1 end
    m:close()
  end
end
s3:close()
print(string.format("%d re-pulled, %d failed", repulled, failed))
os.exit(failed == 0 and 0 or 1)
