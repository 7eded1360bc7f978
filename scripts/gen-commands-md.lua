--- gen-commands-md.lua -- keep docs/commands.md true: the fenced block
-- after each "## COMMAND" heading (and "## tdm-lua") is the program's own
-- `--help` text, replaced here with what the binary prints now; a command
-- with no section gets one. The notes between the blocks are the page's.
--
--   tdm-lua scripts/gen-commands-md.lua ./tdm-lua docs/commands.md
--   tdm-lua scripts/gen-commands-md.lua ./tdm-lua docs/commands.md --check
--     (exit 1 and name the stale sections when the page is out of date;
--      `make docs` regenerates it)
local exe, path, mode = arg[1], arg[2], arg[3]
assert(exe and path, "usage: gen-commands-md.lua TDM-LUA PAGE [--check]")

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  p:close()
  return (out:gsub("\n+$", ""))
end

local f = assert(io.open(path))
local page = f:read("a")
f:close()

local main_help = run(exe .. " --help")
local names = {}
for line in (main_help:match("commands:\n(.-)\n\n") or ""):gmatch("[^\n]+") do
  local name = line:match("^  ([%w][%w%-_]*)%s")
  if name then names[#names + 1] = name end
end
local help = { ["tdm-lua"] = main_help }
for _, n in ipairs(names) do help[n] = run(exe .. " " .. n .. " --help") end

-- Split into sections at "## " headings; replace each one's first fence.
local out, stale, seen = {}, {}, {}
local pos = 1
local heads = {}
for s, title in page:gmatch("()## ([^\n]+)\n") do heads[#heads + 1] = { s, title } end
out[#out + 1] = page:sub(1, heads[1] and heads[1][1] - 1 or #page)
for i, h in ipairs(heads) do
  local stop = heads[i + 1] and heads[i + 1][1] - 1 or #page
  local body = page:sub(h[1], stop)
  local name = h[2]:match("^([%w][%w%-_]*)%s*$")
  if name and help[name] then
    seen[name] = true
    local a, b = body:find("```\n.-\n```\n")
    local block = "```\n" .. help[name] .. "\n```\n"
    if a then
      if body:sub(a, b) ~= block then stale[#stale + 1] = name end
      body = body:sub(1, a - 1) .. block .. body:sub(b + 1)
    else
      stale[#stale + 1] = name
      body = body:gsub("\n*$", "\n\n") .. block .. "\n"
    end
  end
  -- New commands go before the first section that is not a command.
  if not name or not help[name] then
    if h[2] ~= "Common behaviour" and pos == 1 then
      pos = 2
      for _, n in ipairs(names) do
        if not page:find("\n## " .. n .. "\n", 1, true) then
          stale[#stale + 1] = n
          out[#out + 1] = "## " .. n .. "\n\n```\n" .. help[n] .. "\n```\n\n"
        end
      end
    end
  end
  out[#out + 1] = body
end
local new = table.concat(out)

if mode == "--check" then
  if new ~= page then
    io.stderr:write(path, " is out of date (sections: ", table.concat(stale, ", "),
                    "); run 'make docs'\n")
    os.exit(1)
  end
  print(path .. " is up to date")
else
  local w = assert(io.open(path, "w"))
  w:write(new)
  w:close()
end
