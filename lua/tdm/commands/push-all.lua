--- tdm-lua push-all: every actor's local_only files up, in one batch (the
-- bulk form of `push ACTOR`, as pull-all is of `pull ACTOR`).
local cli = require "tdm.cli"

return cli.command {
  name = "push-all",
  summary = "upload every local_only training image of every actor; update manifests",
  usage = "tdm-lua push-all [options]",
  bulk = true,
  description =
    "Brings every selected actor's manifest up to date (as sync-manifests does),\n" ..
    "then uploads every local_only file -- and with --overwrite every\n" ..
    "out_of_sync one, the local file being the truth -- in one batch that keeps\n" ..
    "--jobs transfers in flight across actors. Each upload sends Content-MD5,\n" ..
    "so S3 rejects a corrupted body; each actor's manifest is saved as its\n" ..
    "files land, so an interrupted run keeps what it finished. With --actor\n" ..
    "only those actors' prefixes are listed.",
  options = {
    { "--overwrite", "overwrite", "flag", "also upload out_of_sync files (local wins)" },
    { "--verify", "verify", "flag", "re-hash every local file (ignore the hash cache)" },
  },
  args = { min = 0, max = 0 },
  run = function(opts)
    return require("tdm.sync_cli").run("push-all", opts,
      { direction = "push", overwrite = opts.overwrite, verify = opts.verify })
  end,
}
