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
  t.eq(opts.shard, { k = 2, n = 3 }, "shard")
  t.eq(pos, { "pos" }, "positionals")
end)

t.test("usage errors", function()
  t.ok(usage_err({ "--bogus" }):find("unknown option '--bogus'", 1, true), "unknown")
  t.ok(usage_err({ "--jobs", "x" }):find("positive whole number", 1, true), "jobs")
  t.ok(usage_err({ "--jobs" }):find("needs a value", 1, true), "missing value")
  t.ok(usage_err({ "--shard", "4/3" }):find("K/N", 1, true), "shard")
  t.ok(usage_err({ "a", "b" }):find("expected 0 to 1 arguments", 1, true), "too many")
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
