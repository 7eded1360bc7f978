/*
 * fuzz_route.c -- the HTTP API's request routing (lua/tdm/api.lua, the
 * worker's preflight: route + method check), hosted in a Lua state.
 *
 * Input: byte 0 picks the method (GET, HEAD, DELETE, PUT, PATCH, OPTIONS;
 * POST is left out because its preflight may consult S3), the rest is the
 * raw request path as libmicrohttpd hands it over.
 * Properties: preflight never raises; a refusal is a 4xx status with a
 * JSON body; a request it lets through has a path of the form
 * /api/actors/ID/training-data[/FILE] (or /healthz) once %-decoded, with
 * ID all digits and FILE one safe name (core.check_name) with an image
 * extension, never "..", NUL or a separator.
 */
#include "fuzz_lua.h"

static const char target[] =
  "local API = require 'tdm.api_http'\n"
  "local core = require 'tdm.core'\n"
  "local w = API.http_worker({ data_root = '/nonexistent/tdm-fuzz',\n"
  "  endpoint = 'http://127.0.0.1:9' })\n"
  "local METHODS = { 'GET', 'HEAD', 'DELETE', 'PUT', 'PATCH', 'OPTIONS' }\n"
  "local function dec(s) return (s:gsub('%%(%x%x)', function(h)\n"
  "  return string.char(tonumber(h, 16)) end)) end\n"
  "return function(input)\n"
  "  if #input < 1 then return end\n"
  "  local method = METHODS[input:byte(1) % #METHODS + 1]\n"
  "  local path = input:sub(2)\n"
  "  local req = { method = method, path = path, query = {}, headers = {} }\n"
  "  local status, body = w.preflight(req)\n"
  "  if status ~= nil then\n"
  "    assert(math.type(status) == 'integer' and status >= 400 and\n"
  "           status < 500, 'refusal status ' .. tostring(status))\n"
  "    assert(type(body) == 'string' and body:sub(1, 1) == '{',\n"
  "           'refusal body is JSON')\n"
  "    return\n"
  "  end\n"
  "  local segs = {}\n"
  "  for s in path:gmatch('[^/]+') do segs[#segs + 1] = dec(s) end\n"
  "  if #segs == 1 then assert(segs[1] == 'healthz', 'only /healthz'); return end\n"
  "  assert(#segs == 4 or #segs == 5, 'segment count ' .. #segs)\n"
  "  assert(segs[1] == 'api' and segs[2] == 'actors' and\n"
  "         segs[4] == 'training-data', 'route shape')\n"
  "  assert(segs[3]:match('^%d+$'), 'actor id digits')\n"
  "  if #segs == 5 then\n"
  "    local f = segs[5]\n"
  "    assert(core.check_name(f, 'filename'), 'unsafe filename')\n"
  "    assert(f ~= '..' and f ~= '.' and not f:find('\\0', 1, true) and\n"
  "           not f:find('/', 1, true) and not f:find('\\\\', 1, true),\n"
  "           'separator or NUL in filename')\n"
  "    assert(f:lower():match('%.jpe?g$') or f:lower():match('%.png$') or\n"
  "           f:lower():match('%.webp$'), 'image extension')\n"
  "  end\n"
  "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_lua_target(target);
  fuzz_lua_call(data, size);
  return 0;
}
