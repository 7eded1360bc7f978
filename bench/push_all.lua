--- bench/push_all.lua: push every actor of the data root in one process
-- and one transfer batch, through tdm's own bulk engine (tdm.Sync, the
-- code behind `tdm-lua push ACTOR`, which takes one actor per run). Prints
-- the engine's totals. Configured as the commands are (TDM_DATA_ROOT,
-- TDM_BUCKET, TDM_PREFIX, AWS_*); TDM_JOBS sets the concurrency.
-- Run as: tdm-lua bench/push_all.lua
local tdm = require "tdm"

local sync = tdm.Sync.new(tdm.config())
local totals = sync:run { direction = "push" }
local keys = {}
for k, v in pairs(totals) do
  if k:sub(1, 1) ~= "_" and type(v) ~= "table" then keys[#keys + 1] = k end
end
table.sort(keys)
for _, k in ipairs(keys) do print(k, totals[k]) end
local errors = totals.transfers_failed + totals.actor_errors
os.exit(errors == 0 and 0 or 1)
