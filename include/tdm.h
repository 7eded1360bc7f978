/*
 * tdm.h -- public C API of libtdm, the core of tdm (training data manager).
 *
 * libtdm hashes files, talks to S3 and keeps per-actor training-data
 * manifests true. It never includes lua.h, never prints, never exits:
 * every function that can fail returns TDM_OK (0) or TDM_ERR (-1) and
 * fills a caller-supplied tdm_error with a stable code and a message that
 * names the operation and the object.
 *
 * Each area has its own header under include/tdm/; this file pulls in all
 * of them so embedders need only `#include <tdm.h>`.
 */
#ifndef TDM_H
#define TDM_H

#define TDM_VERSION "0.1.0"

#include "tdm/error.h"
#include "tdm/errcodes.h"
#include "tdm/buf.h"
#include "tdm/hash.h"
#include "tdm/checksum.h"
#include "tdm/fs.h"
#include "tdm/interrupt.h"
#include "tdm/proc.h"
#include "tdm/utc.h"
#include "tdm/config.h"
#include "tdm/layout.h"
#include "tdm/image.h"
#include "tdm/manifest.h"
#include "tdm/sigv4.h"
#include "tdm/s3.h"
#include "tdm/http.h"

#endif
