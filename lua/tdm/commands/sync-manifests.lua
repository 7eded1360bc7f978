--- tdm-lua sync-manifests: the seed's scripts/sync_training_data_to_manifests.py.
local cli = require "tdm.cli"

return cli.command {
  name = "sync-manifests",
  summary = "scan every actor (local files + one S3 listing) and update its manifest",
  usage = "tdm-lua sync-manifests [options]",
  bulk = true,
  description =
    "Every actor -- the union of local actor folders, existing manifests and\n" ..
    "the actor folders of ONE streamed listing of the bucket prefix -- gets its\n" ..
    "manifest brought up to date: new local images and new objects are added,\n" ..
    "vanished ones marked, statuses recomputed. Local files are hashed only\n" ..
    "when size or mtime changed (or with --verify). Manifests are written only\n" ..
    "where something changed; entries are never removed except by --prune\n" ..
    "(entries whose file exists nowhere). S3 keys that are not\n" ..
    "{prefix}/{actor_name}/{image} are reported and skipped.",
  options = {
    { "--verify", "verify", "flag", "re-hash every local file (ignore the hash cache)" },
    { "--prune", "prune", "flag", "remove entries whose file exists nowhere (missing)" },
  },
  args = { min = 0, max = 0 },
  run = function(opts)
    return require("tdm.sync_cli").run("sync-manifests", opts,
      { verify = opts.verify, prune = opts.prune })
  end,
}
