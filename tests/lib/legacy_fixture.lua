--- tests/lib/legacy_fixture.lua -- legacy training_data/response.json
-- documents in every shape `tdm-lua migrate` accepts, and garbled ones it
-- must refuse, for the extractor's table tests, migrate's end-to-end tests
-- and the demo.
--
--   local lf = dofile(ROOT .. "/tests/lib/legacy_fixture.lua")
--   local ctx = { actor_name = "0042_x", bucket = "story-boards-assets",
--                 prefix = "t/abc", region = "us-west-1" }
--   for _, c in ipairs(lf.accepted(ctx)) do
--     -- c.name, c.text, c.want = { filenames in index order },
--     -- c.by = { filename -> "name"|"position" }
--   end
--   for _, c in ipairs(lf.garbled(ctx)) do
--     -- c.name, c.text, c.reason = plain substring of the refusal
--   end
--   lf.write(data_root, actor_name, text)   -- writes the response.json
--
-- Every case builds its URLs from ctx, so a test's own prefix and bucket
-- are used.
local lf = {}

local function base(ctx)
  return string.format("https://%s.s3.%s.amazonaws.com", ctx.bucket,
                       ctx.region or "us-west-1")
end

local function key(ctx, actor, fn)
  return (ctx.prefix ~= "" and (ctx.prefix .. "/") or "") .. actor .. "/" .. fn
end

local function vurl(ctx, fn, actor)
  return base(ctx) .. "/" .. key(ctx, actor or ctx.actor_name, fn)
end

local function purl(ctx, fn)
  return string.format("https://s3.%s.amazonaws.com/%s/%s",
                       ctx.region or "us-west-1", ctx.bucket,
                       key(ctx, ctx.actor_name, fn))
end

local function s3url(ctx, fn)
  return string.format("s3://%s/%s", ctx.bucket, key(ctx, ctx.actor_name, fn))
end

local function q(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' elseif c == "\\" then return "\\\\" end
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function list(items)
  local out = {}
  for i, s in ipairs(items) do out[i] = q(s) end
  return "[" .. table.concat(out, ", ") .. "]"
end

local function names(actor, ...)
  local out = {}
  for i, idx in ipairs({ ... }) do
    out[i] = string.format("%s_%d.jpg", actor, idx)
  end
  return out
end

--- The accepted shapes for ctx.actor_name.
function lf.accepted(ctx)
  local a = ctx.actor_name
  local fn = function(i, ext) return string.format("%s_%d.%s", a, i, ext or "jpg") end
  local cases = {}
  local function case(name, text, want, by)
    local byt = {}
    for _, f in ipairs(want) do byt[f] = (by and by[f]) or "name" end
    cases[#cases + 1] = { name = name, text = text, want = want, by = byt }
  end
  case("list of virtual-hosted URLs",
       list({ vurl(ctx, fn(0)), vurl(ctx, fn(1)), vurl(ctx, fn(2)) }),
       names(a, 0, 1, 2))
  case("list of path-style URLs",
       list({ purl(ctx, fn(0)), purl(ctx, fn(1)) }), names(a, 0, 1))
  case("list of s3:// URLs",
       list({ s3url(ctx, fn(2)), s3url(ctx, fn(0)) }), names(a, 0, 2))
  case("object with url",
       '{"url": ' .. q(vurl(ctx, fn(3))) .. ', "seed": "12345"}', names(a, 3))
  case("object with s3_url list",
       '{"s3_url": ' .. list({ vurl(ctx, fn(0)), vurl(ctx, fn(1)) }) .. '}',
       names(a, 0, 1))
  case("images of objects with image_url",
       '{"images": [{"image_url": ' .. q(purl(ctx, fn(0))) .. ', "width": 512},'
       .. ' {"image_url": ' .. q(purl(ctx, fn(1))) .. '}]}', names(a, 0, 1))
  -- A Replicate-style prediction: outputs are generator URLs whose names do
  -- not follow the scheme (mapped by position); "urls" holds API links.
  case("replicate output by position",
       '{"id": "abc", "status": "succeeded", "urls": {"get": '
       .. '"https://api.replicate.com/v1/predictions/abc", "cancel": '
       .. '"https://api.replicate.com/v1/predictions/abc/cancel"}, "output": '
       .. list({ "https://replicate.delivery/pbxt/X/out-0.png",
                 "https://replicate.delivery/pbxt/Y/out-1.png",
                 "https://replicate.delivery/pbxt/Z/out-2.png" }) .. '}',
       { fn(0, "png"), fn(1, "png"), fn(2, "png") },
       { [fn(0, "png")] = "position", [fn(1, "png")] = "position",
         [fn(2, "png")] = "position" })
  case("urls list", '{"urls": ' .. list({ s3url(ctx, fn(4)) }) .. '}',
       names(a, 4))
  case("training_data entries with several URL fields",
       '{"training_data": [{"filename": "x", "url": '
       .. q("https://replicate.delivery/a/out-0.png") .. ', "s3_url": '
       .. q(vurl(ctx, fn(5))) .. '}, {"s3_url": ' .. q(vurl(ctx, fn(6)))
       .. '}]}', names(a, 5, 6))
  case("nested objects",
       '{"result": {"data": {"batch": [{"output": {"images": [{"url": '
       .. q(vurl(ctx, fn(0))) .. '}, {"url": ' .. q(vurl(ctx, fn(1)))
       .. '}]}}]}}}', names(a, 0, 1))
  case("plain file names and local paths",
       list({ fn(0), "data/actors/" .. a .. "/training_data/" .. fn(1) }),
       names(a, 0, 1))
  case("presigned URL with a query string",
       list({ vurl(ctx, fn(2)) .. "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=ab" }),
       names(a, 2))
  case("percent-encoded key",
       list({ (vurl(ctx, fn(1)):gsub("_1%.jpg$", "%%5F1.jpg")) }), names(a, 1))
  case("a single URL string", q(vurl(ctx, fn(7))), names(a, 7))
  case("mixed extensions",
       list({ vurl(ctx, fn(0, "png")), vurl(ctx, fn(1, "jpeg")),
              vurl(ctx, fn(2, "webp")) }),
       { fn(0, "png"), fn(1, "jpeg"), fn(2, "webp") })
  case("duplicate references kept once",
       list({ vurl(ctx, fn(0)), s3url(ctx, fn(0)), vurl(ctx, fn(0)) }),
       names(a, 0))
  local deep = q(vurl(ctx, fn(8)))
  for _ = 1, 20 do deep = '{"output": [' .. deep .. ']}' end
  case("20 levels deep", deep, names(a, 8))
  -- URLs of this actor's folder count under any field name (issue 15);
  -- foreign URLs and bare names there do not.
  case("own URLs under unknown field names",
       '{"data": {"outputs": [{"src": {"full": ' .. q(vurl(ctx, fn(0)))
       .. ', "thumb": "https://cdn.example.com/t/0.jpg"}}, {"src": {"full": '
       .. q(purl(ctx, fn(1))) .. '}}], "note": ' .. q(fn(9)) .. '}, '
       .. '"meta": {"copies": [' .. q(s3url(ctx, fn(2))) .. ']}}',
       names(a, 0, 1, 2))
  case("own URL beside a generator URL in one object",
       '{"results": [{"url": "https://replicate.delivery/x/out-0.png", '
       .. '"stored_at": ' .. q(vurl(ctx, fn(3))) .. '}, {"url": '
       .. '"https://replicate.delivery/y/out-1.png", "stored_at": '
       .. q(vurl(ctx, fn(4)) .. "?X-Amz-Signature=ab") .. '}]}',
       names(a, 3, 4))
  return cases
end

--- Documents migrate must refuse, each with the reason it must give.
function lf.garbled(ctx)
  local a = ctx.actor_name
  local other = "0043_someone_else"
  local fn = function(i) return string.format("%s_%d.jpg", a, i) end
  local cases = {}
  local function case(name, text, reason)
    cases[#cases + 1] = { name = name, text = text, reason = reason }
  end
  local good = list({ vurl(ctx, fn(0)), vurl(ctx, fn(1)) })
  case("truncated JSON", good:sub(1, #good - 20), "invalid JSON")
  case("empty file", "", "invalid JSON")
  case("binary garbage", "\0\1\2\255\254 not json", "invalid JSON")
  case("a number", "42", "no image references found")
  case("wrong types", '{"images": 42, "output": {"count": 3}, "url": true}',
       "no image references found")
  case("list of numbers", "[1, 2, 3]", "no image references found")
  case("null", "null", "no image references found")
  case("no image URLs", '{"output": ["https://example.com/page.html"]}',
       "no image references found")
  -- Outside reference fields only this actor's own URLs count: relative
  -- names and foreign URLs there are named in the refusal, not guessed at.
  case("bare names and foreign URLs under unknown fields",
       '{"data": {"files": [' .. q(fn(0)) .. ', '
       .. '"https://cdn.example.com/a/b.jpg?token=SECRET"]}}',
       'candidates seen: $.data.files[0] ' .. fn(0)
       .. ', $.data.files[1] https://cdn.example.com/a/b.jpg?…')
  case("another actor's key", list({ vurl(ctx, fn(0)),
       vurl(ctx, other .. "_0.jpg", other) }), "another actor")
  case("another actor's file name", list({ other .. "_1.jpg" }),
       "another actor")
  case("another bucket", list({ "s3://some-other-bucket/" .. key(ctx, a, fn(0)) }),
       "bucket 'some-other-bucket' is not the configured")
  case("dot-dot in a path", list({ "../../../../etc/" .. fn(0) }), "'..'")
  case("encoded dot-dot in a key",
       list({ base(ctx) .. "/" .. key(ctx, a, "..%2F..%2F" .. fn(0)) }), "'..'")
  case("NUL in a name", list({ "x\0/" .. fn(0) }), "NUL")
  case("backslash", list({ "..\\..\\" .. fn(0) }), "backslash")
  case("unsupported scheme", list({ "ftp://host/" .. fn(0) }),
       "unsupported URL scheme")
  case("index collision", list({ fn(1), "https://replicate.delivery/x/out.png" }),
       "both map to index 1")
  case("two files on one name", list({ "https://replicate.delivery/x/out.jpg", fn(0) }),
       "both map to '")
  local deep = q(vurl(ctx, fn(0)))
  for _ = 1, 200 do deep = "[" .. deep .. "]" end
  case("nested too deep", deep, "invalid JSON")
  return cases
end

--- Write `text` as ACTOR's legacy file under data_root (dirs created).
function lf.write(data_root, actor_name, text)
  local dir = data_root .. "/actors/" .. actor_name .. "/training_data"
  assert(os.execute("mkdir -p '" .. dir .. "'"))
  local f = assert(io.open(dir .. "/response.json", "wb"))
  f:write(text)
  f:close()
  return dir .. "/response.json"
end

return lf
