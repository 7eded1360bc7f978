--- tdm-lua pull-all: the seed's ./sync_all_training_data.sh.
local cli = require "tdm.cli"

return cli.command {
  name = "pull-all",
  summary = "download every training image not present locally, verified; update manifests",
  usage = "tdm-lua pull-all [options]",
  bulk = true,
  description =
    "Brings every selected actor's manifest up to date (as sync-manifests does),\n" ..
    "then downloads every s3_only file -- and with --repair every out_of_sync\n" ..
    "one, S3 being the truth -- in one batch that keeps --jobs transfers in\n" ..
    "flight across actors. Each download streams to a temp file, is checked\n" ..
    "against the object's MD5 and only then renamed into place; each actor's\n" ..
    "manifest is saved as its files land, so an interrupted run keeps what it\n" ..
    "finished. With --actor only those actors' prefixes are listed.",
  options = {
    { "--repair", "repair", "flag", "also re-download out_of_sync files (S3 wins)" },
    { "--verify", "verify", "flag", "re-hash every local file (ignore the hash cache)" },
  },
  args = { min = 0, max = 0 },
  run = function(opts)
    return require("tdm.sync_cli").run("pull-all", opts,
      { direction = "pull", repair = opts.repair, verify = opts.verify })
  end,
}
