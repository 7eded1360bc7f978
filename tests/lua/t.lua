--- t.lua -- a small test helper for tdm's Lua tests.
--
--   local t = require "t"
--   t.test("name", function() t.eq(got, want, "what") end)
--   t.checkerr(fn, "pattern", {files...})  -- fails with a matching
--                                          -- message, files unchanged
--   local m = t.require_no_globals("tdm.x") -- loads, no globals written
--   return t.done()                        -- prints "N passed, N failed"
local t = { passed = 0, failed = 0 }

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

local function deep_eq(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do if not deep_eq(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end
t.deep_eq = deep_eq

--- Raise a test failure unless `got == want` (deep for tables).
function t.eq(got, want, what)
  if not deep_eq(got, want) then
    error(string.format("%s: expected %s, got %s", what or "value",
                        show(want), show(got)), 2)
  end
end

function t.ok(cond, what)
  if not cond then error((what or "condition") .. ": expected true", 2) end
  return cond
end

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
t.read = read_all

function t.write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

--- Expect `fn` to fail -- by raising, or by returning nil, message -- with
-- a message matching `pattern` (plain substring), and every file in
-- `files` to have the same bytes afterwards.
function t.checkerr(fn, pattern, files)
  local before = {}
  for _, p in ipairs(files or {}) do before[p] = read_all(p) or false end
  local ok, r1, r2 = pcall(fn)
  local msg
  if not ok then msg = tostring(r1)
  elseif r1 == nil then msg = tostring(r2)
  else error("expected a failure matching '" .. pattern .. "', got success",
             2) end
  if not msg:find(pattern, 1, true) then
    error(string.format("expected an error containing %q, got %q", pattern,
                        msg), 2)
  end
  for _, p in ipairs(files or {}) do
    if (read_all(p) or false) ~= before[p] then
      error("file changed by a failing call: " .. p, 2)
    end
  end
  return msg
end

--- Require each named module and raise unless none was loaded before (the
-- check would see nothing), each returns a table, and no global was
-- created meanwhile (all new ones named). Returns the modules, in order.
function t.require_no_globals(...)
  local names, mods, before, new = { ... }, {}, {}, {}
  for _, name in ipairs(names) do
    if package.loaded[name] ~= nil then
      error(name .. ": expected not loaded before the globals check, got " ..
            "loaded", 2)
    end
  end
  for k in pairs(_G) do before[k] = true end
  for i, name in ipairs(names) do mods[i] = require(name) end
  for k in pairs(_G) do
    if not before[k] then new[#new + 1] = tostring(k) end
  end
  table.sort(new)
  if #new > 0 then
    error("expected no new globals, got: " .. table.concat(new, ", "), 2)
  end
  for i, name in ipairs(names) do
    if type(mods[i]) ~= "table" then
      error(string.format("%s: expected a table, got %s", name,
                          type(mods[i])), 2)
    end
  end
  return table.unpack(mods, 1, #names)
end

function t.test(name, fn)
  local ok, err = xpcall(fn, debug.traceback)
  if ok then
    t.passed = t.passed + 1
  else
    t.failed = t.failed + 1
    print("not ok - " .. name .. ": " .. tostring(err))
  end
end

--- A fresh temporary directory (removed by t.done).
local tmpdirs = {}
function t.tmpdir()
  local p = io.popen("mktemp -d")
  local dir = p:read("l")
  p:close()
  tmpdirs[#tmpdirs + 1] = dir
  return dir
end

--- `s` quoted for a POSIX shell command line.
function t.shq(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

function t.sh(cmd)
  local ok = os.execute(cmd)
  return ok
end

function t.done()
  for _, d in ipairs(tmpdirs) do os.execute("rm -rf '" .. d .. "'") end
  print(string.format("%d passed, %d failed", t.passed, t.failed))
  return t.failed == 0 and 0 or 1
end

return t
