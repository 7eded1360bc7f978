/* tdm_s3_xml.c -- S3's XML answers parsed as a stream with expat:
 * ListObjectsV2 pages, <Error> bodies, DeleteObjects results, and the
 * multipart initiate/complete answers. Memory is bounded: one element's
 * text (TEXT_MAX) plus what the page itself holds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <expat.h>

#include "tdm.h"
#include "tdm/s3.h"

#define DEPTH_MAX 8
#define NAME_MAX_ 48
#define TEXT_MAX (16 * 1024)

struct tdm_s3_xml {
  XML_Parser p;
  tdm_s3_xml_kind kind;
  tdm_s3_job *job;             /* LIST/DELETE results go here; may be NULL */
  int depth;                   /* elements open */
  char stack[DEPTH_MAX][NAME_MAX_];
  tdm_buf text;                /* text of the innermost element */
  int is_error;                /* the root was <Error> */
  tdm_s3_errinfo einfo;
  char value[1024];            /* UploadId / ETag */
  tdm_s3_object cur;           /* LIST: the <Contents> being read */
  char *cur_key;
  tdm_s3_delete_error cur_err; /* DELETE: the <Error> being read */
  size_t cap_objects, cap_deleted, cap_errors;
  int failed;                  /* out of memory / text too long */
  char fail_msg[128];
};

static void copy(char *dst, size_t dstsz, const char *src) {
  snprintf(dst, dstsz, "%s", src);
}

static void fail(tdm_s3_xml *x, const char *msg) {
  if (!x->failed) {
    x->failed = 1;
    copy(x->fail_msg, sizeof x->fail_msg, msg);
  }
  XML_StopParser(x->p, XML_FALSE);
}

/* Drop a namespace prefix/URI: expat is created without namespace
 * processing, so names are as written ("Key"). */
static void XMLCALL on_start(void *ud, const XML_Char *name,
                             const XML_Char **attrs) {
  tdm_s3_xml *x = ud;
  (void)attrs;
  if (x->depth == 0 && strcmp(name, "Error") == 0) x->is_error = 1;
  if (x->depth < DEPTH_MAX) copy(x->stack[x->depth], NAME_MAX_, name);
  x->depth++;
  tdm_buf_reset(&x->text);
  if (x->kind == TDM_S3_XML_LIST && x->depth == 2 &&
      strcmp(name, "Contents") == 0) {
    memset(&x->cur, 0, sizeof x->cur);
    free(x->cur_key);
    x->cur_key = NULL;
  }
  if (x->kind == TDM_S3_XML_DELETE && x->depth == 2 &&
      strcmp(name, "Error") == 0) {
    free(x->cur_err.key);
    memset(&x->cur_err, 0, sizeof x->cur_err);
  }
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len) {
  tdm_s3_xml *x = ud;
  if (x->failed) return;
  if (tdm_buf_append(&x->text, s, (size_t)len, NULL) != TDM_OK)
    fail(x, "an element's text is too long");
}

static int grow(tdm_s3_xml *x, void **arr, size_t *cap, size_t n,
                size_t elsize) {
  void *p;
  size_t ncap;
  if (n < *cap) return 1;
  ncap = *cap ? *cap * 2 : 64;
  p = realloc(*arr, ncap * elsize);
  if (!p) {
    fail(x, "out of memory");
    return 0;
  }
  *arr = p;
  *cap = ncap;
  return 1;
}

static char *dup_text(tdm_s3_xml *x, const char *s) {
  char *d = strdup(s);
  if (!d) fail(x, "out of memory");
  return d;
}

/* A leaf (or container) closed: `name` at depth x->depth (1 = root) under
 * `parent`, with text `t`. */
static void end_list(tdm_s3_xml *x, const char *parent, const char *name,
                     const char *t) {
  tdm_s3_job *j = x->job;
  if (x->depth == 2 && strcmp(name, "NextContinuationToken") == 0) {
    free(j->next_token);
    j->next_token = dup_text(x, t);
  } else if (x->depth == 3 && strcmp(parent, "Contents") == 0) {
    if (strcmp(name, "Key") == 0) {
      free(x->cur_key);
      x->cur_key = dup_text(x, t);
    } else if (strcmp(name, "Size") == 0) {
      x->cur.size = strtoull(t, NULL, 10);
    } else if (strcmp(name, "ETag") == 0) {
      tdm_etag_unquote(x->cur.etag, sizeof x->cur.etag, t);
      if (!tdm_etag_plain_md5(x->cur.etag, x->cur.md5)) x->cur.md5[0] = 0;
    } else if (strcmp(name, "LastModified") == 0) {
      x->cur.last_modified = tdm_parse_time(t);
    }
  } else if (x->depth == 2 && strcmp(name, "Contents") == 0) {
    if (!x->cur_key) {
      fail(x, "a <Contents> without <Key>");
      return;
    }
    if (!grow(x, (void **)&j->objects, &x->cap_objects, j->nobjects,
              sizeof *j->objects))
      return;
    x->cur.key = x->cur_key;
    x->cur_key = NULL;
    j->objects[j->nobjects++] = x->cur;
  }
}

static void end_delete(tdm_s3_xml *x, const char *parent, const char *name,
                       const char *t) {
  tdm_s3_job *j = x->job;
  if (x->depth == 3 && strcmp(parent, "Deleted") == 0 &&
      strcmp(name, "Key") == 0) {
    char *k;
    if (!grow(x, (void **)&j->deleted, &x->cap_deleted, j->ndeleted,
              sizeof *j->deleted))
      return;
    if ((k = dup_text(x, t)) != NULL) j->deleted[j->ndeleted++] = k;
  } else if (x->depth == 3 && strcmp(parent, "Error") == 0) {
    if (strcmp(name, "Key") == 0) {
      free(x->cur_err.key);
      x->cur_err.key = dup_text(x, t);
    } else if (strcmp(name, "Code") == 0) {
      tdm_s3_error_code(t, 0, x->cur_err.code, sizeof x->cur_err.code);
    } else if (strcmp(name, "Message") == 0) {
      copy(x->cur_err.message, sizeof x->cur_err.message, t);
    }
  } else if (x->depth == 2 && strcmp(name, "Error") == 0) {
    if (!x->cur_err.key) return;
    if (!grow(x, (void **)&j->errors, &x->cap_errors, j->nerrors,
              sizeof *j->errors))
      return;
    j->errors[j->nerrors++] = x->cur_err;
    memset(&x->cur_err, 0, sizeof x->cur_err);
  }
}

static void XMLCALL on_end(void *ud, const XML_Char *name) {
  tdm_s3_xml *x = ud;
  const char *parent = x->depth >= 2 && x->depth - 2 < DEPTH_MAX
                       ? x->stack[x->depth - 2] : "";
  const char *t = x->text.data ? x->text.data : "";
  if (x->failed) return;
  if (x->is_error) {
    if (x->depth == 2) {
      if (strcmp(name, "Code") == 0)
        copy(x->einfo.code, sizeof x->einfo.code, t);
      else if (strcmp(name, "Message") == 0)
        copy(x->einfo.message, sizeof x->einfo.message, t);
      else if (strcmp(name, "RequestId") == 0)
        copy(x->einfo.request_id, sizeof x->einfo.request_id, t);
    }
  } else if (x->kind == TDM_S3_XML_LIST && x->job) {
    end_list(x, parent, name, t);
  } else if (x->kind == TDM_S3_XML_DELETE && x->job) {
    end_delete(x, parent, name, t);
  } else if (x->kind == TDM_S3_XML_INITIATE && x->depth == 2 &&
             strcmp(name, "UploadId") == 0) {
    copy(x->value, sizeof x->value, t);
  } else if (x->kind == TDM_S3_XML_COMPLETE && x->depth == 2 &&
             strcmp(name, "ETag") == 0) {
    tdm_etag_unquote(x->value, sizeof x->value, t);
  }
  x->depth--;
  tdm_buf_reset(&x->text);
}

tdm_s3_xml *tdm_s3_xml_new(tdm_s3_xml_kind kind, tdm_s3_job *job,
                           tdm_error *err) {
  tdm_s3_xml *x = calloc(1, sizeof *x);
  if (!x) {
    tdm_error_set(err, "ENOMEM", "XML parser: out of memory");
    return NULL;
  }
  x->p = XML_ParserCreate("UTF-8");
  if (!x->p) {
    free(x);
    tdm_error_set(err, "ENOMEM", "XML parser: out of memory");
    return NULL;
  }
  x->kind = kind;
  x->job = job;
  tdm_buf_init(&x->text, TEXT_MAX);
  XML_SetUserData(x->p, x);
  XML_SetElementHandler(x->p, on_start, on_end);
  XML_SetCharacterDataHandler(x->p, on_text);
  return x;
}

int tdm_s3_xml_feed(tdm_s3_xml *x, const char *data, size_t len, int final,
                    tdm_error *err) {
  if (!x->failed &&
      XML_Parse(x->p, data, (int)len, final) == XML_STATUS_ERROR &&
      !x->failed) {
    return tdm_error_set(err, "S3_BadXML",
                         "malformed XML from S3: line %lu column %lu: %s",
                         (unsigned long)XML_GetCurrentLineNumber(x->p),
                         (unsigned long)XML_GetCurrentColumnNumber(x->p),
                         XML_ErrorString(XML_GetErrorCode(x->p)));
  }
  if (x->failed)
    return tdm_error_set(err, "S3_BadXML", "XML from S3: %s", x->fail_msg);
  return TDM_OK;
}

const tdm_s3_errinfo *tdm_s3_xml_error(const tdm_s3_xml *x) {
  return x->is_error ? &x->einfo : NULL;
}

const char *tdm_s3_xml_value(const tdm_s3_xml *x) { return x->value; }

void tdm_s3_xml_free(tdm_s3_xml *x) {
  if (!x) return;
  XML_ParserFree(x->p);
  tdm_buf_free(&x->text);
  free(x->cur_key);
  free(x->cur_err.key);
  free(x);
}

int tdm_s3_parse_error(const char *xml, size_t len, tdm_s3_errinfo *out) {
  tdm_s3_xml *x = tdm_s3_xml_new(TDM_S3_XML_ERROR, NULL, NULL);
  int ok;
  memset(out, 0, sizeof *out);
  if (!x) return 0;
  ok = tdm_s3_xml_feed(x, xml, len, 1, NULL) == TDM_OK && x->is_error &&
       x->einfo.code[0];
  if (ok) *out = x->einfo;
  tdm_s3_xml_free(x);
  return ok;
}

int tdm_s3_xml_escape(const char *s, tdm_buf *out, tdm_error *err) {
  for (; *s; s++) {
    const char *rep = NULL;
    switch (*s) {
      case '&': rep = "&amp;"; break;
      case '<': rep = "&lt;"; break;
      case '>': rep = "&gt;"; break;
      case '"': rep = "&quot;"; break;
      case '\'': rep = "&apos;"; break;
      default: break;
    }
    if ((rep ? tdm_buf_appends(out, rep, err)
             : tdm_buf_appendc(out, *s, err)) != TDM_OK)
      return TDM_ERR;
  }
  return TDM_OK;
}
