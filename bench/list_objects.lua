--- bench/list_objects.lua PREFIX: list every object under PREFIX in the
-- configured bucket with tdm's streaming list iterator; prints
-- "listed N" (and the total size on a second line). Used by bench/run.sh
-- for the peak-RSS-of-a-large-listing measurement.
-- Run as: tdm-lua bench/list_objects.lua PREFIX
local tdm = require "tdm"

local prefix = arg[1]
if not prefix then
  io.stderr:write("usage: tdm-lua bench/list_objects.lua PREFIX\n")
  os.exit(2)
end
local client, err = tdm.s3.client()
if not client then
  io.stderr:write("list_objects: ", err, "\n")
  os.exit(1)
end
local n, bytes = 0, 0
for obj, lerr in client:list(prefix) do
  if not obj then
    io.stderr:write("list_objects: ", lerr, "\n")
    os.exit(1)
  end
  n, bytes = n + 1, bytes + obj.size
end
print("listed " .. n)
print("bytes " .. bytes)
