/* ls3_int.h -- what the S3 binding files (ls3.c: the client and its
 * single operations; ls3_queue.c: transfer queues) share; defined in
 * ls3_common.c, except the queue functions at the end (ls3_queue.c,
 * used by ls3.c). */
#ifndef TDM_LS3_INT_H
#define TDM_LS3_INT_H

#include "lbind.h"

#define TDM_LS3_CLIENT "tdm.S3Client"

typedef struct tdm_ls3_client {
  tdm_s3 *c;                   /* NULL once closed */
  int running;                 /* a transfer, queue or listing holds it */
} tdm_ls3_client;

/* The open client at idx; raises on a closed one. */
tdm_ls3_client *tdm_ls3_check_client(lua_State *L, int idx);

/* Field `name` of the table at t as a string / number (dflt when nil);
 * raises naming the setting when it has another type. */
const char *tdm_ls3_opt_string(lua_State *L, int t, const char *name);
double tdm_ls3_opt_number(lua_State *L, int t, const char *name,
                          double dflt);
/* Field `name` of the table at t as a boolean (0/1; dflt when nil). */
int tdm_ls3_opt_bool(lua_State *L, int t, const char *name, int dflt);

/* Set t[name] = v on the table on top (a string only when not empty). */
void tdm_ls3_set_str(lua_State *L, const char *name, const char *v);
void tdm_ls3_set_int(lua_State *L, const char *name, lua_Integer v);

/* Set what the job's last answer said on the table on top: md5_source,
 * checksum_algorithm, checksum, sse, bucket_region (each when known). */
void tdm_ls3_push_answer(lua_State *L, const tdm_s3_job *j);

/* Push a transfer result { ok, md5, bytes, attempts, etag, error, code,
 * interrupted } and the answer's fields (tdm_ls3_push_answer). */
void tdm_ls3_push_result(lua_State *L, const tdm_s3_job *j);

/* ls3_queue.c: c:transfer, c:queue and the tdm.S3Queue metatable. */
int tdm_ls3_transfer(lua_State *L);
int tdm_ls3_queue(lua_State *L);
void tdm_ls3_queue_meta(lua_State *L);

#endif
