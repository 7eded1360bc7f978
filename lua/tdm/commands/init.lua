--- The registry of bundled commands: every lua/tdm/commands/NAME.lua
-- (NAME may contain '-') is the command `tdm-lua NAME`. A command module
-- returns { summary = "one line", run = function(args) -> exit code }.
-- Also what the host hands the command line to: global options before
-- the command (`tdm-lua --data-root X audit`), the main help, "did you
-- mean" for a mistyped command.
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

--- The command module `name`, or nil when there is none.
function commands.load(name)
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

local function usage_error(fmt, ...)
  require("tdm.cli").usage_error(fmt, ...)
end

--- The main help (`tdm-lua --help`, `tdm-lua help`).
function commands.help_text()
  local cli = require "tdm.cli"
  local tdm_version = require("tdm").version
  local out = {
    "usage: tdm-lua [options] COMMAND [ARGS...]",
    "       tdm-lua [-e CHUNK] [-l MODULE] SCRIPT.lua [ARGS...]",
    "",
    "tdm keeps every actor's training images accounted for between",
    "local disks and an S3 bucket (tdm " .. tdm_version .. ").",
    "",
    "commands:",
  }
  local names = commands.names()
  if #names == 0 then out[#out + 1] = "  (none installed)" end
  for _, name in ipairs(names) do
    local mod = commands.load(name)
    out[#out + 1] = string.format("  %-16s %s", name, mod and mod.summary or "")
  end
  out[#out + 1] = ""
  out[#out + 1] = "options (before or after the command; each command's help lists"
  out[#out + 1] = "those that apply to it):"
  local list = {}
  for _, g in ipairs({ "settings", "output" }) do
    for _, o in ipairs(cli.groups[g]) do list[#list + 1] = o end
  end
  out[#out + 1] = cli.options_help(list)
  out[#out + 1] = "  -V, --version            print the version"
  out[#out + 1] = "  -e CHUNK                 run the Lua string CHUNK"
  out[#out + 1] = "  -l MODULE                require MODULE into the global of that name"
  out[#out + 1] = ""
  out[#out + 1] = "Run 'tdm-lua help COMMAND' (or 'tdm-lua COMMAND --help') for a command's options."
  out[#out + 1] = table.concat(cli.wrap(cli.EXIT_TEXT:gsub("^e", "E") .. ".", 78), "\n")
  return table.concat(out, "\n")
end

--- Print the main help (the host's --help).
function commands.print_help()
  print(commands.help_text())
end

--- Run command `name` with the list of string arguments `args`; returns
-- the exit code. An unknown command is a usage error (exit 2).
function commands.run(name, args)
  local mod = commands.load(name)
  if not mod then
    local cli = require "tdm.cli"
    local s = cli.suggest(name, commands.names())
    usage_error("unknown command '%s'%s; run 'tdm-lua help' for the list",
                name, s and (" (did you mean '" .. s .. "'?)") or "")
  end
  return mod.run(args)
end

--- The host's entry for a command line that starts with an option:
-- `args` is everything after the host's own options. Options before the
-- command are moved after it (so `tdm-lua --data-root X audit` is
-- `tdm-lua audit --data-root X`); returns the command's exit code.
function commands.main(args)
  local cli = require "tdm.cli"
  local known = {}
  for _, g in pairs(cli.groups) do
    for _, o in ipairs(g) do
      known[o[1]] = o
      for _, a in ipairs(o.alias or {}) do known[a] = o end
    end
  end
  local before, i = {}, 1
  while i <= #args and args[i]:sub(1, 1) == "-" and args[i] ~= "-" do
    local a = args[i]
    local flag, inline = a:match("^(%-%-[%w%-]+)=(.*)$")
    local o = known[flag or a]
    if a == "--" then i = i + 1; break end
    if not o then
      local names = {}
      for k in pairs(known) do names[#names + 1] = k end
      table.sort(names)
      local s = cli.suggest(flag or a, names)
      usage_error("unknown option '%s'%s; run 'tdm-lua --help' for usage",
                  flag or a, s and (" (did you mean '" .. s .. "'?)") or "")
    end
    before[#before + 1] = a
    if o[3] ~= "flag" and not inline then
      i = i + 1
      if args[i] == nil then usage_error("%s needs a value", a) end
      before[#before + 1] = args[i]
    end
    if o[2] == "help" and i == #args then
      print(commands.help_text())
      return 0
    end
    i = i + 1
  end
  local name = args[i]
  if name == nil then
    usage_error("no command given; run 'tdm-lua help' for the list%s",
                before[#before] == "-v" and " (-V or --version prints the version)" or "")
  end
  if name:find("/", 1, true) or name:match("%.lua$") then
    usage_error("options before a script apply only to commands; set "
                .. "TDM_* variables or pass tdm.config overrides in %s", name)
  end
  local rest = {}
  for j = i + 1, #args do rest[#rest + 1] = args[j] end
  -- "--" ends the command's options: the global ones go before it.
  local cmd_args = {}
  for _, a in ipairs(rest) do cmd_args[#cmd_args + 1] = a end
  local dd
  for j, a in ipairs(cmd_args) do if a == "--" then dd = j; break end end
  local at = dd or #cmd_args + 1
  for k, a in ipairs(before) do table.insert(cmd_args, at + k - 1, a) end
  return commands.run(name, cmd_args)
end

return commands
