--- tdm-lua help [COMMAND]: the main help, or COMMAND's (as COMMAND --help).
local commands = require "tdm.commands"

local usage = [[
usage: tdm-lua help [COMMAND]

Print the list of commands and the global options, or COMMAND's help
(the same as 'tdm-lua COMMAND --help').]]

local function run(args)
  if #args == 0 then
    print(commands.help_text())
    return 0
  end
  if args[1] == "-h" or args[1] == "--help" then
    print(usage)
    return 0
  end
  if #args > 1 then
    require("tdm.cli").usage_error("help: expected one COMMAND, got %d", #args)
  end
  if args[1] == "help" then
    print(usage)
    return 0
  end
  return commands.run(args[1], { "--help" })
end

return { summary = "show the help of a command (tdm-lua help COMMAND)",
         run = run, usage = usage }
