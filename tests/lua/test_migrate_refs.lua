-- test_migrate_refs.lua -- the legacy response.json reference extractor
-- (tdm.legacy_refs): every accepted shape maps to the right files, every
-- garbled or hostile document is refused with its reason, and the
-- functions are pure (no globals, same answer twice).
local t = require "t"
local refs = require "tdm.legacy_refs"
local ROOT = os.getenv("TDM_TEST_ROOT") or "."
local lf = dofile(ROOT .. "/tests/lib/legacy_fixture.lua")

local ctxs = {
  { actor_name = "0042_european_30_male", bucket = "story-boards-assets",
    prefix = "system_actors/training_data", region = "us-west-1",
    public_url_base = "https://story-boards-assets.s3.us-west-1.amazonaws.com" },
  -- another prefix, bucket and a name with pattern characters in it
  { actor_name = "7_a-b.c(d)%", bucket = "other.bucket", prefix = "p/q",
    region = "eu-central-1" },
}

for _, ctx in ipairs(ctxs) do
  for _, c in ipairs(lf.accepted(ctx)) do
    t.test(ctx.actor_name .. ": accepts " .. c.name, function()
      local entries, ignored = refs.interpret(c.text, ctx)
      t.ok(entries, "interpret: " .. tostring(ignored))
      local got = {}
      for i, e in ipairs(entries) do
        got[i] = e.filename
        t.eq(e.by, c.by[e.filename], c.name .. ": how " .. e.filename .. " was mapped")
        t.eq(e.key, ctx.prefix .. "/" .. ctx.actor_name .. "/" .. e.filename,
             c.name .. ": key")
        t.eq(e.filename:match("_(%d+)%.%w+$"), tostring(e.index), "index")
      end
      t.eq(got, c.want, c.name .. ": files")
    end)
  end
  for _, c in ipairs(lf.garbled(ctx)) do
    t.test(ctx.actor_name .. ": refuses " .. c.name, function()
      local entries, why = refs.interpret(c.text, ctx)
      t.eq(entries, nil, c.name .. ": entries")
      t.ok(type(why) == "string" and why:find(c.reason, 1, true),
           string.format("%s: reason containing %q, got %q", c.name,
                         c.reason, tostring(why)))
      t.ok(not why:find("\n"), "reason is one line")
    end)
  end
end

t.test("extract returns raw references in document order", function()
  local list, ignored = refs.extract(
    '{"status": "x", "output": ["a/0042_x_1.jpg", "https://h/p.html"], '
    .. '"images": [{"url": "s3://b/k/0042_x_0.png"}]}')
  t.eq(#list, 2, "count")
  -- fields in REF_KEYS order: output before images
  t.eq(list[1].ref, "a/0042_x_1.jpg", "first")
  t.eq(list[1].path, "$.output[0]", "path of first")
  t.eq(list[2].ref, "s3://b/k/0042_x_0.png", "second")
  t.eq(list[2].path, "$.images[0].url", "path of second")
  t.eq(ignored, 1, "ignored strings")
end)

t.test("outside reference fields: only this actor's own URLs count", function()
  local ctx = ctxs[1]
  local a = ctx.actor_name
  local own = ctx.public_url_base .. "/" .. ctx.prefix .. "/" .. a .. "/" .. a .. "_4.jpg"
  local other = ctx.public_url_base .. "/" .. ctx.prefix .. "/0043_y/0043_y_1.jpg"
  local doc = '{"x": {"y": [' .. string.format("%q", own) .. ', '
    .. string.format("%q", other) .. ', "data/actors/' .. a
    .. '/training_data/' .. a .. '_5.jpg"]}}'
  local entries, why = refs.interpret(doc, ctx)
  t.ok(entries, "interpret: " .. tostring(why))
  t.eq(#entries, 1, "one entry (another actor's URL and a relative path "
       .. "outside reference fields are not references)")
  t.eq(entries[1] and entries[1].filename, a .. "_4.jpg", "the own URL")
  t.eq(entries[1] and entries[1].path, "$.x.y[0]", "where it was")
end)

t.test("refusal names the candidates, without query strings", function()
  local ctx = ctxs[1]
  local e, why = refs.interpret('{"status": "queued", "id": 12}', ctx)
  t.eq(e, nil, "refused")
  t.ok(why:find("no URL or image name anywhere", 1, true), "nothing seen: " .. why)
  local many = {}
  for i = 1, 8 do
    many[i] = string.format('"https://cdn.example.com/%d.jpg?X-Amz-Security-Token=TOKEN%d"', i, i)
  end
  e, why = refs.interpret('{"blobs": [' .. table.concat(many, ", ") .. ']}', ctx)
  t.eq(e, nil, "foreign URLs under an unknown key are refused")
  t.ok(why:find("$.blobs[0] https://cdn.example.com/1.jpg?…", 1, true), "first candidate: " .. why)
  t.ok(why:find("and 3 more", 1, true), "count of the rest: " .. why)
  t.ok(not why:find("TOKEN", 1, true), "no query string (secrets) in: " .. why)
  t.ok(not why:find("\n"), "one line")
end)

t.test("classify: S3 forms (tdm.s3.parse_url), foreign URLs, plain paths", function()
  local scfg = setmetatable({ bucket = "b", public_url_base = "https://cdn.example.org/pub" }, {})
  local cases = {
    { "https://b.s3.us-west-1.amazonaws.com/k/x.jpg", { key = "k/x.jpg" } },
    { "https://b.s3.amazonaws.com/k/x.jpg", { key = "k/x.jpg" } },
    { "https://b.s3-eu-west-1.amazonaws.com/k/x.jpg", { key = "k/x.jpg" } },
    { "https://s3.us-west-1.amazonaws.com/b/k/x.jpg", { key = "k/x.jpg" } },
    { "https://s3.amazonaws.com/b/k/x.jpg?v=1#f", { key = "k/x.jpg" } },
    { "s3://b/k/a%20b.jpg", { key = "k/a b.jpg" } },
    { "https://cdn.example.org/pub/k/x.jpg", { key = "k/x.jpg" } },
    { "https://cdn.example.com/x/y%5F1.jpg?sig=1", { foreign = true, path = "/x/y_1.jpg" } },
    { "x/y.jpg", { path = "x/y.jpg" } },
  }
  for _, c in ipairs(cases) do
    t.eq(refs.classify(c[1], scfg), c[2], c[1])
  end
  for _, c in ipairs({ { "ftp://h/x.jpg", "unsupported URL scheme" },
                       { "s3://other/k/x.jpg", "bucket 'other'" },
                       { "https://other.s3.amazonaws.com/k/x.jpg", "bucket 'other'" },
                       { "https://s3.amazonaws.com/other/k/x.jpg", "bucket 'other'" } }) do
    local r, why = refs.classify(c[1], scfg)
    t.eq(r, nil, c[1] .. " refused")
    t.ok(tostring(why):find(c[2], 1, true), c[1] .. ": reason " .. tostring(why))
  end
end)

t.test("limits", function()
  local many = {}
  for i = 1, refs.MAX_REFS + 1 do many[i] = string.format('"0042_x_%d.jpg"', i) end
  local e, why = refs.interpret("[" .. table.concat(many, ",") .. "]",
                                { actor_name = "0042_x" })
  t.eq(e, nil, "too many refs")
  t.ok(why:find("more than", 1, true), "too many: " .. tostring(why))
  e, why = refs.interpret('["' .. string.rep("a", refs.MAX_REF_LEN) .. '/0042_x_1.jpg"]',
                          { actor_name = "0042_x" })
  t.eq(e, nil, "long ref")
  t.ok(why:find("longer than", 1, true), "long ref: " .. tostring(why))
  e, why = refs.extract(string.rep(" ", refs.MAX_BYTES + 1))
  t.eq(e, nil, "big document")
  t.ok(why:find("larger than", 1, true), "big: " .. tostring(why))
  local deep = '"0042_x_1.jpg"'
  for _ = 1, refs.MAX_DEPTH + 1 do deep = '{"output": [' .. deep .. ']}' end
  e, why = refs.interpret(deep, { actor_name = "0042_x" })
  t.eq(e, nil, "deep")
  t.ok(why:find("deeper than", 1, true) or why:find("invalid JSON", 1, true),
       "deep: " .. tostring(why))
end)

t.test("pure: no globals, same answer twice, misuse raises", function()
  local before = {}
  for k in pairs(_G) do before[k] = true end
  local c = lf.accepted(ctxs[1])[1]
  local a1 = refs.interpret(c.text, ctxs[1])
  local a2 = refs.interpret(c.text, ctxs[1])
  t.eq(a1, a2, "same result")
  for k in pairs(_G) do t.ok(before[k], "new global " .. tostring(k)) end
  t.ok(not pcall(refs.extract, 42), "non-string raises")
  t.ok(not pcall(refs.interpret, "[]", {}), "no actor raises")
end)

t.test("seeded mutations: never raises, entries always safe", function()
  local core = require "tdm.core"
  local ctx = ctxs[1]
  local seeds = {}
  for _, c in ipairs(lf.accepted(ctx)) do seeds[#seeds + 1] = c.text end
  for _, c in ipairs(lf.garbled(ctx)) do seeds[#seeds + 1] = c.text end
  local state = 12345
  local function rand(n)
    state = (state * 1103515245 + 12345) % 2147483648
    return state % n
  end
  local alphabet = { "/", "..", "%2F", "\\", "\\u0000", "_", "0", "9", ".jpg",
                     "\"", "[", "]", "{", "}", ",", ":", "s3://", "https://",
                     ctx.actor_name, "0043_x_", "?", "#", "%" }
  for _ = 1, 3000 do
    local s = seeds[rand(#seeds) + 1]
    for _ = 1, rand(4) + 1 do
      local pos = rand(#s + 1)
      local op = rand(3)
      if op == 0 then
        s = s:sub(1, pos) .. alphabet[rand(#alphabet) + 1] .. s:sub(pos + 1)
      elseif op == 1 then
        s = s:sub(1, pos) .. s:sub(pos + 2 + rand(8))
      else
        s = s:sub(1, pos) .. string.char(rand(256)) .. s:sub(pos + 2)
      end
    end
    local ok, entries, why = pcall(refs.interpret, s, ctx)
    t.ok(ok, "interpret raised on " .. string.format("%q", s) .. ": " .. tostring(entries))
    if entries then
      local seen = {}
      for _, e in ipairs(entries) do
        t.ok(core.check_name(e.filename), "safe filename " .. e.filename)
        local n = e.filename:match("^" .. ctx.actor_name .. "_(%d+)%.%w+$")
        t.ok(n and tonumber(n) == e.index and math.type(e.index) == "integer",
             "filename/index " .. e.filename)
        t.ok(not seen[e.index], "distinct index")
        seen[e.index] = true
        t.eq(e.key, ctx.prefix .. "/" .. ctx.actor_name .. "/" .. e.filename, "key")
      end
    else
      t.eq(type(why), "string", "reason")
    end
  end
end)

return t.done()
