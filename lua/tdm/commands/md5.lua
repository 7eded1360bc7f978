--- tdm-lua md5 FILE...: print the MD5 of each file the way md5sum does.
local tdm = require "tdm"

local usage = [[
usage: tdm-lua md5 FILE...

Print "HEX  FILE" for each FILE, as md5sum does, using tdm's hashing core.
Exit codes: 0 all hashed, 1 a file could not be read, 2 usage error.]]

local function run(args)
  if #args == 0 then
    require("tdm.cli").usage_error("md5: no FILE given\n%s", usage)
  end
  if args[1] == "-h" or args[1] == "--help" then
    print(usage)
    return 0
  end
  local status = 0
  for _, path in ipairs(args) do   -- an option is not a file (./-x is)
    if path:match("^%-.") then require("tdm.cli").usage_error("md5: unknown option '%s'\n%s", path, usage) end
    local hex, err = tdm.md5_file(path)
    if hex then
      io.write(hex, "  ", path, "\n")
    else
      io.stderr:write("tdm-lua: ", err, "\n")
      status = 1
    end
  end
  return status
end

return { summary = "print MD5 digests of files, like md5sum", run = run,
         usage = usage }
