/*
 * fuzz_refs.c -- the legacy response.json reference extractor
 * (lua/tdm/legacy_refs.lua: extract and interpret), hosted in a Lua
 * state.
 *
 * Properties: neither function raises on any text; a refusal is nil and
 * a string; every entry interpret returns has a filename that is one safe
 * path component (core.check_name) of the form {actor}_{N}.{ext}, an
 * integer index >= 0 equal to that N, distinct indexes, and a key under
 * the prefix and the actor with no ".." component.
 */
#include "fuzz_lua.h"

static const char target[] =
  "local refs = require 'tdm.legacy_refs'\n"
  "local core = require 'tdm.core'\n"
  "local ctx = { actor_name = '0042_fuzz', bucket = 'story-boards-assets',\n"
  "  prefix = 'system_actors/training_data',\n"
  "  public_url_base = 'https://story-boards-assets.s3.us-west-1.amazonaws.com' }\n"
  "return function(text)\n"
  "  local list, why = refs.extract(text)\n"
  "  if not list then assert(type(why) == 'string', 'extract: no reason')\n"
  "  else assert(type(list) == 'table') end\n"
  "  local ents, why2 = refs.interpret(text, ctx)\n"
  "  if not ents then\n"
  "    assert(type(why2) == 'string', 'interpret: no reason'); return\n"
  "  end\n"
  "  local seen = {}\n"
  "  for _, e in ipairs(ents) do\n"
  "    assert(core.check_name(e.filename, 'filename'), 'unsafe filename')\n"
  "    local n = e.filename:match('^0042_fuzz_(%d+)%.[%w]+$')\n"
  "    assert(n, 'filename not {actor}_{N}.{ext}: ' .. e.filename)\n"
  "    assert(math.type(e.index) == 'integer' and e.index >= 0, 'index')\n"
  "    assert(tonumber(n) == e.index, 'index differs from the name')\n"
  "    assert(not seen[e.index], 'two entries with one index')\n"
  "    seen[e.index] = true\n"
  "    assert(e.key == 'system_actors/training_data/0042_fuzz/' ..\n"
  "           e.filename, 'key outside prefix/actor: ' .. e.key)\n"
  "  end\n"
  "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_lua_target(target);
  fuzz_lua_call(data, size);
  return 0;
}
