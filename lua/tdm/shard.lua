--- tdm.shard: which part of the actors a run works on, from --shard K/N
-- or from the job engine running it (Kubernetes Indexed Jobs, Slurm job
-- arrays), and the stable split itself.
--
--   local s, err = shard.resolve(opts.shard, os.getenv)  -- nil: all actors
--   s.k, s.n, s.source    -- 1 <= k <= n; source says where it came from
--   shard.selects(s, "0042_x") -> boolean
local shard = {}

--- Parse "K/N" (1 <= K <= N); returns { k, n } or nil, message.
function shard.parse(text)
  local k, n = tostring(text):match("^(%d+)/(%d+)$")
  k, n = tonumber(k), tonumber(n)
  if not k or n < 1 or k < 1 or k > n then
    return nil, string.format("needs K/N with 1 <= K <= N, got '%s'", text)
  end
  return { k = k, n = n }
end

local function int(getenv, name)
  local v = getenv(name)
  if v == nil or v == "" then return nil end
  local n = math.tointeger(tonumber(v))
  if not n then
    return nil, string.format("%s must be a whole number, got '%s'", name, v)
  end
  return n
end

-- A shard from a 0-based index among `count` parts.
local function from_index(idx, count, source)
  if not count then
    return nil, source .. " is set but the number of shards is not: set "
                .. "TDM_SHARDS=N"
  end
  if count < 1 or idx < 0 or idx >= count then
    return nil, string.format("%s gives index %d of %d shards: out of range",
                              source, idx, count)
  end
  return { k = idx + 1, n = count, source = source }
end

--- The shard of this run: `given` (the --shard text) when set, else the
-- job engine's variables read through `getenv`:
--   TDM_SHARD=K/N;
--   JOB_COMPLETION_INDEX (Kubernetes Indexed Job, 0-based) with
--   TDM_SHARDS=N;
--   SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_STEP
--   and SLURM_ARRAY_TASK_COUNT (or TDM_SHARDS).
-- Returns a shard, false (no sharding), or nil, message.
function shard.resolve(given, getenv)
  getenv = getenv or os.getenv
  if given then
    local s, err = shard.parse(given)
    if not s then return nil, "--shard " .. err end
    s.source = "--shard"
    return s
  end
  local t = getenv("TDM_SHARD")
  if t and t ~= "" then
    local s, err = shard.parse(t)
    if not s then return nil, "TDM_SHARD " .. err end
    s.source = "TDM_SHARD"
    return s
  end
  local shards, err = int(getenv, "TDM_SHARDS")
  if err then return nil, err end
  local idx
  idx, err = int(getenv, "JOB_COMPLETION_INDEX")
  if err then return nil, err end
  if idx then return from_index(idx, shards, "JOB_COMPLETION_INDEX") end
  local id
  id, err = int(getenv, "SLURM_ARRAY_TASK_ID")
  if err then return nil, err end
  if id then
    local min, step, count, e
    min, e = int(getenv, "SLURM_ARRAY_TASK_MIN")
    if e then return nil, e end
    step, e = int(getenv, "SLURM_ARRAY_TASK_STEP")
    if e then return nil, e end
    count, e = int(getenv, "SLURM_ARRAY_TASK_COUNT")
    if e then return nil, e end
    min, step = min or 0, (step and step > 0) and step or 1
    if (id - min) % step ~= 0 then
      return nil, string.format("SLURM_ARRAY_TASK_ID %d is not MIN %d plus "
                                .. "a multiple of STEP %d", id, min, step)
    end
    return from_index((id - min) // step, shards or count,
                      "SLURM_ARRAY_TASK_ID")
  end
  return false
end

--- "2/4 (JOB_COMPLETION_INDEX)": for the line a run prints.
function shard.describe(s)
  return string.format("%d/%d (from %s)", s.k, s.n, s.source or "--shard")
end

--- The stable number an actor is split by: its id when it has one, else
-- a hash of the name (the same on every host and run).
local function actor_key(actor_name)
  local num = tonumber(actor_name:match("^(%d+)"))
  if num then return num end
  local key = 0
  for c in actor_name:gmatch(".") do key = (key * 31 + c:byte()) % 2147483647 end
  return key
end

--- Whether shard `s` (nil or false: no sharding) includes `actor_name`.
function shard.selects(s, actor_name)
  if not s then return true end
  return actor_key(actor_name) % s.n == s.k - 1
end

return shard
