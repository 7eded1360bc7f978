-- test_cli.lua -- shared command-line handling: options, errors, shards.
local t = require "t"
local cli = require "tdm.cli"

local spec = { name = "demo", usage = "tdm-lua demo [options] [X]", bulk = true,
               args = { min = 0, max = 1 },
               options = { { "--repair", "repair", "flag", "repair things" } },
               run = function(opts, pos) return opts, pos end }

local function usage_err(args)
  local ok, e = pcall(cli.parse, args, spec)
  t.ok(not ok, "parse should fail for " .. table.concat(args, " "))
  t.eq(type(e), "table", "error is a table")
  t.eq(e.exit_code, 2, "exit code")
  return e.message
end

t.test("flags, values, lists and positionals", function()
  local opts, pos = cli.parse({ "--dry-run", "--jobs", "4", "--actor", "42",
                                "--actor=0043_x", "--repair", "--shard", "2/3", "pos" }, spec)
  t.eq(opts.dry_run, true, "dry_run")
  t.eq(opts.jobs, 4, "jobs")
  t.eq(opts.actors, { "42", "0043_x" }, "actors")
  t.eq(opts.repair, true, "repair")
  t.eq(opts.shard, { k = 2, n = 3, source = "--shard" }, "shard")
  t.eq(pos, { "pos" }, "positionals")
end)

t.test("usage errors", function()
  t.ok(usage_err({ "--bogus" }):find("unknown option '--bogus'", 1, true), "unknown")
  t.ok(usage_err({ "--jobs", "x" }):find("positive whole number", 1, true), "jobs")
  t.ok(usage_err({ "--jobs" }):find("needs a value", 1, true), "missing value")
  t.ok(usage_err({ "--shard", "4/3" }):find("K/N", 1, true), "shard")
  t.ok(usage_err({ "a", "b" }):find("expected 0 to 1 arguments", 1, true), "too many")
end)

t.test("peers' spellings: --dryrun, -n, -q, -v, --endpoint-url, --profile, --region", function()
  local opts = cli.parse({ "--dryrun", "-q", "-v", "--endpoint-url", "http://h:1",
                           "--profile", "p", "--region=eu-west-1" }, spec)
  t.eq({ opts.dry_run, opts.quiet, opts.verbose }, { true, true, true }, "flags")
  t.eq({ opts.endpoint, opts.profile, opts.region }, { "http://h:1", "p", "eu-west-1" }, "settings")
  t.eq(cli.parse({ "-n" }, spec).dry_run, true, "-n")
end)

t.test("did you mean", function()
  t.ok(usage_err({ "--dryrn" }):find("did you mean '--dryrun'", 1, true), "--dryrn")
  t.ok(usage_err({ "--bukcet" }):find("did you mean '--bucket'", 1, true), "--bukcet")
  t.ok(usage_err({ "--endpoint" }):find("did you mean '--endpoint-url'", 1, true), "--endpoint")
  t.ok(not usage_err({ "--zzzzzz" }):find("did you mean", 1, true), "no wild guesses")
  t.eq(cli.suggest("pul-all", { "pull", "pull-all", "push-all" }), "pull-all", "command")
  t.eq(cli.suggest("xyz", { "pull", "push" }), nil, "nothing close")
end)

t.test("usage errors print as their message (stock lua5.4 too)", function()
  local ok, e = pcall(cli.parse, { "--bogus" }, spec)
  t.ok(not ok, "raised")
  t.ok(tostring(e):find("unknown option '--bogus'", 1, true), "tostring: " .. tostring(e))
  t.eq(e.code, "EUSAGE", "code")
end)

t.test("help lists only the options that apply", function()
  local one = { name = "one", usage = "one", bulk = true, select = false,
                args = { min = 1, max = 1 }, run = function() end }
  local h = cli.help(one)
  t.ok(not h:find("--actor", 1, true), "no --actor in a one-actor command's help")
  t.ok(not h:find("--shard", 1, true), "no --shard")
  t.ok(h:find("--dry-run", 1, true), "but --dry-run")
  local ok, e = pcall(cli.parse, { "--actor", "1", "x" }, one)
  t.ok(not ok and tostring(e):find("unknown option '--actor'", 1, true), "and refuses --actor")
  local plain = { name = "plain", usage = "plain", run = function() end }
  h = cli.help(plain)
  t.ok(not h:find("--jobs", 1, true), "no --jobs in a non-bulk command")
  t.ok(h:find("--endpoint-url", 1, true), "settings options everywhere")
end)

t.test("help lists common and bulk options", function()
  local h = cli.help(spec)
  for _, o in ipairs({ "--dry-run", "--json", "--jobs", "--actor", "--shard", "--repair", "--data-root" }) do
    t.ok(h:find(o, 1, true), "help mentions " .. o)
  end
end)

t.test("actor selection", function()
  t.ok(cli.selected({ actors = {} }, "0042_x"), "no filter selects")
  t.ok(cli.selected({ actors = { "42" } }, "0042_x"), "by number")
  t.ok(cli.selected({ actors = { "0042" } }, "0042_x"), "by padded id")
  t.ok(cli.selected({ actors = { "0042_x" } }, "0042_x"), "by name")
  t.ok(not cli.selected({ actors = { "43" } }, "0042_x"), "other actor")
end)

t.test("shards cover every actor exactly once", function()
  local names = { "nodigits" }
  for i = 1, 200 do names[#names + 1] = string.format("%04d_actor", i) end
  for _, name in ipairs(names) do
    local hits = 0
    for k = 1, 3 do
      if cli.selected({ shard = { k = k, n = 3 } }, name) then hits = hits + 1 end
    end
    t.eq(hits, 1, "shards selecting " .. name)
  end
end)

return t.done()
