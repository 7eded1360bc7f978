/* tdm_s3_error.c -- what a failed S3 request is called and means: the
 * network failure of a curl code, the "S3_<Code>" of an answer, whether
 * it is worth retrying, and what the user should do about it (from the
 * one table, include/tdm/errcodes.def). Pure functions. */
#include <stdio.h>
#include <string.h>

#include "tdm_s3_int.h"

tdm_s3_net tdm_s3i_net_of(CURLcode rc) {
  switch (rc) {
    case CURLE_OK: return TDM_S3_NET_OK;
    case CURLE_OPERATION_TIMEDOUT: return TDM_S3_NET_TIMEOUT;
    case CURLE_COULDNT_CONNECT: return TDM_S3_NET_CONNECT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return TDM_S3_NET_DNS;
    case CURLE_PARTIAL_FILE: return TDM_S3_NET_TRUNCATED;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR: return TDM_S3_NET_RESET;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH: return TDM_S3_NET_TLS;
    case CURLE_WRITE_ERROR:
    case CURLE_READ_ERROR:
    case CURLE_ABORTED_BY_CALLBACK: return TDM_S3_NET_LOCAL;
    default: return TDM_S3_NET_OTHER;
  }
}

const char *tdm_s3i_net_code(tdm_s3_net net) {
  switch (net) {
    case TDM_S3_NET_TIMEOUT: return "ETIMEDOUT";
    case TDM_S3_NET_CONNECT: return "ECONNREFUSED";
    case TDM_S3_NET_DNS: return "EHOSTUNREACH";
    case TDM_S3_NET_TRUNCATED: return "ETRUNCATED";
    case TDM_S3_NET_RESET: return "ECONNRESET";
    case TDM_S3_NET_TLS: return "ETLS";
    default: return "ECURL";
  }
}

int tdm_s3_retryable(tdm_s3_net net, long status, const char *s3code) {
  switch (net) {
    case TDM_S3_NET_OK: break;
    case TDM_S3_NET_TLS:
    case TDM_S3_NET_LOCAL:
    case TDM_S3_NET_OTHER:
      return 0;
    default:
      return 1;
  }
  if (s3code && *s3code) {
    char code[TDM_ERR_CODE_MAX];
    const tdm_errcode *ec;
    snprintf(code, sizeof code, "S3_%s", s3code);
    if ((ec = tdm_errcode_find(code)) && ec->retryable) return 1;
  }
  return status >= 500 || status == 429;
}

void tdm_s3_error_code(const char *s3code, long status, char *out,
                       size_t outsz) {
  const char *name;
  if (s3code && *s3code) {
    snprintf(out, outsz, "S3_%s", s3code);
    return;
  }
  switch (status) {
    case 301: name = "PermanentRedirect"; break;
    case 400: name = "BadRequest"; break;
    case 403: name = "AccessDenied"; break;
    case 404: name = "NoSuchKey"; break;
    case 405: name = "MethodNotAllowed"; break;
    case 409: name = "Conflict"; break;
    case 412: name = "PreconditionFailed"; break;
    case 416: name = "InvalidRange"; break;
    case 429: name = "SlowDown"; break;
    case 500: name = "InternalError"; break;
    case 501: name = "NotImplemented"; break;
    case 503: name = "ServiceUnavailable"; break;
    default: name = NULL; break;
  }
  if (name) snprintf(out, outsz, "S3_%s", name);
  else snprintf(out, outsz, "S3_HTTP%ld", status);
}

const char *tdm_s3_advice(const char *code) {
  char full[TDM_ERR_CODE_MAX];
  const tdm_errcode *ec;
  if (!code) return "";
  if (strncmp(code, "S3_", 3) != 0) {
    snprintf(full, sizeof full, "S3_%s", code);
    code = full;
  }
  return (ec = tdm_errcode_find(code)) ? ec->advice : "";
}
