--- bench/md5_files.lua LIST [--print]: hash every file named in LIST (one
-- path a line) with tdm.md5_file, in order, in this one process. Prints
-- "files bytes" (or "HEX  PATH" lines, as md5sum does, with --print).
-- Run as: tdm-lua bench/md5_files.lua LIST
local tdm = require "tdm"

local list, mode = arg[1], arg[2]
if not list then
  io.stderr:write("usage: tdm-lua bench/md5_files.lua LIST [--print]\n")
  os.exit(2)
end
local files, bytes = 0, 0
local out = mode == "--print" and io.stdout or nil
for path in io.lines(list) do
  local hex, size = tdm.md5_file(path)
  if not hex then
    io.stderr:write("md5_files: ", size, "\n")
    os.exit(1)
  end
  files, bytes = files + 1, bytes + size
  if out then out:write(hex, "  ", path, "\n") end
end
if not out then print(files, bytes) end
