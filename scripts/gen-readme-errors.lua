--- gen-readme-errors.lua -- the README's short error-code table, filled
-- from tdm.core.errors (include/tdm/errcodes.def, the one table) between
-- the markers <!-- errors:begin --> and <!-- errors:end -->, so it cannot
-- disagree with docs/errors.md or with what tdm says.
--
--   tdm-lua scripts/gen-readme-errors.lua README.md [--check]
local path, mode = arg[1], arg[2]
assert(path, "usage: gen-readme-errors.lua README.md [--check]")
local errors = require("tdm.core").errors

-- The codes an operator meets most, in the order the README lists them.
local codes = {
  "EUSAGE", "ECONFIG", "ENOCREDS", "EBADCREDS", "S3_NoSuchBucket",
  "S3_AccessDenied", "S3_InvalidAccessKeyId", "S3_SignatureDoesNotMatch",
  "S3_RequestTimeTooSkewed", "S3_PermanentRedirect", "S3_ExpiredToken",
  "ENOACTOR", "LOCKED", "BADMANIFEST", "S3_BadDigest", "ETIMEDOUT",
  "ECONNREFUSED", "ETLS", "ENOSPC",
}

local rows = { "| code | meaning | retried | what to do |", "| --- | --- | --- | --- |" }
for _, c in ipairs(codes) do
  local e = assert(errors[c], "no such code in the error table: " .. c)
  local advice = (e.advice or "") ~= "" and e.advice or "-"
  rows[#rows + 1] = string.format("| `%s` | %s | %s | %s |", c, e.meaning,
                                  e.retryable and "yes" or "no", advice)
end
local block = "<!-- errors:begin (scripts/gen-readme-errors.lua) -->\n"
  .. table.concat(rows, "\n") .. "\n<!-- errors:end -->"

local f = assert(io.open(path))
local text = f:read("a")
f:close()
local a = text:find("<!-- errors:begin", 1, true)
local _, b = text:find("<!-- errors:end -->", 1, true)
assert(a and b, path .. ": no <!-- errors:begin --> ... <!-- errors:end --> markers")
local new = text:sub(1, a - 1) .. block .. text:sub(b + 1)
if mode == "--check" then
  if new ~= text then
    io.stderr:write(path, ": the error-code table is out of date; run ",
                    "tdm-lua scripts/gen-readme-errors.lua ", path, "\n")
    os.exit(1)
  end
  print(path .. ": error-code table up to date")
else
  f = assert(io.open(path, "w"))
  f:write(new)
  f:close()
end
