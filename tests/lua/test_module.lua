-- test_module.lua -- the tdm module as Lua sees it: loading, hashing,
-- errors, no globals written.
local t = require "t"

local tdm
t.test("module writes no globals", function()
  tdm = t.require_no_globals("tdm")
end)
tdm = tdm or require "tdm"

t.test("version", function()
  t.ok(type(tdm.version) == "string" and tdm.version:match("^%d+%.%d+%.%d+"),
       "tdm.version is x.y.z")
end)

t.test("md5 vectors", function()
  local cases = {
    { "", "d41d8cd98f00b204e9800998ecf8427e" },
    { "abc", "900150983cd24fb0d6963f7d28e17f72" },
    { "message digest", "f96b697d7cb7938d525a2f31aaf161d0" },
    { "a\0b", "70350f6027bce3713f6b76473084309b" },
  }
  for _, c in ipairs(cases) do t.eq(tdm.md5(c[1]), c[2], "md5 of " .. c[1]) end
  t.eq(tdm.sha256("abc"),
       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
       "sha256 abc")
end)

t.test("md5_file matches md5sum", function()
  local dir = t.tmpdir()
  for _, size in ipairs({ 0, 1, 262144, 262145, 1000003 }) do
    local path = dir .. "/f" .. size
    t.write(path, string.rep("xyz\1", size // 4 + 1):sub(1, size))
    local hex, n = tdm.md5_file(path)
    local p = io.popen("md5sum " .. path)
    local want = p:read("l"):match("^(%x+)")
    p:close()
    t.eq(hex, want, "md5_file " .. size)
    t.eq(n, size, "size " .. size)
  end
end)

t.test("md5_file errors return nil, message, code", function()
  local dir = t.tmpdir()
  local hex, msg, code = tdm.md5_file(dir .. "/nope")
  t.eq(hex, nil, "result")
  t.ok(msg:find(dir .. "/nope", 1, true), "message names the file: " .. msg)
  t.eq(code, "ENOENT", "code")
  hex, msg, code = tdm.md5_file(dir)
  t.eq(code, "EISDIR", "directory code")
end)

t.test("misuse raises", function()
  t.ok(not pcall(tdm.md5), "md5() without an argument raises")
  t.ok(not pcall(tdm.md5_file, {}), "md5_file({}) raises")
end)

t.test("name checks", function()
  local core = tdm.core
  t.ok(core.check_name("0042_x_0.jpg"), "plain name")
  for _, bad in ipairs({ "", ".", "..", "a/b", "a\0b", "a\\b",
                         string.rep("x", 256) }) do
    local ok, msg, code = core.check_name(bad, "filename")
    t.eq(ok, nil, "check_name(" .. string.format("%q", bad) .. ")")
    t.eq(code, "EBADNAME", "code")
    t.ok(msg:find("filename", 1, true), "message says what: " .. msg)
  end
  t.ok(core.check_relpath("data/actors/x/y.jpg"), "relative path")
  for _, bad in ipairs({ "/etc/passwd", "data/../../x", "..", "a/\0" }) do
    t.eq(core.check_relpath(bad), nil, "check_relpath " .. bad)
  end
end)

return t.done()
