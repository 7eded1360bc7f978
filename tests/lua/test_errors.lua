-- The one error table (include/tdm/errcodes.def) as tdm.core.errors, the
-- page generated from it, and the codes the core and Lua produce.
local t = require "t"
local errors = require("tdm.core").errors
local ROOT = os.getenv("TDM_TEST_ROOT") or "."

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function run(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

t.test("every entry has a meaning, a retry flag, an HTTP status, advice", function()
  local n = 0
  for code, e in pairs(errors) do
    n = n + 1
    t.ok(code:match("^[A-Z][A-Za-z0-9_.]+$"), "code " .. code .. " is a plain name")
    t.ok(type(e.meaning) == "string" and #e.meaning > 0, code .. ": meaning")
    t.eq(type(e.retryable), "boolean", code .. ": retryable")
    t.ok(math.type(e.http_status) == "integer" and e.http_status >= 400
         and e.http_status <= 599, code .. ": http_status 4xx/5xx, got "
         .. tostring(e.http_status))
    t.eq(type(e.advice), "string", code .. ": advice")
  end
  t.ok(n >= 50, "the table holds the codes (" .. n .. ")")
  local last = 0
  for _, e in pairs(errors) do last = math.max(last, e.order) end
  t.eq(last, n, "no code listed twice in errcodes.def")
end)

t.test("the table says what the transfer loop does", function()
  t.eq(errors.S3_SlowDown.retryable, true, "SlowDown is retried")
  t.eq(errors.ETIMEDOUT.retryable, true, "timeouts are retried")
  t.eq(errors.ETLS.retryable, false, "an untrusted certificate is not")
  t.eq(errors.S3_AccessDenied.retryable, false, "AccessDenied is not")
  t.eq(errors.S3_PreconditionFailed.retryable, false, "a taken key is not")
  t.eq(errors.S3_NoSuchKey.http_status, 404, "a missing object is a 404")
  t.eq(errors.ENOACTOR.http_status, 404, "an unknown actor is a 404")
  t.ok(errors.S3_SignatureDoesNotMatch.advice:find("AWS_SECRET_ACCESS_KEY", 1, true),
       "the signature advice names the secret")
end)

t.test("docs/errors.md is what scripts/gen-errors.lua writes", function()
  local out, ok = run("tdm-lua " .. ROOT .. "/scripts/gen-errors.lua")
  t.ok(ok, "gen-errors.lua runs")
  t.eq(out == read(ROOT .. "/docs/errors.md"), true,
       "docs/errors.md is current (run `make docs/errors.md`)")
  for code in pairs(errors) do
    t.ok(out:find("`" .. code .. "`", 1, true), code .. " is on the page")
  end
end)

-- Codes written as literals where errors are made: in C the code argument
-- of tdm_error_set/xerr, in Lua a code literal ending a line of arguments.
t.test("every code the sources produce is in the table", function()
  local missing, seen = {}, 0
  local function check(code, where)
    seen = seen + 1
    if not errors[code] then missing[#missing + 1] = code .. " (" .. where .. ")" end
  end
  local files = run("cd " .. ROOT .. " && ls src/*.c lua/tdm/*.lua lua/tdm/commands/*.lua")
  for path in files:gmatch("[^\n]+") do
    local src = read(ROOT .. "/" .. path)
    if path:match("%.c$") then
      for code in src:gmatch('tdm_error_set%([^,]+,%s*"([A-Z][A-Za-z0-9_]+)"') do
        check(code, path)
      end
      for code in src:gmatch('xerr%([^,]+,[^,]+,%s*"([A-Z][A-Za-z0-9_]+)"') do
        check(code, path)
      end
      for code in src:gmatch('case E[A-Z0-9]+: return "(E[A-Z0-9]+)"') do
        check(code, path)
      end
    else
      -- the last argument of a line (return nil, msg, "CODE" and the
      -- fail(..., "CODE") helpers, also when the message spans lines)
      for code in src:gmatch(',%s*"([A-Z][A-Z0-9_]+)"%s*%)?%s*\n') do
        if code:match("^E[A-Z0-9]+$") or code:match("^S3_")
           or code:match("^BAD") or code == "LOCKED" then
          check(code, path)
        end
      end
    end
  end
  t.ok(seen > 50, "codes found in the sources (" .. seen .. ")")
  table.sort(missing)
  t.eq(table.concat(missing, ", "), "", "codes missing from include/tdm/errcodes.def")
end)

return t.done()
