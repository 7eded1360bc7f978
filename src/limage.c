/*
 * limage.c -- tdm.core.image_type / image_type_of (tdm/image.h): what a
 * file's or a string's first bytes say it is.
 */
#include "lbind.h"

/* image_type(path) -> "jpeg"|"png"|"webp", content type | nil, msg,
 * "EBADIMAGE" (empty, or not JPEG/PNG/WebP) or an errno code. */
static int l_image_type(lua_State *L) {
  const char *type;
  tdm_error err;
  if (tdm_image_sniff(luaL_checkstring(L, 1), &type, &err) != TDM_OK)
    return tdm_lua_fail(L, &err);
  lua_pushstring(L, type);
  lua_pushstring(L, tdm_image_content_type(type));
  return 2;
}

/* image_type_of(bytes) -> "jpeg"|"png"|"webp", content type | nil. */
static int l_image_type_of(lua_State *L) {
  size_t len;
  const char *data = luaL_checklstring(L, 1, &len);
  const char *type = tdm_image_type(data, len);
  if (!type) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushstring(L, type);
  lua_pushstring(L, tdm_image_content_type(type));
  return 2;
}

static const luaL_Reg funcs[] = {
  {"image_type", l_image_type},
  {"image_type_of", l_image_type_of},
  {NULL, NULL}
};

int tdm_lua_open_image(lua_State *L) {
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
