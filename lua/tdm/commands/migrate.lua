--- tdm-lua migrate: legacy training_data/response.json files become
-- manifest entries; each legacy file is deleted once its manifest is saved.
local cli = require "tdm.cli"

return cli.command {
  name = "migrate",
  summary = "turn legacy response.json files into manifest entries",
  usage = "tdm-lua migrate [options]",
  bulk = true,
  description = table.concat({
    "For every actor with data/actors/ACTOR/training_data/response.json:",
    "read the image references in it (URL lists, objects with url/s3_url/",
    "image_url/images/output/urls/training_data fields, S3 URLs in any",
    "form), check each file locally and in S3, merge the entries into the",
    "actor's manifest, save it, then delete response.json. A file that",
    "cannot be interpreted is reported with the reason and left in place.",
  }, "\n"),
  options = {
    { "--keep-legacy", "keep_legacy", "flag",
      "keep response.json after migrating it" },
  },
  args = { min = 0, max = 0 },
  run = function(opts)
    local migrate = require "tdm.migrate"
    local cfg = cli.config(opts)
    local reporter = cli.reporter("migrate", opts, cfg)
    local sum = migrate.run(cfg, opts, reporter, function(name)
      return cli.selected(opts, name)
    end)
    return reporter:finish(sum)
  end,
}
