--- gen-man.lua -- write the tdm-lua(1) man page from the program's own
-- help texts (`tdm-lua --help` and `tdm-lua COMMAND --help`), so the two
-- can never disagree.
--
--   tdm-lua scripts/gen-man.lua ./tdm-lua > build/tdm-lua.1
local exe = assert(arg[1], "usage: gen-man.lua PATH-TO-TDM-LUA")
local version = require("tdm").version

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  p:close()
  return out
end

-- Escape text for troff: backslashes, leading dots/quotes, hyphens.
local function esc(line)
  line = line:gsub("\\", "\\e"):gsub("%-", "\\-")
  if line:match("^[.']") then line = "\\&" .. line end
  return line
end

local function verbatim(text)
  local out = { ".nf" }
  for line in (text .. "\n"):gmatch("(.-)\n") do out[#out + 1] = esc(line) end
  out[#out + 1] = ".fi"
  return table.concat(out, "\n")
end

local main_help = run(exe .. " --help")
local names = {}
for line in (main_help:match("commands:\n(.-)\n\n") or ""):gmatch("[^\n]+") do
  local name = line:match("^  ([%w][%w%-_]*)%s")
  if name then names[#names + 1] = name end
end

local out = {
  string.format('.TH TDM-LUA 1 "" "tdm %s" "User Commands"', version),
  ".SH NAME",
  "tdm\\-lua \\- keep AI actors' training images accounted for between local disks and S3",
  ".SH SYNOPSIS",
  ".B tdm\\-lua",
  "[\\fIoptions\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR...]",
  ".br",
  ".B tdm\\-lua",
  "[\\fIoptions\\fR] \\fISCRIPT.lua\\fR [\\fIARGS\\fR...]",
  ".SH DESCRIPTION",
  verbatim(main_help),
  ".SH COMMANDS",
}
for _, name in ipairs(names) do
  out[#out + 1] = ".SS " .. esc(name)
  out[#out + 1] = verbatim(run(exe .. " " .. name .. " --help"))
end
out[#out + 1] = ".SH ENVIRONMENT"
out[#out + 1] = "See the settings table under \\fBconfig\\fR above; " ..
                "\\fBtdm\\-lua config\\fR prints the values in force."
out[#out + 1] = ".SH SEE ALSO\nREADME.md in the tdm sources; lua5.4(1)"
io.write(table.concat(out, "\n"), "\n")
