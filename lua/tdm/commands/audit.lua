--- tdm-lua audit: the seed's accountability check. Reports every file not
-- accounted for in its manifest (and every manifest, key and leftover
-- that does not fit); exit 1 when anything is found.
local cli = require "tdm.cli"

return cli.command {
  name = "audit",
  summary = "find files not accounted for in manifests (--fix adds them)",
  usage = "tdm-lua audit [options]",
  bulk = true,
  description = table.concat({
    "Compares every actor's manifest with its local folder and with one",
    "streamed listing of the bucket prefix. Findings, one line each",
    "(--json: {actor, file, kind, result, fixed}): orphan, untracked_s3,",
    "missing, hash_mismatch, out_of_sync, stale_manifest, no_actor,",
    "legacy_file, stray_file, bad_key, bad_manifest, bad_image,",
    "foreign_file.",
    "Without --fix nothing is changed. --fix adds orphans and untracked",
    "S3 objects to manifests, records what was seen and recomputes stale",
    "fields; it never deletes anything. --dry-run is the same as no --fix.",
  }, "\n"),
  exit_codes = "exit codes: 0 nothing found, 1 findings (even when --fix " ..
    "fixed them) or an actor could not be audited, 2 usage or configuration " ..
    "error, 130 interrupted",
  options = {
    { "--fix", "fix", "flag", "apply the safe fixes (never deletes)" },
    { "--verify", "verify", "flag", "re-hash every local file (ignore size+mtime)" },
  },
  args = { min = 0, max = 0 },
  run = function(opts)
    local audit = require "tdm.audit"
    local cfg = cli.config(opts)
    local reporter = cli.reporter("audit", opts, cfg)
    local summary, findings = audit.run(cfg, opts, reporter, function(name)
      return cli.selected(opts, name)
    end)
    return reporter:finish(summary, (findings or 0) > 0)
  end,
}
