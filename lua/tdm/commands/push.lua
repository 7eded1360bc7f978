--- tdm-lua push ACTOR: the seed's sync_actor_training_to_s3.py.
local cli = require "tdm.cli"

return cli.command {
  name = "push",
  summary = "one actor, local -> S3 (local_only files; out_of_sync with --overwrite)",
  usage = "tdm-lua push [options] ACTOR",
  bulk = true,
  select = false,  -- the actor is the argument
  description =
    "ACTOR is 42, 0042 or the full name. Brings the manifest up to date, then\n" ..
    "uploads every local_only file (with Content-MD5, so S3 rejects a corrupted\n" ..
    "body) and, with --overwrite, every out_of_sync one (the local file wins).\n" ..
    "The manifest is saved as uploads finish.",
  options = {
    { "--overwrite", "overwrite", "flag", "also upload out_of_sync files (local wins)" },
    { "--verify", "verify", "flag", "re-hash every local file (ignore the hash cache)" },
  },
  args = { min = 1, max = 1 },
  run = function(opts, pos)
    local sync_cli = require "tdm.sync_cli"
    local sync = require("tdm.sync").new(cli.config(opts))
    local name = sync_cli.resolve_actor("push", sync, pos[1])
    return sync_cli.run("push", opts, { direction = "push", overwrite = opts.overwrite,
      verify = opts.verify, actors = { name }, one_actor = true })
  end,
}
