--- tdm-lua pull ACTOR [URLS_JSON]: the seed's sync_actor_training_from_s3.py.
local cli = require "tdm.cli"

local function parse_urls(cfg, sync, name, text)
  local cjson = require "cjson"
  local s3 = require "tdm.s3"
  local ok, list = pcall(cjson.decode, text)
  if not ok or type(list) ~= "table" or (next(list) ~= nil and #list == 0) then
    cli.usage_error("pull: URLS_JSON must be a JSON array of S3 URLs, got '%s'",
                    #text > 80 and (text:sub(1, 77) .. "...") or text)
  end
  local files = {}
  for i, url in ipairs(list) do
    if type(url) ~= "string" then
      cli.usage_error("pull: URLS_JSON item %d is a %s, not a URL string", i, type(url))
    end
    local key, msg = s3.parse_url(cfg, url)
    if not key then cli.usage_error("pull: %s", msg) end
    local actor, file, why = sync:split_key(key)
    if actor ~= name then
      cli.usage_error("pull: %s is outside actor %s's prefix %s (refused)", url, name,
                      sync:key_for(name, ""))
    end
    if not file then cli.usage_error("pull: %s: %s", url, why) end
    files[#files + 1] = file
  end
  return files
end

return cli.command {
  name = "pull",
  summary = "one actor, S3 -> local (all missing files, or exactly the given URLs)",
  usage = "tdm-lua pull [options] ACTOR [URLS_JSON]",
  bulk = true,
  select = false,  -- the actor is the argument
  description =
    "ACTOR is 42, 0042 or the full name. Without URLS_JSON: download every\n" ..
    "s3_only file of the actor (and with --repair the out_of_sync ones). With\n" ..
    "URLS_JSON, a JSON array of S3 URLs (https://BUCKET.s3.REGION.amazonaws.com/KEY,\n" ..
    "path-style or s3://BUCKET/KEY): exactly those files; URLs outside the\n" ..
    "actor's prefix are refused before anything changes. The manifest is\n" ..
    "brought up to date first and saved as files land.",
  options = {
    { "--repair", "repair", "flag", "also re-download out_of_sync files (S3 wins)" },
    { "--verify", "verify", "flag", "re-hash every local file (ignore the hash cache)" },
  },
  args = { min = 1, max = 2 },
  run = function(opts, pos)
    local sync_cli = require "tdm.sync_cli"
    local Sync = require "tdm.sync"
    local cfg = cli.config(opts)
    local sync = Sync.new(cfg)
    local name = sync_cli.resolve_actor("pull", sync, pos[1])
    local only
    if pos[2] then
      only = {}
      for _, f in ipairs(parse_urls(cfg, sync, name, pos[2])) do only[f] = true end
    end
    return sync_cli.run("pull", opts, { direction = "pull", repair = opts.repair,
      verify = opts.verify, actors = { name }, only = only, one_actor = true })
  end,
}
