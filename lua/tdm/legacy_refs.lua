--- tdm.legacy_refs -- read the image references out of a legacy
-- training_data/response.json. Pure functions: text in, a list or an
-- error out; no file, no network, no global state (a fuzz target).
--
--   local refs = require "tdm.legacy_refs"
--   local list, ignored = refs.extract(text)           -- raw strings
--   local entries, why = refs.interpret(text, {
--     actor_name = "0042_x", bucket = "story-boards-assets",
--     prefix = "system_actors/training_data",
--     public_url_base = "https://story-boards-assets.s3.us-west-1.amazonaws.com" })
--
-- Accepted shapes (the format was never specified):
--   * the whole document is a reference string, or a list of them;
--   * objects (at any depth up to MAX_DEPTH) whose fields `s3_url`,
--     `image_url`, `url`, `output`, `images`, `urls`, `training_data` hold
--     a reference string, a list of them, or further such objects; one
--     object with several string fields counts as ONE image (s3_url is
--     preferred, then image_url, url, output, images, urls, training_data);
--     other fields are searched for such objects;
--   * anywhere at all, a URL (any form tdm.s3.parse_url knows) of an
--     image in this actor's folder of the configured bucket: that is
--     unambiguous, so it counts under any field name; an object that holds
--     one directly is that image (its other URL fields are not counted
--     again by position). Other strings outside reference fields --
--     relative names, foreign URLs -- are not references;
--   * a reference is an S3 URL of the configured bucket (virtual-hosted
--     https://B.s3[.R].amazonaws.com/KEY, path-style
--     https://s3[.R].amazonaws.com/B/KEY, s3://B/KEY, the configured public
--     URL base or endpoint; tdm.s3.parse_url), any other http(s) URL, or a relative
--     path / file name; query strings and fragments are dropped, %XX
--     decoded. Only strings whose last path component has an image
--     extension (.jpg .jpeg .png .webp) are references; other strings in
--     reference fields (status URLs, ids) are ignored and counted.
--
-- Mapping (interpret): a file name of the form {actor_name}_{N}.{ext} maps
-- to itself; any other name maps by its position P (0-based) in the list
-- of references to {actor_name}_{P}.{ext}. The whole document is refused
-- (nil, reason) when it is not JSON, has no references, names another
-- bucket or another actor, has `..`, NUL, backslashes or control
-- characters in a reference, maps two different references to one index,
-- or is larger / deeper / longer than the limits below. Refusing a
-- document with no references names the candidate strings it saw
-- (URLs and image names, query strings dropped).
local cjson = require "cjson"

local refs = {}

refs.MAX_BYTES = 8 * 1024 * 1024   -- largest response.json read
refs.MAX_DEPTH = 64                -- nesting of arrays/objects
refs.MAX_REFS = 10000              -- references in one document
refs.MAX_REF_LEN = 2048            -- characters in one reference

-- Fields that hold references, in order of preference.
local REF_KEYS = { "s3_url", "image_url", "url", "output", "images", "urls",
                   "training_data" }
local IS_REF_KEY = {}
for _, k in ipairs(REF_KEYS) do IS_REF_KEY[k] = true end

-- A private decoder: its limits are not shared with other users of cjson.
local decoder = cjson.new()
decoder.decode_max_depth(refs.MAX_DEPTH + 2)
decoder.decode_invalid_numbers(false)

--- Whether `name` (one path component) has an image extension and is not
-- hidden.
function refs.is_image_name(name)
  return type(name) == "string" and require("tdm.core").layout.is_image_name(name)
end

-- The path part of a reference string (scheme and host, query and fragment
-- removed) -- used only to decide whether a string looks like an image.
local function path_part(s)
  local p = s:match("^[%a][%w+.-]*://[^/?#]*(.*)$") or s
  return (p:gsub("[?#].*$", ""))
end

-- Whether a string is meant as an image reference: its path ends in an
-- image extension. Hidden or hostile names still count (interpret refuses
-- them with a reason rather than skipping them).
local function looks_like_image(s)
  local ext = path_part(s):match("(%.[%w]+)$")
  return ext ~= nil and refs.is_image_name("x" .. ext)
end

-- Whether a string, outside any reference field, is still worth naming in
-- a refusal: a URL or something with an image extension.
local function plausible(s)
  return s:find("://", 1, true) ~= nil or looks_like_image(s)
end

-- How a candidate is shown in a refusal: one line, no query string (a
-- pre-signed URL's signature and token stay out of messages), bounded.
local function show(s)
  local q = s:find("[?#]")
  if q then s = s:sub(1, q - 1) .. "?…" end
  s = s:gsub("[%c]", " ")
  if #s > 160 then s = s:sub(1, 160) .. "…" end
  return s
end

--- Walk the decoded document and collect the reference strings, in
-- document order (object fields in REF_KEYS order, then other fields
-- sorted). `own(s)` (optional) says whether a string resolves to this
-- actor's folder in the configured bucket: such a string is a reference
-- wherever it is, and an object holding one directly is that image (its
-- other URL fields are not counted again by position). Returns list,
-- ignored, candidates | nil, reason. list[i] = { ref = string, path =
-- "$.output[1].url" }; candidates = { n = count, { ref =, path = }... }
-- (at most MAX_SHOWN): strings that look like URLs or image names but
-- were not counted, for the refusal message.
local MAX_SHOWN = 5
local function collect(doc, own)
  own = own or function() return false end
  local out, ignored, seen = {}, 0, {}
  local cands = { n = 0 }
  local function candidate(s, path)
    cands.n = cands.n + 1
    if #cands < MAX_SHOWN then cands[#cands + 1] = { ref = s, path = path } end
  end
  local function add(s, path)
    if not looks_like_image(s) then
      ignored = ignored + 1
      if plausible(s) then candidate(s, path) end
      return true
    end
    if #s > refs.MAX_REF_LEN then
      return nil, string.format("%s: reference longer than %d characters",
                                path, refs.MAX_REF_LEN)
    end
    if seen[s] then return true end
    seen[s] = true
    if #out >= refs.MAX_REFS then
      return nil, string.format("more than %d references", refs.MAX_REFS)
    end
    out[#out + 1] = { ref = s, path = path }
    return true
  end
  -- A string outside reference fields: a reference only when it is this
  -- actor's own object.
  local function stray(s, path)
    if own(s) then return add(s, path) end
    if plausible(s) then candidate(s, path) end
    return true
  end
  local walk
  -- `in_ref`: strings here are references (inside a reference field or a
  -- top-level list).
  walk = function(v, path, depth, in_ref)
    if depth > refs.MAX_DEPTH then
      return nil, string.format("%s: nested deeper than %d levels", path,
                                refs.MAX_DEPTH)
    end
    local tv = type(v)
    if tv == "string" then
      if in_ref then return add(v, path) end
      return stray(v, path)
    elseif tv ~= "table" then
      return true   -- numbers, booleans, null: not references
    end
    local n = #v
    local is_array = next(v) == nil or (n > 0 and next(v, n) == nil)
    if is_array then
      for i = 1, n do
        local ok, err = walk(v[i], string.format("%s[%d]", path, i - 1),
                             depth + 1, in_ref)
        if not ok then return nil, err end
      end
      return true
    end
    -- An object's fields: reference fields in preference order, then the
    -- others sorted (document order is not kept by the decoder).
    local keys, others = {}, {}
    for _, k in ipairs(REF_KEYS) do
      if v[k] ~= nil then keys[#keys + 1] = k end
    end
    for k in pairs(v) do
      if type(k) == "string" and not IS_REF_KEY[k] then
        others[#others + 1] = k
      end
    end
    table.sort(others)
    for _, k in ipairs(others) do keys[#keys + 1] = k end
    -- Its string fields: every one in this actor's folder counts; with
    -- none, the first image string of a reference field is the object's
    -- one image (the rest describe the same image).
    local owned = false
    for _, k in ipairs(keys) do
      local f = v[k]
      if type(f) == "string" and own(f) then
        local ok, err = add(f, path .. "." .. k)
        if not ok then return nil, err end
        owned = true
      end
    end
    local picked = owned
    for _, k in ipairs(keys) do
      local f = v[k]
      if type(f) == "string" and not (owned and own(f)) then
        if IS_REF_KEY[k] and not picked and looks_like_image(f) then
          local ok, err = add(f, path .. "." .. k)
          if not ok then return nil, err end
          picked = true
        elseif IS_REF_KEY[k] and not picked then
          ignored = ignored + 1
          if plausible(f) then candidate(f, path .. "." .. k) end
        elseif not owned or not looks_like_image(f) then
          if plausible(f) then candidate(f, path .. "." .. k) end
        end
      end
    end
    for _, k in ipairs(keys) do
      local f = v[k]
      if type(f) == "table" then
        local ok, err = walk(f, path .. "." .. k, depth + 1, IS_REF_KEY[k])
        if not ok then return nil, err end
      end
    end
    return true
  end
  local ok, err = walk(doc, "$", 0, true)
  if not ok then return nil, err end
  return out, ignored, cands
end

--- Decode `text` and return the reference strings it holds:
-- list, ignored, candidates | nil, reason. `own` (optional): see collect,
-- which also describes the results.
function refs.extract(text, own)
  if type(text) ~= "string" then
    error("legacy_refs.extract: text must be a string", 2)
  end
  if #text > refs.MAX_BYTES then
    return nil, string.format("larger than %d bytes", refs.MAX_BYTES)
  end
  local ok, doc = pcall(decoder.decode, text)
  if not ok then
    local why = tostring(doc):gsub("^.-:%d+: ", "")
    return nil, "invalid JSON: " .. why
  end
  return collect(doc, own)
end

-- %XX decoding (URL paths); other bytes are kept as they are.
local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h)
    return string.char(tonumber(h, 16))
  end))
end

local function one_line(s)
  return (tostring(s):gsub("[%c]+", " "))
end

local function escape_pattern(s)
  return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

-- tdm.s3.parse_url wants a Config; any table with a metatable is taken
-- as one, so a plain description of the bucket keeps this pure.
local CtxConfig = { __name = "tdm.legacy_refs.config" }

--- Classify a reference: { key = } for a URL of the configured bucket
-- (parsed by tdm.s3.parse_url: virtual-hosted, path-style, s3://, the
-- public URL base, the endpoint), { foreign = true, path = } for any other
-- http(s) URL (query and fragment dropped, %XX decoded), { path = } for a
-- string with no scheme; nil, reason for another bucket or an unsupported
-- scheme.
function refs.classify(ref, scfg)
  local scheme, rest = ref:match("^([%a][%w+.-]*)://(.*)$")
  if scheme then
    scheme = scheme:lower()
    if scheme ~= "s3" and scheme ~= "http" and scheme ~= "https" then
      return nil, "unsupported URL scheme '" .. scheme .. "'"
    end
  end
  local key, why = require("tdm.s3").parse_url(scfg, ref)
  if key then return { key = key } end
  if not scheme then return { path = ref } end
  local host, path = rest:match("^([^/?#]*)(.*)$")
  host = host:lower():gsub(":%d+$", "")
  if scheme == "s3" or host:match("amazonaws%.com$") then
    return nil, why   -- an S3 URL, but not of this bucket
  end
  return { foreign = true, path = unescape((path:gsub("[?#].*$", ""))) }
end

-- Refuse what could escape the data root or smuggle bytes.
local function hostile(s)
  if s:find("\0", 1, true) then return "NUL byte" end
  if s:find("\\", 1, true) then return "backslash" end
  if s:find("[%c]") then return "control character" end
  for comp in (s .. "/"):gmatch("([^/]*)/") do
    if comp == ".." then return "'..' component" end
  end
  return nil
end

--- The manifest entries a legacy document stands for:
-- entries, ignored | nil, reason. ctx = { actor_name, bucket, prefix,
-- public_url_base, endpoint } (or ctx.cfg, a tdm.config, for the URL
-- parsing). entries (sorted by index) = { filename, index, by =
-- "name"|"position", ref, path (in the document), key (the S3 key tdm uses
-- for the file), ext }.
function refs.interpret(text, ctx)
  assert(type(ctx) == "table" and type(ctx.actor_name) == "string",
         "legacy_refs.interpret: ctx.actor_name required")
  local actor = ctx.actor_name
  local prefix = (ctx.prefix or ""):gsub("^/+", ""):gsub("/+$", "")
  local scfg = ctx.cfg or setmetatable({ bucket = ctx.bucket,
    public_url_base = ctx.public_url_base, endpoint = ctx.endpoint },
    CtxConfig)
  -- A URL naming an object in this actor's folder of this bucket is
  -- unambiguous wherever it sits in the document.
  local folder = (prefix ~= "" and (prefix .. "/") or "") .. actor .. "/"
  local parse_url = require("tdm.s3").parse_url
  local function own(s)
    if #s > refs.MAX_REF_LEN or not s:find("://", 1, true)
       or not looks_like_image(s) then
      return false
    end
    local key = parse_url(scfg, s)
    return key ~= nil and key:sub(1, #folder) == folder
  end
  local list, ignored, cands = refs.extract(text, own)
  if not list then return nil, ignored end
  if #list == 0 then
    local seen = {}
    for i, c in ipairs(cands) do
      seen[i] = string.format("%s %s", c.path, show(c.ref))
    end
    if cands.n > #cands then
      seen[#seen + 1] = string.format("and %d more", cands.n - #cands)
    end
    return nil, string.format(
      "no image references found (%d other strings; %s)", ignored,
      #seen > 0 and ("candidates seen: " .. table.concat(seen, ", "))
                 or "no URL or image name anywhere")
  end
  local own = "^" .. escape_pattern(actor) .. "_(%d+)%.([%w]+)$"
  local entries, by_index, by_name = {}, {}, {}
  for pos, item in ipairs(list) do
    local where = item.path
    local u, err = refs.classify(item.ref, scfg)
    if not u then return nil, where .. ": " .. one_line(err) end
    local path = u.key or u.path
    local bad = hostile(item.ref) or hostile(path)
    if bad then
      return nil, string.format("%s: %s in reference %q", where, bad,
                                item.ref:sub(1, 200))
    end
    local comps = {}
    for c in path:gmatch("[^/]+") do comps[#comps + 1] = c end
    local name = comps[#comps]
    if not name or not refs.is_image_name(name) then
      return nil, string.format("%s: no image file name in %q", where,
                                item.ref:sub(1, 200))
    end
    -- Any directory that looks like an actor must be this actor.
    for i = 1, #comps - 1 do
      if comps[i]:match("^%d+_") and comps[i] ~= actor then
        return nil, string.format("%s: references another actor '%s'",
                                  where, comps[i])
      end
    end
    local idx, ext = name:match(own)
    local e = { ref = item.ref, path = where, name = name }
    if idx and #idx > 9 then
      return nil, string.format("%s: index too large in '%s'", where, name)
    elseif idx then
      e.by, e.index, e.ext, e.filename = "name", math.tointeger(tonumber(idx)),
                                          ext, name
    else
      local other = name:match("^(%d+_.+)_%d+%.[%w]+$")
      if other then
        return nil, string.format("%s: references another actor's file '%s'",
                                  where, name)
      end
      e.by, e.index, e.ext = "position", pos - 1, name:match("%.([%w]+)$")
      e.filename = string.format("%s_%d.%s", actor, e.index, e.ext)
    end
    e.key = (prefix ~= "" and (prefix .. "/") or "") .. actor .. "/" .. e.filename
    local twin = by_name[e.filename]
    if twin and twin.name == name then
      -- the same file named twice (e.g. a URL and its S3 copy): keep one
    elseif twin then
      -- different files landing on one name (x.jpg by position and
      -- {actor}_0.jpg by name): keeping one would lose the other's record
      return nil, string.format("%s and %s both map to '%s' ('%s', '%s')",
                                twin.path, where, e.filename, twin.name, name)
    elseif by_index[e.index] then
      return nil, string.format("%s and %s both map to index %d ('%s', '%s')",
                                by_index[e.index].path, where, e.index,
                                by_index[e.index].filename, e.filename)
    else
      by_index[e.index], by_name[e.filename] = e, e
      entries[#entries + 1] = e
    end
  end
  table.sort(entries, function(a, b) return a.index < b.index end)
  return entries, ignored
end

return refs
