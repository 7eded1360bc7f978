-- test_shard.lua -- shards from --shard, TDM_SHARD and the job engines'
-- variables (Kubernetes Indexed Jobs, Slurm job arrays): each engine's
-- set of work items splits the actors exactly (every actor in one shard,
-- none twice), and bad variables are refused with the variable named.
local t = require "t"
local shard = require "tdm.shard"
local cli = require "tdm.cli"

-- 500 actors with ids, a few without, and ids that share residues.
local actors = { "nodigits", "another_one", "x" }
for i = 1, 500 do actors[#actors + 1] = string.format("%04d_actor", i * 7) end

local function env(vars) return function(name) return vars[name] end end

-- The shards a set of work items (one variable set each) takes, checked
-- to split `actors` exactly.
local function check_partition(what, envs)
  local owner, seen_shards = {}, {}
  for w, vars in ipairs(envs) do
    local s, err = shard.resolve(nil, env(vars))
    t.ok(s, what .. " item " .. w .. " has a shard (" .. tostring(err) .. ")")
    if not s then return end
    local id = s.k .. "/" .. s.n
    t.eq(seen_shards[id], nil, what .. ": shard " .. id .. " taken once")
    seen_shards[id] = true
    for _, a in ipairs(actors) do
      if shard.selects(s, a) then
        t.eq(owner[a], nil, what .. ": " .. a .. " in one shard only")
        owner[a] = w
      end
    end
  end
  for _, a in ipairs(actors) do
    t.ok(owner[a], what .. ": " .. a .. " is in some shard")
  end
end

t.test("Kubernetes Indexed Job: JOB_COMPLETION_INDEX 0..N-1 with TDM_SHARDS", function()
  for _, n in ipairs({ 1, 3, 8 }) do
    local envs = {}
    for i = 0, n - 1 do
      envs[#envs + 1] = { JOB_COMPLETION_INDEX = tostring(i), TDM_SHARDS = tostring(n) }
    end
    check_partition("k8s n=" .. n, envs)
  end
end)

t.test("Slurm array: --array=0-3, 1-5, 10-20:5 (ID, MIN, STEP, COUNT)", function()
  local arrays = { { 0, 3, 1 }, { 1, 5, 1 }, { 10, 20, 5 } }
  for _, a in ipairs(arrays) do
    local min, max, step = a[1], a[2], a[3]
    local count = (max - min) // step + 1
    local envs = {}
    for id = min, max, step do
      envs[#envs + 1] = { SLURM_ARRAY_TASK_ID = tostring(id),
        SLURM_ARRAY_TASK_MIN = tostring(min), SLURM_ARRAY_TASK_MAX = tostring(max),
        SLURM_ARRAY_TASK_STEP = tostring(step),
        SLURM_ARRAY_TASK_COUNT = tostring(count) }
    end
    check_partition(string.format("slurm %d-%d:%d", min, max, step), envs)
  end
end)

t.test("TDM_SHARD=K/N for K = 1..N", function()
  local envs = {}
  for k = 1, 5 do envs[#envs + 1] = { TDM_SHARD = k .. "/5" } end
  check_partition("TDM_SHARD", envs)
end)

t.test("precedence and sources", function()
  local s = shard.resolve("2/3", env { TDM_SHARD = "1/2", JOB_COMPLETION_INDEX = "0", TDM_SHARDS = "4" })
  t.eq({ s.k, s.n, s.source }, { 2, 3, "--shard" }, "--shard wins")
  s = shard.resolve(nil, env { TDM_SHARD = "1/2", JOB_COMPLETION_INDEX = "3", TDM_SHARDS = "4" })
  t.eq({ s.k, s.n, s.source }, { 1, 2, "TDM_SHARD" }, "TDM_SHARD next")
  s = shard.resolve(nil, env { JOB_COMPLETION_INDEX = "3", TDM_SHARDS = "4", SLURM_ARRAY_TASK_ID = "1" })
  t.eq({ s.k, s.n, s.source }, { 4, 4, "JOB_COMPLETION_INDEX" }, "k8s index 3 is shard 4/4")
  s = shard.resolve(nil, env { SLURM_ARRAY_TASK_ID = "7", SLURM_ARRAY_TASK_MIN = "5",
                               SLURM_ARRAY_TASK_COUNT = "3" })
  t.eq({ s.k, s.n, s.source }, { 3, 3, "SLURM_ARRAY_TASK_ID" }, "slurm 7 of 5..7 is 3/3")
  s = shard.resolve(nil, env { SLURM_ARRAY_TASK_ID = "2", SLURM_ARRAY_TASK_COUNT = "9", TDM_SHARDS = "3" })
  t.eq({ s.k, s.n }, { 3, 3 }, "TDM_SHARDS overrides the array's count")
  t.eq(shard.resolve(nil, env {}), false, "no variables: no sharding")
  t.eq(shard.describe({ k = 2, n = 4, source = "JOB_COMPLETION_INDEX" }),
       "2/4 (from JOB_COMPLETION_INDEX)", "describe")
end)

t.test("bad variables are refused with the variable named", function()
  local cases = {
    { { JOB_COMPLETION_INDEX = "2" }, "TDM_SHARDS" },
    { { JOB_COMPLETION_INDEX = "4", TDM_SHARDS = "4" }, "out of range" },
    { { JOB_COMPLETION_INDEX = "x", TDM_SHARDS = "4" }, "JOB_COMPLETION_INDEX must be a whole number" },
    { { TDM_SHARD = "0/3" }, "TDM_SHARD needs K/N" },
    { { TDM_SHARDS = "two", JOB_COMPLETION_INDEX = "0" }, "TDM_SHARDS must be" },
    { { SLURM_ARRAY_TASK_ID = "3", SLURM_ARRAY_TASK_MIN = "0",
        SLURM_ARRAY_TASK_STEP = "2", SLURM_ARRAY_TASK_COUNT = "4" }, "multiple of STEP" },
    { { SLURM_ARRAY_TASK_ID = "1" }, "number of shards" },
  }
  for _, c in ipairs(cases) do
    local s, err = shard.resolve(nil, env(c[1]))
    t.eq(s, nil, "refused: " .. c[2])
    t.ok(err and err:find(c[2], 1, true), "message '" .. tostring(err) .. "' has '" .. c[2] .. "'")
  end
  local s, err = shard.resolve("3/2", env {})
  t.eq(s, nil, "--shard 3/2 refused")
  t.ok(err:find("--shard needs K/N", 1, true), err)
end)

t.test("the CLI takes the engine's shard when --shard is not given", function()
  local spec = { name = "demo", usage = "demo", bulk = true, run = function() end }
  cli.getenv = env { JOB_COMPLETION_INDEX = "1", TDM_SHARDS = "2" }
  local opts = cli.parse({}, spec)
  t.eq({ opts.shard.k, opts.shard.n, opts.shard.source }, { 2, 2, "JOB_COMPLETION_INDEX" }, "from k8s")
  opts = cli.parse({ "--shard", "1/2" }, spec)
  t.eq(opts.shard.source, "--shard", "--shard wins")
  cli.getenv = env { JOB_COMPLETION_INDEX = "1" }
  local ok, e = pcall(cli.parse, {}, spec)
  t.ok(not ok and e.exit_code == 2 and tostring(e):find("TDM_SHARDS", 1, true),
       "index without count is a usage error: " .. tostring(e))
  local one = { name = "one", usage = "one", bulk = true, select = false, args = { min = 1, max = 1 },
                run = function() end }
  opts = cli.parse({ "42" }, one)
  t.eq(opts.shard, nil, "a one-actor command ignores the engine's shard")
  cli.getenv = os.getenv
end)

return t.done()
