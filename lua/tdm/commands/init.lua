--- The registry of bundled commands: every lua/tdm/commands/NAME.lua
-- (NAME may contain '-') is the command `tdm-lua NAME`. A command module
-- returns { summary = "one line", run = function(args) -> exit code }.
local core = require "tdm.core"

local commands = {}

-- The directory this file was loaded from.
local function commands_dir()
  local path = package.searchpath("tdm.commands", package.path)
  return path and path:match("^(.*)/[^/]*$")
end

--- Names of the bundled commands, sorted.
function commands.names()
  local dir = commands_dir()
  local names = {}
  for _, f in ipairs(dir and core.listdir(dir) or {}) do
    local name = f:match("^([%w][%w%-_]*)%.lua$")
    if name and name ~= "init" then names[#names + 1] = name end
  end
  table.sort(names)
  return names
end

local function load_command(name)
  if not name:match("^[%w][%w%-_]*$") then return nil end
  local ok, mod = pcall(require, "tdm.commands." .. name)
  if not ok then
    if tostring(mod):find("module 'tdm.commands." .. name .. "' not found",
                         1, true) then
      return nil
    end
    error(mod, 0)
  end
  return mod
end

--- The "commands:" section of `tdm-lua --help`.
function commands.help_text()
  local names = commands.names()
  io.write("commands:\n")
  if #names == 0 then io.write("  (none installed)\n") end
  for _, name in ipairs(names) do
    local mod = load_command(name)
    io.write(string.format("  %-16s %s\n", name, mod and mod.summary or ""))
  end
end

--- Run command `name` with the list of string arguments `args`; returns
-- the exit code. An unknown command is a usage error (exit 2).
function commands.run(name, args)
  local mod = load_command(name)
  if not mod then
    error({ exit_code = 2, message = string.format(
      "unknown command '%s' (not a command, and not a .lua script); run "
      .. "'tdm-lua --help' for the list", name) })
  end
  return mod.run(args)
end

return commands
